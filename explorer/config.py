"""Typed run configuration, shipped presets (``explorer/presets/``) and validation with one clear
error each.

A :class:`Config` is built in three layers, later ones winning: the dataclass defaults, a preset or
config file (TOML, may name a ``base`` preset it extends), then ``key=value`` overrides from the
command line or the dashboard. :func:`validate` turns every user mistake into a one-line
:class:`~explorer.errors.UserError` that says what is valid; :func:`problems` lists them all.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from explorer.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Presets shipped with the package (package data): ``explorer/presets/<name>.toml``.
PRESETS_DIR = Path(__file__).resolve().parent / "presets"

DEVICES = ("auto", "cpu", "cuda", "mps")
PROBES = ("auto", "fast", "paper")
GRAPH_AUGMENT = "graph"  # views drawn from the exact augmentation graph's kernel (shapes only)
AUGMENTS = ("auto", "natural", "shapes", "digits", "fashion", GRAPH_AUGMENT)
GRAPH_DATASETS = ("shapes", "shapes-subgrid")
#: The largest ``class_change_p``: :data:`explorer.data.shapes.MAX_CLASS_CHANGE_P`, the kernel's
#: limit, stated here too so that a config is checked without importing the data sets (torch);
#: tests/test_config.py checks that the two agree.
MAX_CLASS_CHANGE_P = 0.9
#: The names the package itself registers, known here without importing torch (the registries
#: import it): a config that names only these is checked in microseconds, which the Runs page
#: needs (it reads every run's config, and it is the dashboard's first page). Any other name is
#: looked up in the registries: a dataset or backbone registered by the user's own code, a
#: torchvision model, or an error naming the valid ones. tests/test_config.py checks that the
#: registries hold each of these names.
BUILTIN_NAMES = {
    "dataset": ("cifar10", "cifar100", "digits", "fashion-mnist", "imagefolder", "kmnist",
                "mnist", "npz", "shapes", "shapes-subgrid", "stl10"),
    "backbone": ("cnn-narrow", "cnn-small", "cnn-wide", "resnet18", "resnet18-cifar",
                 "resnet50", "precomputed"),
    "loss": ("spectral", "simclr", "simsiam"),
}
ANALYZE_MODES = ("auto", "off", "end", "background")
ANALYSIS_PROJECTIONS = ("both", "pca", "umap")


@dataclass
class Config:
    """Everything that defines a run.

    Field names are a contract: the CLI's ``key=value`` overrides, preset files and each run's
    ``config.json`` (docs/RUN_FORMAT.md) all use them. What μ means: docs/THEORY.md, "Where μ
    lives" and "The ball".
    """

    # data
    dataset: str = "shapes"
    data_root: str = "data"
    download: bool = False
    image_size: int = 0  # 0: the dataset's native size
    train_limit: int = 0  # 0: every training image; else a class-stratified subset
    test_limit: int = 0
    augment: str = "auto"  # recipe; auto: the dataset's (graph for shapes-subgrid)
    # augment=graph only: the exact graph's kernel (explorer.data.shapes.ShapesKernel)
    crop_p: float = 0.5  # position and scale redrawn
    rotate_p: float = 0.5  # rotation redrawn
    color_p: float = 0.8  # (foreground, background) colours redrawn
    class_change_p: float = 0.0  # where a view is ambiguous, a ring/cross/star loses its detail
    # model
    backbone: str = "cnn-small"
    projector_hidden_dim: int = 2048
    projector_out_dim: int = 1000
    projector_layers: int = 2
    predictor_hidden_dim: int = 512  # SimSiam only
    init_in_ball: bool = True  # spectral: start E||z||^2 at mu/2, inside the ball (builders)
    # objective
    loss: str = "spectral"
    mu: float = 1.0  # spectral loss: f = clip(z) lives in the ball ||f||^2 <= mu (docs/THEORY.md)
    temperature: float = 0.5  # SimCLR only
    # optimisation (HaoChen et al. 2021, Appendix C: SGD, lr = lr * batch/256, warm-up + cosine)
    epochs: int = 800
    batch_size: int = 512
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 10
    # run-time
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA; ignored elsewhere
    compile: bool = False  # torch.compile the model for the training step (checkpoints unchanged)
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over the global batch (CUDA only)
    log_every: int = 10  # steps between metrics lines
    checkpoint_every: int = 1  # epochs between kept model checkpoints (the last is always kept)
    knn_every: int = 5  # epochs between cheap kNN evaluations during training; 0: never
    knn_k: int = 200
    knn_temperature: float = 0.1
    probe: str = "auto"  # fast: on precomputed features; paper: augmented SGD protocol
    probe_epochs: int = 100
    # per-checkpoint analysis (explorer.analysis.run): background on a GPU, end of run on a CPU
    analyze: str = "auto"  # off | end | background | auto
    analysis_samples: int = 5000  # images of each split in the fixed evaluation sample
    analysis_projection: str = "both"  # 2-D layouts: pca | umap | both

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def effective_lr(self) -> float:
        """Peak learning rate, scaled linearly with the batch size (Goyal et al. 2017)."""
        return self.lr * self.batch_size / 256


FIELD_TYPES: dict[str, type] = {f.name: type(f.default) for f in fields(Config)}


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def _unknown_key(key: str, where: str) -> UserError:
    close = difflib.get_close_matches(key, FIELD_TYPES, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(FIELD_TYPES)}"
    return UserError(f"unknown config key '{key}' in {where}{hint}")


#: What each field type asks for, in words (the form's users need not know "int").
KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


def _coerce(key: str, value: Any, where: str) -> Any:
    """Convert ``value`` (a TOML value or a command-line string) to the field's type."""
    if key not in FIELD_TYPES:
        raise _unknown_key(key, where)
    kind = FIELD_TYPES[key]
    text = str(value).strip()
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            number = float(text)  # accepts "1e3"; rejects "2.5" below
            if isinstance(value, bool) or not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            return float(text)
        return text
    except ValueError:
        raise UserError(f"{key}={text!r} in {where} is not a valid {kind.__name__} "
                        f"({KIND_WORDS[kind]})") from None


