"""Backbones (a small registry), the projector and the SimSiam predictor.

Every backbone maps float images (B, C, H, W) to pooled features (B, feature_dim) and carries
``feature_dim``; the linear probe reads these features, the losses read the projector's output.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Chen, He, "Exploring Simple Siamese Representation Learning" (SimSiam), CVPR 2021,
        https://arxiv.org/abs/2011.10566
    [2] He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
        https://arxiv.org/abs/1512.03385
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import Tensor, nn

from explorer.errors import UserError

BackboneFactory = Callable[[int], nn.Module]
_BACKBONES: dict[str, BackboneFactory] = {}


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator: register ``factory(in_channels) -> module`` under ``name`` (timm-style)."""

    def decorate(factory: BackboneFactory) -> BackboneFactory:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered")
        _BACKBONES[name] = factory
        return factory

    return decorate


def list_backbones() -> list[str]:
    """Names of every registered backbone, sorted (``torchvision:NAME`` not listed)."""
    return sorted(_BACKBONES)


#: A backbone named ``torchvision:NAME`` is torchvision's classification model NAME without its
#: last linear layer (:func:`torchvision_backbone`).
TORCHVISION_PREFIX = "torchvision:"
#: The backbone of a run imported as precomputed features (``explorer import FEATURES.npz``):
#: there is no network, so building it is refused.
PRECOMPUTED = "precomputed"


