"""``explorer import``: an encoder trained elsewhere, or its features, made a run every page reads.

Two sources (docs/RUN_FORMAT.md, "Imported runs"):

- **weights**: an architecture (a backbone of :mod:`explorer.models`, or a torchvision
  classification model by name, kept as ``torchvision:NAME``) and a ``.pth``/``.pt``/``.ckpt``
  file (read with ``torch.load(weights_only=True)``: a file that needs code to unpickle is
  refused) or ``.safetensors``. The tensors are found under ``state_dict`` (Lightning, as
  solo-learn and lightly save them), ``model`` or ``model_state_dict``, or at the top; the
  wrappers ``module.`` and ``model.`` and the prefixes ``backbone.`` and ``encoder.`` are
  stripped, and a projector under ``projector.`` or ``projection_head.`` (Linear, BatchNorm1d
  and parameter-free layers in between, read as ReLU) is rebuilt
  (:func:`explorer.models.projector_from_spec`). Without one the projector is the identity, so
  f = h. Every tensor not loaded is listed; a shape that does not fit is an error naming the
  key and both shapes. The run's one checkpoint (epoch 1) is then analysed on the dataset the
  ``key=value`` overrides name, and probed, as a trained run's last checkpoint.
- **features**: an ``.npz`` with ``features`` (N, d) and ``labels`` (N,), optionally ``split``
  (0 train, 1 test; else a seeded hold-out), ``classes`` and ``images`` or ``paths`` (the
  dataset ``npz``, :mod:`explorer.data.npz`, reads those for the pages' thumbnails). There is
  no network: the analysis reads the features (:func:`explorer.analysis.checkpoint.
  analyze_features`) and says what needs views and is missing.

The run is built in ``RUNS_DIR/.staging/`` and appears whole (:func:`explorer.rundir.run.
staged_run`); an existing run is never overwritten. Every user mistake is a one-line
:class:`~explorer.errors.UserError`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from explorer.analysis.probes import probe_features
from explorer.analysis.run import IMPORTED_EPOCH, analyze_run
from explorer.builders import build_model, load_splits
from explorer.config import Config, build_config, parse_overrides
from explorer.errors import UserError, first_line
from explorer.models import (
    PRECOMPUTED,
    TORCHVISION_PREFIX,
    backbone_problem,
    list_backbones,
    torchvision_models,
)
from explorer.rundir.run import Run, check_run_name, run_path, staged_run

WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
FEATURE_SUFFIXES = (".npz",)
#: Where checkpoints keep their tensors, tried in order (else the top level).
CONTAINERS = ("state_dict", "model", "model_state_dict")
#: Wrappers stripped from the front of every key (DataParallel/DDP, a Lightning module's model).
WRAPPERS = ("module.", "model.")
BACKBONE_PREFIXES = ("backbone.", "encoder.")
PROJECTOR_PREFIXES = ("projector.", "projection_head.")
#: Keys the user may not set with key=value on an import (the import sets them).
SET_BY_IMPORT = ("backbone", "epochs", "warmup_epochs", "projector_hidden_dim",
                 "projector_out_dim", "projector_layers")


@dataclass
class LoadedWeights:
    """A weights file fitted to a model: what the run's checkpoint holds and how it was found.

    Attributes:
        state: the model's full ``state_dict`` with the file's tensors in place.
        projector_spec: ``"identity"`` (the file has no projector) or the rebuilt one's layers.
        stripped: prefix -> how many keys lost it.
        not_loaded: the file's keys (as written) that the model does not use, in file order.
        source_epoch: the epoch the file records (Lightning's ``epoch``), else None.
    """

    state: dict[str, Tensor]
    projector_spec: str
    stripped: dict[str, int] = field(default_factory=dict)
    not_loaded: list[str] = field(default_factory=list)
    source_epoch: int | None = None


@dataclass
class ImportResult:
    """What :func:`import_encoder` made: the run, its analysis records and probe results."""

    run: Run
    imported: dict[str, Any]
    records: list[dict[str, Any]]
    probe: dict[str, Any]


def read_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The tensors of a weights file by key, and its scalar metadata (``epoch``, ...).

    Raises:
        UserError: a missing or unreadable file, one that needs code to unpickle, or one
            without tensors.
    """
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), {}
        except (SafetensorError, OSError, ValueError) as err:
            raise UserError(f"{path} is not a readable safetensors file ({first_line(err)})"
                            ) from None
    import pickle

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" (it holds a {found.group(1)} object)" if found else ""
        raise UserError(f"{path} needs code to unpickle{what}; explorer loads weights only: "
                        "save its state_dict alone (if you trust the file: torch.save(torch.load("
                        "FILE, weights_only=False)['state_dict'], 'weights.pth')), or as "
                        ".safetensors") from None
    except Exception as err:  # torch raises several types for damaged files
        raise UserError(f"{path} is not a readable PyTorch file ({first_line(err)})") from None
    meta: dict[str, Any] = {}
    if isinstance(loaded, dict):
        meta = {k: v for k, v in loaded.items() if isinstance(v, (int, float, str))}
        for key in CONTAINERS:
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    tensors = loaded if isinstance(loaded, dict) else {}
    tensors = {k: v for k, v in tensors.items() if isinstance(k, str) and torch.is_tensor(v)}
    if not tensors:
        raise UserError(f"{path} holds no tensors by name (a state_dict, or one under "
                        f"{', '.join(CONTAINERS)}); save model.state_dict()")
    return tensors, meta