def _read_toml(path: Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a config file, resolving ``base = "preset"`` inheritance."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as err:
        raise UserError(f"cannot read config file {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"config file {path} is not valid TOML: {err}") from None
    base = data.pop("base", None)
    values: dict[str, Any] = {}
    if base is not None:
        if base in seen:
            raise UserError(f"config file {path} inherits from itself through '{base}'")
        values.update(_read_toml(preset_path(base), (*seen, base)))
    for key, value in data.items():
        values[key] = _coerce(key, value, str(path))
    return values


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        presets = list_presets()
        close = difflib.get_close_matches(name, presets, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"unknown preset '{name}'; {hint}choose one of: {', '.join(presets)}")
    return path


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``["key=value", ...]`` into typed values."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override '{item}' must look like key=value, e.g. epochs=20")
        values[key.strip()] = _coerce(key.strip(), value, "the command line")
    return values


def build_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    *,
    where: str = "the overrides",
) -> Config:
    """Defaults, then the preset, then the config file, then the overrides; validated.
    ``where`` names the overrides in a message (the dashboard's: "the form")."""
    values: dict[str, Any] = {}
    if preset is not None:
        values.update(_read_toml(preset_path(preset), (preset,)))
    if config_file is not None:
        values.update(_read_toml(Path(config_file)))
    if isinstance(overrides, dict):
        values.update({k: _coerce(k, v, where) for k, v in overrides.items()})
    elif overrides:
        values.update(parse_overrides(overrides))
    config = Config(**values)
    validate(config)
    return config


def config_from_dict(data: dict[str, Any], where: str) -> Config:
    """Rebuild a saved config (a run's ``config.json``); keys unknown to this version are errors."""
    config = Config(**{k: _coerce(k, v, where) for k, v in data.items()})
    validate(config)
    return config