def torchvision_models() -> list[str]:
    """Names of torchvision's classification models (``resnet18``, ``vit_b_16``, ...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def backbone_problem(name: str) -> str | None:
    """Why ``name`` is not a backbone (one line), or None: a registered name, ``torchvision:``
    and a torchvision classification model, or :data:`PRECOMPUTED`."""
    if name in _BACKBONES or name == PRECOMPUTED:
        return None
    if name.startswith(TORCHVISION_PREFIX):
        arch = name[len(TORCHVISION_PREFIX):]
        names = torchvision_models()
        if arch in names:
            return None
        close = difflib.get_close_matches(arch, names, n=1)
        hint = f" (did you mean '{TORCHVISION_PREFIX}{close[0]}'?)" if close else ""
        return f"unknown torchvision classification model '{arch}'{hint}"
    names = list_backbones()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return (f"unknown backbone '{name}'{hint}; choose one of: {', '.join(names)}, or "
            f"{TORCHVISION_PREFIX}NAME for a torchvision classification model")


def create_backbone(name: str, in_channels: int = 3) -> nn.Module:
    """A freshly initialised backbone (never pretrained: nothing is downloaded).

    Returns:
        A module mapping float (B, in_channels, H, W) -> (B, feature_dim), with ``.feature_dim``.

    Raises:
        UserError: ``name`` is not registered (the message suggests the closest name).
    """
    problem = backbone_problem(name)
    if problem is not None:
        raise UserError(problem)
    if name == PRECOMPUTED:
        raise UserError("this run holds precomputed features (explorer import of an .npz): "
                        "there is no network to build")
    if name.startswith(TORCHVISION_PREFIX):
        backbone = torchvision_backbone(name[len(TORCHVISION_PREFIX):], in_channels)
    else:
        backbone = _BACKBONES[name](in_channels)
    if not isinstance(getattr(backbone, "feature_dim", None), int):
        raise ValueError(f"backbone {name!r} does not set an integer feature_dim")
    return backbone


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU blocks, each halving the resolution, then global average pooling.

    Sized to train on a laptop CPU: at 32x32 the blocks run at 16, 8, 4 and 2 pixels, and a
    forward+backward pass takes about 2,000-4,500 images/s (batch 256) on 2 cores; a stride-1
    first block would be about 5 times slower.
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, 256, H/16, W/16)
        return self.pool(x).flatten(1)  # (B, 256)


def _resnet(arch: str, in_channels: int, cifar_stem: bool) -> nn.Module:
    """A torchvision ResNet with ``fc`` removed, so it returns the pooled features."""
    import torchvision  # lazily: importing torchvision costs about a second

    model = getattr(torchvision.models, arch)(weights=None)
    feature_dim = model.fc.in_features
    if cifar_stem:
        # The paper's CIFAR network [0, App. C] (SimSiam's): a 3x3 stride-1 stem and no
        # max-pool, so 32x32 images keep their resolution into the first residual stage.
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    model.fc = nn.Identity()
    model.feature_dim = feature_dim
    return model


def torchvision_backbone(arch: str, in_channels: int = 3) -> nn.Module:
    """torchvision's classification model ``arch`` (random init) with its last ``nn.Linear``
    (the classifier: ``fc``, ``classifier[-1]``, ``heads.head``, ...) replaced by the identity,
    so it maps (B, 3, H, W) to the features the classifier read, (B, feature_dim).

    Raises:
        UserError: images of other than 3 channels, or a model without a linear classifier.
    """
    import torchvision

    if in_channels != 3:
        raise UserError(f"backbone {TORCHVISION_PREFIX}{arch} reads RGB images, the dataset has "
                        f"{in_channels} channel(s); choose an RGB dataset")
    extra = {"aux_logits": False, "init_weights": True} if arch in ("googlenet",
                                                                     "inception_v3") else {}
    model = torchvision.models.get_model(arch, weights=None, **extra)
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise UserError(f"torchvision model {arch} has no linear classifier to remove; choose "
                        "another architecture")
    parent_name, _, child = linears[-1].rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    feature_dim = int(getattr(parent, child).in_features)
    setattr(parent, child, nn.Identity())
    model.feature_dim = feature_dim
    return model


#: The tokens of a projector spec (:func:`projector_from_spec`).
SPEC_TOKENS = ("identity", "linear:OUT", "linear:OUT:bias", "bn", "bn:noaffine", "relu")


def projector_from_spec(spec: str, in_dim: int) -> nn.Module:
    """A projector described by ``spec``: ``"identity"`` (z = h), or comma-separated layers
    ``linear:OUT[:bias]``, ``bn[:noaffine]`` (BatchNorm1d of the previous width) and ``relu``,
    e.g. ``"linear:2048:bias,bn,relu,linear:128:bias"`` (solo-learn's SimCLR head). An imported
    encoder's projector is rebuilt so (``explorer import``); the layers' indices are their
    positions in the spec.

    Raises:
        UserError: a token not in :data:`SPEC_TOKENS`.
    """
    if spec == "identity":
        return nn.Identity()
    layers: list[nn.Module] = []
    width = in_dim
    for token in spec.split(","):
        kind, *args = token.strip().split(":")
        if kind == "linear" and len(args) in (1, 2) and args[0].isdigit() and args[1:] in (
                [], ["bias"]):
            layers.append(nn.Linear(width, int(args[0]), bias=args[1:] == ["bias"]))
            width = int(args[0])
        elif kind == "bn" and args in ([], ["noaffine"]):
            layers.append(nn.BatchNorm1d(width, affine=not args))
        elif kind == "relu" and not args:
            layers.append(nn.ReLU())
        else:
            raise UserError(f"projector spec token '{token}' is not one of "
                            f"{', '.join(SPEC_TOKENS)}")
    return nn.Sequential(*layers)


@register_backbone("cnn-small")
def cnn_small(in_channels: int = 3) -> nn.Module:
    """A 4-block CNN, 256 features: the CPU default for the embedded datasets."""
    return SmallCNN(in_channels)


@register_backbone("cnn-narrow")
def cnn_narrow(in_channels: int = 3) -> nn.Module:
    """``cnn-small`` with 8, 16 and 32 channels in its first three blocks (256 at the end, 256
    features): the shapes demo's. A step costs about a third of cnn-small's on 2 CPU cores, and on
    the shapes demo it comes as close to the optimum in as many steps (benchmarks/bench_theorem.py;
    a last block of 128 channels is cheaper but falls short)."""
    return SmallCNN(in_channels, widths=(8, 16, 32, 256))


@register_backbone("cnn-wide")
def cnn_wide(in_channels: int = 3) -> nn.Module:
    """``cnn-small`` with 1,024 channels in its last block (1,024 features): fashion-mnist-demo's.
    At 28x28 the last block runs at 2x2 pixels, so its width is cheap (a training step costs about
    2.3 times cnn-small's on 2 CPU cores), and on Fashion-MNIST the linear probe grows with it
    where more epochs of cnn-small do not (README, "Fashion-MNIST")."""
    return SmallCNN(in_channels, widths=(32, 64, 128, 1024))


@register_backbone("resnet18-cifar")
def resnet18_cifar(in_channels: int = 3) -> nn.Module:
    """ResNet-18 with a CIFAR stem (3x3 stride 1, no max-pool), 512 features: the paper's."""
    return _resnet("resnet18", in_channels, cifar_stem=True)


@register_backbone("resnet18")
def resnet18(in_channels: int = 3) -> nn.Module:
    """Standard ResNet-18 (7x7 stride-2 stem, max-pool), 512 features."""
    return _resnet("resnet18", in_channels, cifar_stem=False)


@register_backbone("resnet50")
def resnet50(in_channels: int = 3) -> nn.Module:
    """Standard ResNet-50, 2048 features: the paper's ImageNet backbone."""
    return _resnet("resnet50", in_channels, cifar_stem=False)


class Projector(nn.Sequential):
    """The paper's projection MLP [0, App. C]: Linear-BN-ReLU blocks, then Linear-BN.

    No ReLU after the last BN, so projections can be negative. CIFAR: 512 -> 2048 -> 1000
    (``num_layers=2``); ImageNet: 2048 -> 8192 -> 8192 -> 8192 (``num_layers=3``).
    Linear layers have no bias, since the BN that follows each would cancel it.

    ``out_scale`` initialises the last BN's weight (PyTorch's default is 1): each output
    coordinate then starts with variance ``out_scale**2``, so E‖z‖² = out_dim * out_scale**2.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        out_scale: float = 1.0,
    ) -> None:
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            layers += [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out)]
            if i < num_layers - 1:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        nn.init.constant_(layers[-1].weight, out_scale)


class Predictor(nn.Sequential):
    """SimSiam's prediction MLP [1, Sec. 3]: Linear(d, h) - BN - ReLU - Linear(h, d)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__(
            nn.Linear(dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, dim),
        )


class ContrastiveModel(nn.Module):
    """Backbone + projector (+ predictor for SimSiam): the network every loss trains.

    Args:
        backbone: A registered backbone name (see :func:`list_backbones`).
        projector_hidden_dim, projector_out_dim, projector_layers: The :class:`Projector`.
        predictor_hidden_dim: Hidden width of a SimSiam :class:`Predictor`; None for none.
        in_channels: Channels of the input images.
        projector_out_scale: Initial weight of the projector's last BN (see :class:`Projector`).
        projector_spec: when given, the projector is :func:`projector_from_spec`'s instead of
            the :class:`Projector` above (an imported encoder's: ``"identity"`` or its layers).
    """

    def __init__(
        self,
        backbone: str,
        projector_hidden_dim: int,
        projector_out_dim: int,
        projector_layers: int = 2,
        predictor_hidden_dim: int | None = None,
        in_channels: int = 3,
        projector_out_scale: float = 1.0,
        projector_spec: str = "",
    ) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, in_channels)
        self.projector: nn.Module = projector_from_spec(
            projector_spec, self.backbone.feature_dim) if projector_spec else Projector(
            self.backbone.feature_dim,
            projector_hidden_dim,
            projector_out_dim,
            projector_layers,
            projector_out_scale,
        )
        self.predictor = (
            Predictor(projector_out_dim, predictor_hidden_dim) if predictor_hidden_dim else None
        )

    @property
    def feature_dim(self) -> int:
        return int(self.backbone.feature_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Features, projection and prediction of one view (the paper's f(x) is ``z``).

        Args:
            x: float tensor of shape (B, C, H, W), normalised.

        Returns:
            ``h`` (B, feature_dim), ``z`` (B, projector_out_dim), and ``p`` (B, projector_out_dim)
            or None without a predictor.
        """
        h = self.backbone(x)  # (B, feature_dim)
        z = self.projector(h)  # (B, out_dim)
        p = self.predictor(z) if self.predictor is not None else None  # (B, out_dim)
        return h, z, p


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (for summaries)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