def resolve_arch(arch: str) -> str:
    """The backbone name a config stores for ``--arch``: the project's backbone of that name,
    else ``torchvision:NAME`` for a torchvision classification model (either spelling)."""
    if arch in list_backbones() or arch.startswith(TORCHVISION_PREFIX):
        name = arch
    elif arch in torchvision_models():
        name = TORCHVISION_PREFIX + arch
    else:
        problem = backbone_problem(arch)
        raise UserError(f"--arch: {problem}" if problem else f"--arch {arch} builds no network")
    problem = backbone_problem(name)
    if problem is not None:
        raise UserError(f"--arch: {problem}")
    return name


def _strip(key: str, prefixes: tuple[str, ...], stripped: dict[str, int]) -> str:
    for prefix in prefixes:
        if key.startswith(prefix):
            stripped[prefix] = stripped.get(prefix, 0) + 1
            return key[len(prefix):]
    return key


def split_keys(
    tensors: dict[str, Tensor],
) -> tuple[dict[str, str], dict[str, str], dict[str, int]]:
    """Sort a file's keys: ``(backbone, projector, stripped)``, the first two mapping a key
    without its prefixes to the key as written. With ``backbone.``/``encoder.`` keys present,
    only those are the backbone's; else every key outside the projector is a candidate."""
    stripped: dict[str, int] = {}
    backbone: dict[str, str] = {}
    projector: dict[str, str] = {}
    plain: dict[str, str] = {}
    for original in tensors:
        key = original
        while key.startswith(WRAPPERS):
            key = _strip(key, WRAPPERS, stripped)
        if key.startswith(BACKBONE_PREFIXES):
            backbone[_strip(key, BACKBONE_PREFIXES, stripped)] = original
        elif key.startswith(PROJECTOR_PREFIXES):
            inner = _strip(key, PROJECTOR_PREFIXES, stripped)
            projector[inner.removeprefix("layers.")] = original  # lightly: projection_head.layers
        else:
            plain[key] = original
    return (backbone or plain), projector, stripped


