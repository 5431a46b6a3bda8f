"""Analysis artifacts of a run: one pair of files per checkpoint under ``analysis/``.

Beside :mod:`explorer.rundir.run`, this module is the only code that reads or writes them (format
:data:`ANALYSIS_FORMAT_VERSION`, documented in docs/RUN_FORMAT.md)::

    analysis/epoch-0005.npz     NumPy arrays (spectra, 2-D layouts, labels, image indices)
    analysis/epoch-0005.json    {"format_version", "epoch", "checkpoint", "arrays": [...],
                                 "projections": [...], "metrics": {...}, "probes": {...}, ...}

The arrays are written first and the JSON last, both atomically, so a JSON file marks a complete
artifact. Arrays are read with ``allow_pickle=False``: an artifact cannot run code. A damaged or
foreign artifact raises a :class:`~explorer.errors.UserError` naming the file;
:func:`load_all_analyses` reports it per checkpoint and still returns the others.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from explorer.errors import UserError
from explorer.rundir.run import Run, _atomic_path, _read_json, _write_json

# 3: the C+ = C^2 residual renamed stationarity_residual; SimCLR/SimSiam read as z/|z| at the
# best scale (explorer.analysis.metrics.loss_features); every eigenspace's span and its chance level
ANALYSIS_FORMAT_VERSION = 3
ANALYSIS_DIR = "analysis"
_STEM = re.compile(r"epoch-(\d+)")


def analysis_dir(run: Run) -> Path:
    return run.path / ANALYSIS_DIR


def _paths(run: Run, epoch: int) -> tuple[Path, Path]:
    stem = analysis_dir(run) / f"epoch-{epoch:04d}"
    return stem.with_suffix(".json"), stem.with_suffix(".npz")


def save_analysis(
    run: Run, epoch: int, record: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Path:
    """Write one checkpoint's artifact: the arrays, then the JSON record that lists them.

    Args:
        run: the run.
        epoch: the checkpoint's epoch.
        record: JSON-ready scalars (metrics, probe results, ...); ``format_version``, ``epoch``
            and ``arrays`` are added here.
        arrays: name -> NumPy array of a numeric dtype (no objects: they would need pickle).

    Returns:
        The JSON file's path.
    """
    for name, value in arrays.items():
        if np.asarray(value).dtype.hasobject:
            raise ValueError(f"array {name} has dtype object; artifacts hold numeric arrays only")
    json_path, npz_path = _paths(run, epoch)
    json_path.parent.mkdir(exist_ok=True)
    with _atomic_path(npz_path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})
    _write_json(
        json_path,
        {
            **record,
            "format_version": ANALYSIS_FORMAT_VERSION,
            "epoch": epoch,
            "arrays": sorted(arrays),
        },
    )
    return json_path


def analysed_epochs(run: Run) -> list[int]:
    """Epochs with an artifact record (complete or not), oldest first."""
    epochs = []
    for path in analysis_dir(run).glob("epoch-*.json"):
        match = _STEM.fullmatch(path.stem)
        if match:
            epochs.append(int(match.group(1)))
    return sorted(epochs)


def load_analysis(run: Run, epoch: int) -> dict[str, Any]:
    """One checkpoint's artifact: the JSON record with its arrays under ``"arrays"`` (a dict).

    Raises:
        UserError: missing, truncated or corrupt files, an unknown format version, or a listed
            array missing from the ``.npz`` file; the message names the file.
    """
    json_path, npz_path = _paths(run, epoch)
    record = _read_json(json_path)
    version = record.get("format_version")
    if version != ANALYSIS_FORMAT_VERSION:
        raise UserError(
            f"{json_path} has analysis format version {version}, this explorer reads version "
            f"{ANALYSIS_FORMAT_VERSION}; recompute it with: explorer analyze {run.path} --force"
        )
    listed = record.get("arrays", [])
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}  # read now: surface damage here
    except FileNotFoundError:
        raise UserError(f"{npz_path} is missing (its record {json_path} exists)") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise UserError(f"{npz_path} is truncated or corrupt ({err})") from None
    missing = sorted(set(listed) - set(arrays))
    if missing:
        raise UserError(f"{npz_path} lacks the arrays {', '.join(missing)}; recompute it")
    record["arrays"] = arrays
    return record


def load_record(run: Run, epoch: int) -> dict[str, Any]:
    """One checkpoint's JSON record alone, without its arrays (a few kB: what a summary of the
    run needs, read every few seconds by the dashboard).

    Raises:
        UserError: a missing, truncated or corrupt record, or an unknown format version.
    """
    json_path = _paths(run, epoch)[0]
    record = _read_json(json_path)
    if record.get("format_version") != ANALYSIS_FORMAT_VERSION:
        raise UserError(f"{json_path} has analysis format version {record.get('format_version')}"
                        f", this explorer reads version {ANALYSIS_FORMAT_VERSION}")
    return record


def load_all_analyses(run: Run) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """Every checkpoint's artifact: ``(artifacts by epoch, error messages by epoch)``.

    A damaged artifact lands in the second dict; the others still load.
    """
    loaded: dict[int, dict[str, Any]] = {}
    errors: dict[int, str] = {}
    for epoch in analysed_epochs(run):
        try:
            loaded[epoch] = load_analysis(run, epoch)
        except UserError as err:
            errors[epoch] = str(err)
    return loaded, errors


def has_analysis(run: Run, epoch: int, projections: tuple[str, ...] = ()) -> bool:
    """Whether ``epoch`` has a complete, readable artifact with every one of ``projections``
    (a damaged one counts as missing, so that ``explorer analyze`` recomputes it)."""
    try:
        record = load_analysis(run, epoch)
    except UserError:
        return False
    return set(projections) <= set(record.get("projections", []))
