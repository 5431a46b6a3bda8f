"""Analysis artifacts of a run: one pair of files per checkpoint under ``analysis/``.

Beside :mod:`explorer.rundir.run`, this module is the only code that reads or writes them (format
:data:`ANALYSIS_FORMAT_VERSION`, documented in docs/RUN_FORMAT.md)::

    analysis/epoch-0005.npz     NumPy arrays (spectra, 2-D layouts, labels, image indices)
    analysis/epoch-0005.json    {"format_version", "epoch", "checkpoint", "arrays": [...],
                                 "projections": [...], "metrics": {...}, "probes": {...}, ...}

The arrays are written first and the JSON last, both atomically, so a JSON file marks a complete
artifact. Arrays are read with ``allow_pickle=False``: an artifact cannot run code. A damaged or
foreign artifact, or one of a format this explorer does not know, raises a
:class:`~explorer.errors.UserError` naming the file; :func:`load_all_analyses` reports it per
checkpoint and still returns the others.

Every format the project wrote is read (:data:`~explorer.rundir.records.ANALYSIS_FORMATS`):
``load_*`` give the JSON as it was written (a dict), ``read_*`` the same as an
:class:`~explorer.rundir.records.AnalysisRecord`, one shape for every format.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from explorer.errors import UserError
from explorer.rundir.records import (
    ANALYSIS_FORMAT_VERSION,
    ANALYSIS_FORMATS,
    CURRENT_FEATURES_SINCE,
    AnalysisRecord,
    analysis_record,
)
from explorer.rundir.run import Run, _atomic_path, _read_json, _write_json

T = TypeVar("T")

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


def load_record(run: Run, epoch: int) -> dict[str, Any]:
    """One checkpoint's JSON record alone, any format, as written, without its arrays (a few kB:
    what a summary of the run needs, read every few seconds by the dashboard).
    :func:`read_record` gives it typed.

    Raises:
        UserError: a missing, truncated or corrupt record, or an unknown format version.
    """
    json_path = _paths(run, epoch)[0]
    record = _read_json(json_path)
    version = record.get("format_version")
    if isinstance(version, bool) or version not in ANALYSIS_FORMATS:
        raise UserError(
            f"{json_path} has analysis format version {version}, this explorer reads versions "
            f"{ANALYSIS_FORMATS[0]} to {ANALYSIS_FORMATS[-1]}; recompute it with: explorer "
            f"analyze {run.path} --force"
        )
    return record


def load_analysis(run: Run, epoch: int) -> dict[str, Any]:
    """One checkpoint's artifact, any format, as written: the JSON record with its arrays under
    ``"arrays"`` (a dict). :func:`read_analysis` gives it typed.

    Raises:
        UserError: missing, truncated or corrupt files, an unknown format version, or a listed
            array missing from the ``.npz`` file; the message names the file.
    """
    json_path, npz_path = _paths(run, epoch)
    record = load_record(run, epoch)
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


def _typed(run: Run, epoch: int, record: dict[str, Any]) -> AnalysisRecord:
    """``record`` read by :func:`explorer.rundir.records.analysis_record`; a record whose values
    do not read (valid JSON, but not an analysis) is a UserError naming the file."""
    try:
        return analysis_record(record)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise UserError(f"{_paths(run, epoch)[0]} does not read as an analysis record ({err!r})"
                        f"; recompute it with: explorer analyze {run.path} --force") from None


def read_analysis(run: Run, epoch: int) -> AnalysisRecord:
    """One checkpoint's artifact, any format, typed, with its arrays (:func:`load_analysis`'s
    errors)."""
    return _typed(run, epoch, load_analysis(run, epoch))


def read_record(run: Run, epoch: int) -> AnalysisRecord:
    """One checkpoint's record, any format, typed, without its arrays (:func:`load_record`'s
    errors)."""
    return _typed(run, epoch, load_record(run, epoch))


def load_all_analyses(run: Run) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """Every checkpoint's artifact as written: ``(artifacts by epoch, error messages by epoch)``.

    A damaged artifact lands in the second dict; the others still load.
    """
    return _every_epoch(run, load_analysis)


def read_all_analyses(run: Run) -> tuple[dict[int, AnalysisRecord], dict[int, str]]:
    """Every checkpoint's artifact typed: ``(records by epoch, error messages by epoch)``, as
    :func:`load_all_analyses`."""
    return _every_epoch(run, read_analysis)


def _every_epoch(run: Run, read: Callable[[Run, int], T]) -> tuple[dict[int, T], dict[int, str]]:
    """``read`` of every analysed epoch: what it returned, and the message of each that failed
    with a :class:`UserError` (a damaged file stops nothing else)."""
    loaded: dict[int, T] = {}
    errors: dict[int, str] = {}
    for epoch in analysed_epochs(run):
        try:
            loaded[epoch] = read(run, epoch)
        except UserError as err:
            errors[epoch] = str(err)
    return loaded, errors


def has_analysis(run: Run, epoch: int, projections: tuple[str, ...] = ()) -> bool:
    """Whether ``epoch`` has a complete, readable artifact of the features as they are now
    (format :data:`~explorer.rundir.records.CURRENT_FEATURES_SINCE` on) with every one of
    ``projections``. A damaged one, or one of formats 1 and 2 (spectra of other features),
    counts as missing, so that ``explorer analyze`` recomputes it."""
    try:
        record = load_analysis(run, epoch)
    except UserError:
        return False
    return (record["format_version"] >= CURRENT_FEATURES_SINCE
            and set(projections) <= set(record.get("projections", [])))