def projector_layers(
    keys: dict[str, str], tensors: dict[str, Tensor]
) -> tuple[str, dict[str, str]]:
    """The spec of a projector whose keys (``"0.weight"``, ``"1.running_mean"``, ... mapped to
    the keys as written) are a Sequential of Linear and BatchNorm1d layers, parameter-free
    layers (gaps in the numbering) read as ReLU; and its keys renamed to the spec's positions.

    Returns ``("", {})`` when the keys are not such a Sequential."""
    layers: dict[int, dict[str, str]] = {}
    for key, original in keys.items():
        index, _, name = key.partition(".")
        if not index.isdigit() or not name or "." in name:
            return "", {}
        layers.setdefault(int(index), {})[name] = original
    tokens: list[str] = []
    renamed: dict[str, str] = {}
    previous = None
    for index in sorted(layers):
        params = layers[index]
        if previous is not None and index > previous + 1:
            tokens.append("relu")
        weight = tensors[params["weight"]] if "weight" in params else None
        if "running_mean" in params:
            tokens.append("bn" if weight is not None else "bn:noaffine")
        elif weight is not None and weight.dim() == 2 and set(params) <= {"weight", "bias"}:
            tokens.append(f"linear:{weight.shape[0]}" + (":bias" if "bias" in params else ""))
        else:
            return "", {}
        renamed.update({f"{len(tokens) - 1}.{name}": original for name, original in params.items()})
        previous = index
    if not tokens or not tokens[0].startswith("linear"):
        return "", {}
    return ",".join(tokens), renamed


def _shape(tensor: Tensor) -> str:
    return "(" + ", ".join(map(str, tensor.shape)) + ")"


def fit_weights(path: Path, tensors: dict[str, Tensor], config: Config,
                in_channels: int) -> LoadedWeights:
    """The file's tensors in the model ``config`` builds (its backbone, and the projector the
    file holds or the identity).

    Raises:
        UserError: no backbone weight found, a backbone weight missing, or a shape that does not
            fit (naming the key as written and both shapes).
    """
    backbone_keys, projector_keys, stripped = split_keys(tensors)
    spec, projector_renamed = projector_layers(projector_keys, tensors)
    model = build_model(config, in_channels, spec or "identity")
    feature_dim = model.feature_dim
    if spec:  # the file's projector must start from the backbone's features
        first = tensors[projector_renamed["0.weight"]]
        if first.shape[1] != feature_dim:
            raise UserError(f"{path}: {projector_renamed['0.weight']} has shape {_shape(first)}, "
                            f"the projector of {config.backbone}'s {feature_dim} features "
                            f"expects ({first.shape[0]}, {feature_dim})")
    wanted = model.state_dict()
    given = {f"backbone.{k}": v for k, v in backbone_keys.items()}
    given.update({f"projector.{k}": v for k, v in projector_renamed.items()})
    matched = {k: v for k, v in given.items() if k in wanted}
    if not any(k.startswith("backbone.") for k in matched):
        heads = sorted({k.split(".")[0] + "." for k in tensors})[:6]
        raise UserError(f"{path} holds no weight of backbone {config.backbone} (its keys start "
                        f"with {', '.join(heads)}); is --arch right?")
    for key, original in matched.items():
        if tensors[original].shape != wanted[key].shape:
            raise UserError(f"{path}: {original} has shape {_shape(tensors[original])}, the "
                            f"model's {key} expects {_shape(wanted[key])}; is --arch right?")
    weights = [k for k in wanted if not k.endswith("num_batches_tracked")]  # a counter
    missing = [k for k in weights if k not in matched]
    if missing:
        raise UserError(f"{path} lacks {len(missing)} of the {len(weights)} weights of "
                        f"{config.backbone}, first {missing[0]}; is --arch right?")
    state = {k: tensors[matched[k]].to(wanted[k].dtype) if k in matched else wanted[k]
             for k in wanted}
    used = set(matched.values())
    return LoadedWeights(state, spec or "identity", stripped,
                         [k for k in tensors if k not in used])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_config(overrides: list[str] | dict[str, Any], **set_here: Any) -> Config:
    """The imported run's config: the overrides (as for ``explorer train``), the loss read as
    ``simclr`` (z/‖z‖) unless given, then what the import sets (one epoch, its backbone)."""
    values = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)
    for key in (*SET_BY_IMPORT, *set_here):
        if key in values:
            raise UserError(f"{key}= is set by the import (from the file and --arch); drop it")
    if values.get("loss") == "simsiam":
        raise UserError("loss=simsiam needs its predictor, which an import does not bring; use "
                        "loss=simclr (the same reading of z, z/|z|)")
    values.setdefault("loss", "simclr")
    values.update(epochs=1, warmup_epochs=0, **set_here)
    return build_config(overrides=values, where="the import's key=value")


