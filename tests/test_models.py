"""Backbone registry, projector, predictor and the assembled model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explorer.errors import UserError
from explorer.models import (
    ContrastiveModel,
    Predictor,
    Projector,
    create_backbone,
    list_backbones,
    register_backbone,
)

# Pooled feature sizes of the architectures (ResNet paper, Table 1; ours for the CNNs).
FEATURE_DIMS = {"cnn-small": 256, "cnn-narrow": 256, "cnn-wide": 1024, "resnet18-cifar": 512,
                "resnet18": 512, "resnet50": 2048}


def test_the_registry_lists_the_documented_backbones() -> None:
    assert list_backbones() == sorted(FEATURE_DIMS)


@pytest.mark.parametrize("name", list_backbones())
def test_every_backbone_pools_to_feature_dim_and_trains(name: str) -> None:
    torch.manual_seed(0)
    backbone = create_backbone(name)
    assert backbone.feature_dim == FEATURE_DIMS[name]
    features = backbone(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, backbone.feature_dim)
    features.square().mean().backward()
    for param_name, param in backbone.named_parameters():
        assert param.grad is not None, f"no gradient reaches {param_name}"
    assert any(float(p.grad.abs().sum()) > 0 for p in backbone.parameters())


@pytest.mark.parametrize("name", list_backbones())
@torch.no_grad()
def test_every_backbone_takes_one_channel_images(name: str) -> None:
    backbone = create_backbone(name, in_channels=1).eval()
    assert backbone(torch.randn(1, 1, 32, 32)).shape == (1, FEATURE_DIMS[name])


def test_resnet18_cifar_keeps_32x32_through_the_stem() -> None:
    backbone = create_backbone("resnet18-cifar")
    conv1 = backbone.conv1
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((3, 3), (1, 1), (1, 1))
    assert isinstance(backbone.maxpool, nn.Identity) and isinstance(backbone.fc, nn.Identity)
    seen: dict[str, tuple[int, ...]] = {}
    backbone.layer1.register_forward_hook(lambda m, i, o: seen.update(layer1=tuple(o.shape)))
    backbone(torch.randn(2, 3, 32, 32))
    assert seen["layer1"] == (2, 64, 32, 32)


def test_standard_resnet_keeps_its_imagenet_stem() -> None:
    backbone = create_backbone("resnet18")
    assert backbone.conv1.kernel_size == (7, 7) and backbone.conv1.stride == (2, 2)
    assert isinstance(backbone.maxpool, nn.MaxPool2d)


def test_unknown_backbone_is_a_user_error_with_a_suggestion() -> None:
    with pytest.raises(UserError) as error:
        create_backbone("resnet19")
    message = str(error.value)
    assert "unknown backbone 'resnet19'" in message and "'resnet18'" in message
    for name in list_backbones():
        assert name in message
    with pytest.raises(UserError, match="unknown backbone"):
        ContrastiveModel("vit-huge", 64, 32)


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("cnn-small")(lambda in_channels: nn.Identity())


def _linear_bn_relu_pattern(module: nn.Module) -> list[type]:
    return [type(layer) for layer in module]


def test_projector_two_layers_is_the_papers_cifar_head() -> None:
    projector = Projector(512, 2048, 1000)
    assert _linear_bn_relu_pattern(projector) == [
        nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d,
    ]  # fmt: skip
    # By hand: two bias-free Linear weights, and a BN scale and shift per hidden/output unit.
    expected = 512 * 2048 + 2 * 2048 + 2048 * 1000 + 2 * 1000
    assert sum(p.numel() for p in projector.parameters()) == expected == 3_102_672
    z = projector(torch.randn(16, 512))
    assert z.shape == (16, 1000)
    assert float(z.detach().min()) < 0  # no final ReLU: projections take both signs


def test_projector_three_layers_is_the_papers_imagenet_head_shape() -> None:
    projector = Projector(64, 128, 96, num_layers=3)  # 2048 -> 8192 -> 8192 -> 8192, scaled down
    assert _linear_bn_relu_pattern(projector) == [
        nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU,
        nn.Linear, nn.BatchNorm1d,
    ]  # fmt: skip
    expected = 64 * 128 + 2 * 128 + 128 * 128 + 2 * 128 + 128 * 96 + 2 * 96
    assert sum(p.numel() for p in projector.parameters()) == expected
    assert projector(torch.randn(4, 64)).shape == (4, 96)
    with pytest.raises(ValueError):
        Projector(8, 8, 8, num_layers=0)


def test_predictor_is_simsiams_bottleneck() -> None:
    predictor = Predictor(32, 8)
    assert _linear_bn_relu_pattern(predictor) == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    first, last = predictor[0], predictor[3]
    assert (first.in_features, first.out_features, first.bias) == (32, 8, None)
    assert (last.in_features, last.out_features) == (8, 32) and last.bias is not None
    expected = 32 * 8 + 2 * 8 + 8 * 32 + 32
    assert sum(p.numel() for p in predictor.parameters()) == expected
    assert predictor(torch.randn(4, 32)).shape == (4, 32)


@pytest.mark.parametrize("predictor_hidden_dim", [None, 16])
def test_contrastive_model_returns_features_projection_and_prediction(
    predictor_hidden_dim: int | None,
) -> None:
    model = ContrastiveModel("cnn-small", 64, 32, predictor_hidden_dim=predictor_hidden_dim,
                             in_channels=1)  # fmt: skip
    assert model.feature_dim == 256
    h, z, p = model(torch.randn(4, 1, 32, 32))
    assert h.shape == (4, 256) and z.shape == (4, 32)
    if predictor_hidden_dim is None:
        assert p is None and model.predictor is None
    else:
        assert p is not None and p.shape == (4, 32)
        assert isinstance(model.predictor, Predictor)
    (z.sum() + (0 if p is None else p.sum())).backward()
    assert all(param.grad is not None for param in model.backbone.parameters())
