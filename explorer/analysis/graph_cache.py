"""What an exact graph costs once, kept on disk so that a new process does not pay it again.

Scoring a ``shapes`` checkpoint on its exact graph (:mod:`explorer.analysis.theorem`) needs
quantities that depend on the graph and a few config parameters only, never on the network: the
eigenpairs of Ā, the reachable-optimum curve inside the ball and the downstream guarantee's
labelling bound and E(f*). They cost about 7 s on 2 cores for the 840-node sub-grid, more than
the rest of a checkpoint's analysis, and each ``explorer analyze`` started in the background is a
new process whose in-memory caches start empty. Here they are kept in files, one per quantity and
key, under the user's cache folder:

- ``$EXPLORER_CACHE_DIR`` when set (``off`` turns the disk cache off: every process computes);
- else ``$XDG_CACHE_HOME/spectral-explorer``, else ``~/.cache/spectral-explorer``.

An entry is an ``.npz`` of plain arrays plus one JSON string (never a pickle: ``np.load`` with
``allow_pickle=False``), written atomically (a temporary file, then a rename). Its name is the
SHA-256 of its key; the key is stored in the entry too and compared on reading, and so is a
SHA-256 of the whole content, which catches a damaged or edited file. The key holds
what defines the quantity (the graph's own fingerprint, k, μ, the solver settings) and
:func:`code_digest`: the source of every module that computes these quantities, this cache's
format version and the numerical libraries' versions, so a change to that code computes afresh.
An entry that cannot be read, whose key or checksum differs, or that :func:`cached`'s ``decode``
rejects is
computed again and overwritten; a folder that cannot be written costs only the time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

#: Bump when an entry's format changes (the code digest covers changes of what is computed).
CACHE_VERSION = 1

#: The environment variable naming the cache folder; ``off`` (or empty) turns the cache off.
CACHE_ENV = "EXPLORER_CACHE_DIR"

#: The modules whose code computes what is cached, relative to the ``explorer`` package.
SOURCES = ("analysis/theorem.py", "analysis/graph_cache.py", "graphs", "data/shapes.py")

T = TypeVar("T")
Arrays = dict[str, np.ndarray]


def cache_dir() -> Path | None:
    """The folder of this cache's entries, or None when ``$EXPLORER_CACHE_DIR`` is ``off``."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        if chosen.strip().lower() in ("", "off", "0", "none", "false"):
            return None
        return Path(chosen).expanduser() / "theorem"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "spectral-explorer" / "theorem"


@functools.cache
def code_digest() -> str:
    """SHA-256 of :data:`CACHE_VERSION`, the numerical libraries' versions and the source of
    every module in :data:`SOURCES` (a folder: its ``.py`` files): any edit computes afresh."""
    import scipy
    import sklearn

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(
        f"{CACHE_VERSION} {np.__version__} {scipy.__version__} {sklearn.__version__}".encode()
    )
    for name in SOURCES:
        path = package / name
        for source in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            digest.update(source.relative_to(package).as_posix().encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


def fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 of arrays' dtypes, shapes and bytes: a graph's identity in a key (its W)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _entry_key(kind: str, parts: dict[str, Any]) -> str:
    """The canonical JSON of an entry's key (stored in the entry, hashed into its name)."""
    return json.dumps({"kind": kind, "code": code_digest(), **parts}, sort_keys=True)


def _checksum(key: str, meta: str, arrays: Arrays) -> str:
    """SHA-256 of an entry's key, meta and arrays (by name): what was written is what is read."""
    digest = hashlib.sha256(f"{key}\n{meta}".encode())
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(fingerprint(arrays[name]).encode())
    return digest.hexdigest()


def _path(folder: Path, kind: str, key: str) -> Path:
    return folder / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def load_entry(kind: str, parts: dict[str, Any]) -> tuple[Arrays, dict[str, Any]] | None:
    """The stored ``(arrays, meta)`` of a key, or None: no folder, no entry, an unreadable or
    truncated file, or one whose stored key or checksum is not this one's."""
    folder = cache_dir()
    if folder is None:
        return None
    key = _entry_key(kind, parts)
    try:
        with np.load(_path(folder, kind, key), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        stored_key, meta = str(arrays.pop("__key__")), str(arrays.pop("__meta__"))
        if stored_key != key or str(arrays.pop("__sum__")) != _checksum(key, meta, arrays):
            return None
        return arrays, json.loads(meta)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def save_entry(kind: str, parts: dict[str, Any], arrays: Arrays, meta: dict[str, Any]) -> None:
    """Write an entry atomically (readers see the old file or the new one, never half of it);
    an unwritable folder is ignored: the cache saves time, it is never needed."""
    folder = cache_dir()
    if folder is None:
        return
    key, text = _entry_key(kind, parts), json.dumps(meta)
    total = _checksum(key, text, arrays)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{kind}-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, __key__=np.array(key), __meta__=np.array(text),
                         __sum__=np.array(total), **arrays)
            os.replace(temporary, _path(folder, kind, key))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


def cached(
    kind: str,
    parts: dict[str, Any],
    compute: Callable[[], T],
    encode: Callable[[T], tuple[Arrays, dict[str, Any]]],
    decode: Callable[[Arrays, dict[str, Any]], T],
) -> T:
    """``compute()``, or its stored value when the disk holds one for this key.

    Args:
        kind: the quantity's name (the entry's file name starts with it).
        parts: what defines the quantity besides the code (JSON values): the graph's
            fingerprint, k, μ, the solver's settings.
        compute: computes the value.
        encode: value -> ``(arrays, meta)``, plain arrays and JSON values.
        decode: ``(arrays, meta)`` -> value; raises ``KeyError``, ``ValueError`` or
            ``TypeError`` on an entry it does not trust (wrong shapes, missing fields): the
            value is then computed again and the entry overwritten.
    """
    stored = load_entry(kind, parts)
    if stored is not None:
        with contextlib.suppress(KeyError, ValueError, TypeError, IndexError):
            return decode(*stored)
    value = compute()
    save_entry(kind, parts, *encode(value))
    return value