def _default_name(path: Path, dataset: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", path.stem).lstrip("._-") or "encoder"
    return check_run_name(f"{stem}-{dataset}"[:100])


def import_encoder(
    file: str | Path,
    *,
    arch: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    name: str | None = None,
    runs_dir: str | Path = "runs",
    device: str | None = None,
    progress: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> ImportResult:
    """Make a run of an encoder's weights file (with ``arch``) or of a features ``.npz``, analyse
    it and probe it (module doc). ``overrides``: ``key=value`` strings or a dict, as for
    ``explorer train`` (``dataset``, ``data_root``, ``image_size``, ``loss``, ``mu``, ...).
    ``name``: the run's (default ``STEM-DATASET``). ``on_stage(what)`` hears each stage as it
    starts (a page shows it). Returns the published run and its readings.
    """
    tell = on_stage or (lambda what: None)
    path = Path(file).expanduser()
    overrides = overrides or []
    if path.suffix in FEATURE_SUFFIXES:
        if arch is not None:
            raise UserError("--arch is for weights files; a features .npz has no network: "
                            "drop --arch")
        return _import_features(path, overrides, name, runs_dir, tell)
    if path.suffix not in WEIGHT_SUFFIXES:
        raise UserError(f"{path}: explorer imports {', '.join(WEIGHT_SUFFIXES)} weights or "
                        f"{', '.join(FEATURE_SUFFIXES)} features, not '{path.suffix}'")
    if arch is None:
        raise UserError(f"{path} holds weights: say which network with --arch (e.g. resnet18, "
                        "or any torchvision classification model)")
    tell(f"reading {path.name}")
    tensors, meta = read_tensors(path)
    config = import_config(overrides, backbone=resolve_arch(arch))
    tell(f"loading the data set {config.dataset}")
    train, test = load_splits(config)
    in_channels = int(train.images.shape[1])
    tell(f"fitting the weights to {config.backbone}")
    loaded = fit_weights(path, tensors, config, in_channels)
    _check_forward(config, in_channels, loaded, train.images[:2])
    epoch = meta.get("epoch")
    imported = {
        "kind": "weights", "source": str(path.resolve()), "sha256": _sha256(path),
        "arch": arch, "backbone": config.backbone, "prefixes_stripped": loaded.stripped,
        "not_loaded": loaded.not_loaded, "projector_spec": loaded.projector_spec,
        "projector": ("from the file" if loaded.projector_spec != "identity" else
                      "none in the file: the identity, so z = h"),
        "source_epoch": epoch if isinstance(epoch, int) else None,
    }
    name = name or _default_name(path, config.dataset)
    with staged_run(runs_dir, config, name, {"imported": imported}) as run:
        from explorer.analysis.probe_run import probe_run

        run.save_weights(IMPORTED_EPOCH, loaded.state)
        _finished(run)
        tell("analysing the checkpoint: spectra, probes, layouts")
        records = analyze_run(run, device=device, progress=progress, splits=(train, test))
        tell("probing the backbone (linear and kNN)")
        probe = probe_run(run, device=device, progress=progress)
    return ImportResult(Run(run_path(runs_dir, name)), imported, records, probe)


def _check_forward(config: Config, in_channels: int, loaded: LoadedWeights,
                   images: Tensor) -> None:
    """The loaded model runs on two of the dataset's images, else a one-line UserError."""
    model = build_model(config, in_channels, loaded.projector_spec)
    model.load_state_dict(loaded.state)
    try:
        with torch.no_grad():
            model.eval()(images.float() / 255)
    except RuntimeError as err:
        size = images.shape[-1]
        raise UserError(f"{config.backbone} does not run on {size}x{size} images of "
                        f"{config.dataset} ({first_line(err, 120)}); set image_size= to what it "
                        "was trained on") from None


def _finished(run: Run) -> None:
    run.update_status(state="finished", epoch=IMPORTED_EPOCH, total_epochs=IMPORTED_EPOCH,
                      step=0, total_steps=0, progress=1.0, phase="done", pid=None)


def _import_features(path: Path, overrides: list[str] | dict[str, Any], name: str | None,
                     runs_dir: str | Path, tell: Callable[[str], None]) -> ImportResult:
    """A run of the given features (module doc)."""
    from explorer.data.npz import check_labels, class_names, read_npz, split_rows

    tell(f"reading {path.name}")
    data = read_npz(path)
    features = data.get("features")
    if features is None or features.ndim != 2 or features.dtype.kind not in "fiu":
        raise UserError(f"{path} needs 'features': numbers of shape (N, d)")
    if not np.isfinite(features).all():
        raise UserError(f"{path}: 'features' holds NaN or infinite values")
    check_labels(path, data, len(features))
    given = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)
    for key in ("dataset", "data_root", "train_limit", "test_limit"):
        if key in given:
            raise UserError(f"{key}= does not apply: a features file brings its own rows, "
                            "labels and images; drop it")
    d = int(features.shape[1])
    config = import_config(given, dataset="npz", data_root=str(path.resolve()),
                           backbone=PRECOMPUTED, projector_hidden_dim=d, projector_out_dim=d)
    classes = class_names(data)
    train_rows, test_rows = split_rows(data["labels"], data.get("split"))
    split = np.zeros(len(features), dtype=np.int8)
    split[test_rows] = 1
    imported = {
        "kind": "features", "source": str(path.resolve()), "sha256": _sha256(path),
        "projector_spec": "identity", "projector": "none: the features are h = z",
        "images": "images" if "images" in data else "paths" if "paths" in data else None,
        "split": "given" if "split" in data else "seeded hold-out",
    }
    name = name or _default_name(path, "features")
    with staged_run(runs_dir, config, name, {"imported": imported}) as run:
        run.save_features({"features": features.astype(np.float32),
                           "labels": data["labels"].astype(np.int64), "split": split,
                           "classes": np.array(classes)})
        _finished(run)
        tell("analysing the features: spectra, probes, layouts")
        records = analyze_run(run)
        x = torch.from_numpy(features.astype(np.float32))
        y = torch.from_numpy(data["labels"].astype(np.int64))
        tr, te = torch.from_numpy(train_rows), torch.from_numpy(test_rows)
        methods = {"trained": probe_features(x[tr], y[tr], x[te], y[te], len(classes),
                                             knn_k=config.knn_k,
                                             knn_temperature=config.knn_temperature)}
        probe = {"epoch": IMPORTED_EPOCH, "classes": classes, "n_train": len(tr),
                 "n_test": len(te), "methods": methods}
        run.save_probe(probe)
    return ImportResult(Run(run_path(runs_dir, name)), imported, records, probe)


def describe(result: ImportResult, limit: int = 8) -> str:
    """What ``explorer import`` prints about the import (before the analysis and probe tables)."""
    imported = result.imported
    lines = [f"run directory: {result.run.path}"]
    if imported["kind"] == "weights":
        stripped = ", ".join(f"'{p}' ({n} keys)" for p, n in imported["prefixes_stripped"].items())
        lines.append(f"backbone {imported['backbone']} loaded from {imported['source']}"
                     + (f"; prefixes stripped: {stripped}" if stripped else ""))
        lines.append(f"projector: {imported['projector']}"
                     + (f" ({imported['projector_spec']})"
                        if imported["projector_spec"] != "identity" else ""))
        unused = imported["not_loaded"]
        if unused:
            shown = ", ".join(unused[:limit]) + (f", ... ({len(unused) - limit} more)"
                                                 if len(unused) > limit else "")
            lines.append(f"not loaded ({len(unused)} tensors): {shown}")
    else:
        lines.append(f"features from {imported['source']} (no network; split: "
                     f"{imported['split']}; images: {imported['images'] or 'none'})")
    return "\n".join(lines)