Problem = tuple[str, str]  # (field, one-line message naming it)


def _choice(key: str, value: str, valid: list[str] | tuple[str, ...]) -> Problem | None:
    if value in valid:
        return None
    close = difflib.get_close_matches(value, valid, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return key, f"unknown {key} '{value}'; {hint}choose one of: {', '.join(valid)}"


def draws_graph_views(config: Config) -> bool:
    """Whether a config's views come from the exact graph's kernel (``augment=graph``, which
    ``auto`` means on ``shapes-subgrid``)."""
    return config.augment == GRAPH_AUGMENT or (
        config.augment == "auto" and config.dataset == "shapes-subgrid")


def _registry_problems(config: Config) -> list[Problem | None]:
    """The dataset, backbone and loss looked up in their registries (which import torch)."""
    from explorer.data import list_datasets
    from explorer.losses import LOSSES
    from explorer.models import backbone_problem

    backbone = backbone_problem(config.backbone)
    return [_choice("dataset", config.dataset, list_datasets()),
            None if backbone is None else ("backbone", backbone),
            _choice("loss", config.loss, LOSSES)]


def problems(config: Config) -> list[Problem]:
    """Every invalid field of ``config``: ``(field, message)``, each message one line naming
    the field and what is valid. :func:`validate` raises the first; the dashboard shows all."""
    found = [] if all(getattr(config, key) in names for key, names in BUILTIN_NAMES.items()) \
        else _registry_problems(config)
    found += [
        _choice("device", config.device, DEVICES),
        _choice("probe", config.probe, PROBES),
        _choice("augment", config.augment, AUGMENTS),
        _choice("analyze", config.analyze, ANALYZE_MODES),
        _choice("analysis_projection", config.analysis_projection, ANALYSIS_PROJECTIONS),
    ]

    def check(key: str, condition: bool, message: str) -> None:
        found.append(None if condition else (key, message))

    if config.augment == GRAPH_AUGMENT:
        check(
            "augment",
            config.dataset in GRAPH_DATASETS and config.image_size in (0, 32),
            f"augment=graph draws views from the exact graph of a shapes grid: it needs dataset "
            f"shapes or shapes-subgrid at image_size=0 (got {config.dataset}, "
            f"image_size={config.image_size})",
        )
    c = config
    kernel_fields = ("crop_p", "rotate_p", "color_p", "class_change_p")
    for key in kernel_fields[:3]:
        check(key, 0 <= getattr(c, key) <= 1,
              f"{key} must be a probability in [0, 1] (got {getattr(c, key)})")
    check("class_change_p", 0 <= c.class_change_p <= MAX_CLASS_CHANGE_P,
          f"class_change_p must be in [0, {MAX_CLASS_CHANGE_P}] (got {c.class_change_p}): at 1 "
          "the most ambiguous views of a detailed shape would never show it")
    if not draws_graph_views(c):
        changed = [k for k in kernel_fields if getattr(c, k) != getattr(Config, k)]
        for key in changed:
            found.append((key, f"{key} sets the kernel of augment=graph views; this config "
                               f"augments with '{c.augment}' on {c.dataset}: set augment=graph "
                               f"(shapes datasets) or leave {key} at {getattr(Config, key)}"))
    check("mu", c.mu > 0, f"mu must be positive (got {c.mu}); the paper uses 1 or 10")
    check("temperature", c.temperature > 0, f"temperature must be positive (got {c.temperature})")
    check("epochs", c.epochs >= 1, f"epochs must be at least 1 (got {c.epochs})")
    check("batch_size", c.batch_size >= 2, f"batch_size must be at least 2 (got {c.batch_size})")
    check("lr", c.lr > 0, f"lr must be positive (got {c.lr})")
    check("weight_decay", c.weight_decay >= 0, f"weight_decay must be >= 0 (got {c.weight_decay})")
    check("momentum", 0 <= c.momentum < 1, f"momentum must be in [0, 1) (got {c.momentum})")
    check("warmup_epochs", c.warmup_epochs >= 0,
          f"warmup_epochs must be >= 0 (got {c.warmup_epochs})")
    check("image_size", c.image_size >= 0, f"image_size must be >= 0 (got {c.image_size})")
    check("train_limit", c.train_limit >= 0, f"train_limit must be >= 0 (got {c.train_limit})")
    check("test_limit", c.test_limit >= 0, f"test_limit must be >= 0 (got {c.test_limit})")
    for key in ("projector_hidden_dim", "projector_out_dim", "predictor_hidden_dim"):
        check(key, getattr(c, key) >= 1, f"{key} must be at least 1 (got {getattr(c, key)})")
    check("projector_layers", c.projector_layers >= 2, "projector_layers must be at least 2")
    check("log_every", c.log_every >= 1, f"log_every must be at least 1 (got {c.log_every})")
    check("checkpoint_every", c.checkpoint_every >= 1, "checkpoint_every must be at least 1")
    check("knn_every", c.knn_every >= 0, "knn_every must be >= 0 (0 turns the kNN monitor off)")
    check("knn_k", c.knn_k >= 1, f"knn_k must be at least 1 (got {c.knn_k})")
    check("knn_temperature", c.knn_temperature > 0, "knn_temperature must be positive")
    check("probe_epochs", c.probe_epochs >= 1, "probe_epochs must be at least 1")
    check("analysis_samples", c.analysis_samples >= 20, "analysis_samples must be at least 20")
    if c.dataset == "imagefolder":
        root = Path(c.data_root)
        check(
            "data_root",
            root.is_dir() and any(root.iterdir()),
            f"data_root '{c.data_root}' is missing or empty; imagefolder needs a folder "
            "with one sub-folder of images per class",
        )
    return [problem for problem in found if problem is not None]


def validate(config: Config) -> None:
    """Raise a one-line :class:`UserError` for the first invalid field (:func:`problems`)."""
    found = problems(config)
    if found:
        raise UserError(found[0][1])


def config_warnings(config: Config) -> list[Problem]:
    """Valid but probably unintended settings: ``(field, one-line message)``."""
    found = []
    if config.warmup_epochs >= config.epochs:
        found.append((
            "warmup_epochs",
            f"warmup_epochs ({config.warmup_epochs}) >= epochs ({config.epochs}): the learning "
            "rate only warms up and never decays; lower warmup_epochs below epochs",
        ))
    return found


def form_problems(
    preset: str | None, overrides: dict[str, Any]
) -> tuple[Config | None, list[Problem]]:
    """Check a form's values (as typed) all at once: the config they make, or ``None``, and
    every problem, one per bad field (what cannot be read as its type, then :func:`problems`).

    The messages are :func:`build_config`'s, so a form and the command line say the same.
    """
    try:
        values = _read_toml(preset_path(preset), (preset,)) if preset is not None else {}
    except UserError as err:
        return None, [("preset", str(err))]
    found: list[Problem] = []
    for key, value in overrides.items():
        try:
            values[key] = _coerce(key, value, "the form")
        except UserError as err:
            found.append((key, str(err)))
    config = Config(**values)
    found += problems(config)
    found += _missing_data(config)
    return (None if found else config), found


def _missing_data(config: Config) -> list[Problem]:
    """A form's ``data_root`` without the files its MNIST-format dataset reads, and no download:
    said before the run starts rather than in its log. (Not in :func:`problems`, which also
    checks saved runs' configs: a run stays readable after its data moves.)"""
    from explorer.data.mnist import GREY_DATASETS, not_found_message

    if config.dataset not in GREY_DATASETS or config.download:
        return []
    message = not_found_message(config.dataset, Path(config.data_root).expanduser())
    return [] if message is None else [("data_root", message)]
