"""Sweeps: one run per value of one config field, trained one after another, and their table.

A sweep is a manifest beside the runs (format :data:`SWEEP_FORMAT_VERSION`, docs/RUN_FORMAT.md)::

    <runs_dir>/.sweeps/<name>.json   {"format_version", "name", "key", "values", "runs",
                                      "preset", "config_file", "overrides", "created"}

``runs[i]`` is the run of ``values[i]``, named ``<name>-<value>`` (:func:`sweep_run_names`). The
runs are ordinary runs: ``explorer runs`` and the dashboard's other pages see them as any other.

Each run is trained by a child ``python -m explorer train`` (:func:`run_sweep`), not in this
process: a child is exactly what ``explorer train`` does (probe, analysis and all), starts with
fresh global state (torch's RNG, the writer locks, CUDA memory), and a failure in one run cannot
leave the next one half-initialised. The child sits in its own process group, so Ctrl-C reaches
only this process, which forwards it once: the run checkpoints and stops, and the sweep stops
after it. A run's ``STOP`` file stops it the same way. ``explorer sweep --resume`` then skips the
finished runs, resumes a stopped one with ``explorer train --resume`` and starts the missing ones.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from explorer.config import Config, build_config, parse_overrides
from explorer.errors import UserError
from explorer.rundir.artifacts import analysed_epochs, read_analysis
from explorer.rundir.records import ExactRecord
from explorer.rundir.run import Run, _read_json, check_run_name, run_path, write_json_atomic

SWEEP_FORMAT_VERSION = 1
SWEEP_DIR = ".sweeps"  # holds no config.json, so list_runs skips it as it skips .launches
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_KEYS = ("name", "key", "values", "runs", "preset", "overrides", "created")


# -- the command line's sweep arguments ------------------------------------------------------
def split_sweep_args(items: list[str]) -> tuple[str, list[str], list[str]]:
    """``["lr=0.1,0.2", "epochs=5"]`` -> ``("lr", ["0.1", "0.2"], ["epochs=5"])``: the one swept
    field (its value holds commas), its raw values, and the fixed ``key=value`` overrides."""
    swept = [item for item in items if "," in item.partition("=")[2]]
    if len(swept) != 1:
        found = f"found {len(swept)} ({', '.join(swept)})" if swept else "found none"
        raise UserError(f"a sweep varies exactly one field, given as KEY=V1,V2,...; {found}")
    key, _, text = swept[0].partition("=")
    raw = [v.strip() for v in text.split(",")]
    if not key.strip() or any(not v for v in raw):
        raise UserError(f"sweep '{swept[0]}' has an empty key or value; write e.g. lr=0.05,0.1")
    return key.strip(), raw, [item for item in items if item is not swept[0]]


def parse_values(key: str, raw: list[str]) -> list[Any]:
    """The swept values typed as the field's type (``UserError`` on a value that is not)."""
    return [parse_overrides([f"{key}={text}"])[key] for text in raw]


def format_value(value: Any) -> str:
    """A value as ``key=value`` takes it back (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def value_slug(value: Any) -> str:
    """The value as a file-name part: deterministic, only letters, digits, '.', '_' and '-';
    a whole float without its '.0' (``class_change_p=0`` names ``...-0``, not ``...-0.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return _UNSAFE.sub("_", format_value(value))


def sweep_run_names(name: str, values: list[Any]) -> list[str]:
    """``<name>-<value>`` for each value; refuses values that would share a run."""
    names = [f"{name}-{value_slug(v)}" for v in values]
    for n in names:
        check_run_name(n)
    if len(set(names)) != len(names):
        raise UserError(f"the swept values {', '.join(map(format_value, values))} repeat a value "
                        "(or two differ only in characters a run name cannot hold); drop one")
    return names


def default_sweep_name(preset: str | None, config_file: str | None, config: Config,
                       key: str) -> str:
    """``PRESET-KEY`` (else the config file's stem, else the dataset, then the key)."""
    base = preset or (Path(config_file).stem if config_file else config.dataset)
    return f"{value_slug(base)}-{key}"


def sweep_configs(preset: str | None, config_file: str | None, fixed: dict[str, Any], key: str,
                  values: list[Any]) -> list[Config]:
    """Every value's config, validated before any run starts (the first bad one raises)."""
    if key in fixed:
        raise UserError(f"{key} is both swept and fixed; give it once, as {key}=V1,V2,...")
    return [build_config(preset, config_file, {**fixed, key: value}) for value in values]


# -- the manifest ----------------------------------------------------------------------------
def sweeps_dir(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / SWEEP_DIR


def manifest_path(runs_dir: str | Path, name: str) -> Path:
    return sweeps_dir(runs_dir) / f"{check_run_name(name)}.json"


def new_manifest(runs_dir: str | Path, name: str, key: str, values: list[Any],
                 preset: str | None, config_file: str | None,
                 fixed: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a new sweep, written atomically; refuses an existing sweep or run."""
    path = manifest_path(runs_dir, name)
    if path.exists():
        raise UserError(f"sweep '{name}' already exists ({path}); continue it with: explorer "
                        f"sweep --resume {path}, or choose another --name")
    runs = sweep_run_names(name, values)
    for run in runs:
        if run_path(runs_dir, run).exists():
            raise UserError(f"run directory {run_path(runs_dir, run)} already exists; choose "
                            "another --name for the sweep")
    manifest = {"format_version": SWEEP_FORMAT_VERSION, "name": name, "key": key,
                "values": values, "runs": runs, "preset": preset,
                # absolute: a resume from another directory reads the same file
                "config_file": str(Path(config_file).resolve()) if config_file else None,
                "overrides": fixed, "created": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, manifest)
    return manifest


def resolve_manifest(given: str, runs_dir: str | Path) -> Path:
    """A manifest's path from ``--resume``: a file path, or a sweep name under ``runs_dir``."""
    path = Path(given).expanduser()
    if path.suffix == ".json" or len(path.parts) > 1:
        return path
    return manifest_path(runs_dir, given)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A validated manifest; a one-line ``UserError`` when it is missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"sweep manifest {path} does not exist; list sweeps with: explorer sweeps")
    data = _read_json(path)  # names the file when it is not a JSON object
    if data.get("format_version") != SWEEP_FORMAT_VERSION:
        raise UserError(f"{path} has sweep format version {data.get('format_version')}, this "
                        f"explorer reads version {SWEEP_FORMAT_VERSION}")
    missing = [k for k in _KEYS if k not in data]
    values, runs = data.get("values"), data.get("runs")
    if missing or not isinstance(values, list) or not isinstance(runs, list) \
            or len(values) != len(runs) or not isinstance(data.get("overrides"), dict):
        what = f"lacks {', '.join(missing)}" if missing else "has mismatched values and runs"
        raise UserError(f"sweep manifest {path} is corrupt (it {what})")
    try:
        for run in runs:
            check_run_name(run)
    except UserError:
        raise UserError(f"sweep manifest {path} is corrupt (a run name is not allowed)") from None
    return data


def list_sweeps(runs_dir: str | Path) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """``(name, manifest, None)`` per sweep, newest first; ``(name, None, error)`` when damaged."""
    folder = sweeps_dir(runs_dir)
    found: list[tuple[float, str, dict[str, Any] | None, str | None]] = []
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            manifest = read_manifest(path)
            created = manifest["created"]
            found.append((created if isinstance(created, int | float) else 0.0, path.stem,
                          manifest, None))
        except UserError as err:
            found.append((0.0, path.stem, None, str(err)))
    return [(name, m, e) for _, name, m, e in sorted(found, key=lambda f: (-f[0], f[1]))]


def follow_run(runs_dir: str | Path, old: str, new: str | None) -> list[str]:
    """Keep every sweep's manifest true to its runs when the run ``old`` is renamed to ``new``
    (its name replaced) or deleted (``new`` None: its value and run dropped; a manifest left
    with no runs is removed). Damaged manifests are left alone. Returns the sweeps changed."""
    changed = []
    for name, manifest, _ in list_sweeps(runs_dir):
        if manifest is None or old not in manifest["runs"]:
            continue
        path = manifest_path(runs_dir, name)
        if new is not None:
            manifest["runs"] = [new if r == old else r for r in manifest["runs"]]
        else:
            kept = [(v, r) for v, r in zip(manifest["values"], manifest["runs"], strict=True)
                    if r != old]
            manifest["values"], manifest["runs"] = [v for v, _ in kept], [r for _, r in kept]
        if manifest["runs"]:
            write_json_atomic(path, manifest)
        else:
            path.unlink(missing_ok=True)
        changed.append(name)
    return changed


# -- the table ---------------------------------------------------------------------------------
def run_state(runs_dir: str | Path, name: str) -> str:
    """The run's state (``Run.status``), or ``not started`` when its directory does not exist."""
    path = run_path(runs_dir, name)
    return Run(path).status().get("state", "?") if path.is_dir() else "not started"


def _latest_exact(run: Run) -> tuple[int | None, ExactRecord | None]:
    """(epoch, its exact record or None) of the latest readable analysed checkpoint, else
    (None, None)."""
    for epoch in reversed(analysed_epochs(run)):
        try:
            return epoch, read_analysis(run, epoch).exact
        except UserError:  # damaged: the one before still says something
            continue
    return None, None


def sweep_table(runs_dir: str | Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per value, in the manifest's order.

    Keys: ``value``, ``run``, ``state``, ``epoch`` (the analysed checkpoint read), and from its
    exact record (:class:`explorer.rundir.records.ExactRecord`, any format) ``alpha``,
    ``error`` and ``error_lower`` (the bracket of the network's E(f): the best head tried, and
    the bound for every head; ``error_lower`` None in older records, which hold the
    least-squares head's error only), ``optimum_error`` and ``optimum_error_lower`` (E(f*)),
    ``bound`` (the proven 8α/(1 − γ_{k+1}) + 2α), ``gamma_k1`` (γ_{k+1}) and ``share``
    (:attr:`~explorer.rundir.records.ExactRecord.share`, 1 − gap), then ``linear`` and ``knn``
    from ``probe.json``. Rates are fractions in [0, 1] as stored (the bound may exceed 1);
    ``None`` where the run lacks them (still training, not a shapes run, ...).
    """
    rows = []
    for value, name in zip(manifest["values"], manifest["runs"], strict=True):
        row: dict[str, Any] = {"value": value, "run": name, "state": run_state(runs_dir, name),
                               "epoch": None, **dict.fromkeys(GUARANTEE_KEYS),
                               "share": None, "linear": None, "knn": None}
        rows.append(row)
        if row["state"] == "not started":
            continue
        run = Run(run_path(runs_dir, name))
        row["epoch"], exact = _latest_exact(run)
        if exact is not None and (g := exact.guarantee) is not None:
            row.update(alpha=g.alpha, error=g.network.upper, error_lower=g.network.lower,
                       optimum_error=g.optimum.upper, optimum_error_lower=g.optimum.lower,
                       bound=g.bound, gamma_k1=g.gamma_next)
        row["share"] = None if exact is None else exact.share
        try:
            trained = ((run.probe() or {}).get("methods") or {}).get("trained") or {}
        except (UserError, OSError):
            trained = {}
        row["linear"] = (trained.get("linear") or {}).get("accuracy")
        row["knn"] = (trained.get("knn") or {}).get("accuracy")
    return rows


#: The guarantee's keys of a :func:`sweep_table` row.
GUARANTEE_KEYS = ("alpha", "error", "error_lower", "optimum_error", "optimum_error_lower",
                  "bound", "gamma_k1")

#: (row key, column title, as percent) of the printed and shown table; E(f) and E(f*) are
#: printed as their bracket (one number where it closes)
COLUMNS = (("run", "run", False), ("state", "state", False), ("epoch", "analysed epoch", False),
           ("alpha", "α", True), ("error", "E(f)", True), ("optimum_error", "E(f*)", True),
           ("bound", "bound", True), ("gamma_k1", "γ_{k+1}", False),
           ("share", "of optimum", True), ("linear", "linear", True), ("knn", "kNN", True))


def bracket_text(upper: float | None, lower: float | None) -> str | None:
    """A bracket in percent as the table prints it: '7.8' where it closes, '0.0–19.3' where
    not, '≤ 24.3' without a lower bound (an older record)."""
    if upper is None:
        return None
    if lower is None:
        return f"≤ {100 * upper:.1f}"
    if upper - lower <= 1e-9:
        return f"{100 * upper:.1f}"
    return f"{100 * lower:.1f}–{100 * upper:.1f}"


def display_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The table as shown: the swept value under ``key``, rates in percent (1 decimal), γ_{k+1}
    to 3 decimals, ``None`` kept where a value is missing."""
    shown = []
    for row in rows:
        out: dict[str, Any] = {key: format_value(row["value"])}
        for field, title, percent in COLUMNS:
            value = row[field]
            if field in ("error", "optimum_error"):
                value = bracket_text(value, row[f"{field}_lower"])
            elif isinstance(value, float):
                value = round(100 * value, 1) if percent else round(value, 3)
            out[title if not percent else f"{title} %"] = value
        shown.append(out)
    return shown


def format_sweep_table(rows: list[dict[str, Any]], key: str) -> str:
    """The table as text, '-' for a missing value."""
    shown = display_rows(rows, key)
    if not shown:
        return "(no values)"
    header = list(shown[0])
    cells = [[("-" if r[c] is None else str(r[c])) for c in header] for r in shown]
    widths = [max(len(x) for x in col) for col in zip(header, *cells, strict=True)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
                     for line in (header, *cells))


def sweeps_listing(runs_dir: str | Path) -> str:
    """One line per sweep: its name, field, and each value's run state."""
    sweeps = list_sweeps(runs_dir)
    if not sweeps:
        return (f"no sweeps under {runs_dir}; start one with: explorer sweep --preset shapes-demo "
                "class_change_p=0,0.05,0.1")
    lines = []
    for name, manifest, error in sweeps:
        if manifest is None:
            lines.append(f"{name}  (damaged: {error})")
            continue
        states = ", ".join(f"{format_value(v)}: {run_state(runs_dir, r)}"
                           for v, r in zip(manifest["values"], manifest["runs"], strict=True))
        lines.append(f"{name}  {manifest['key']}  {states}")
    return "\n".join(lines)


# -- training ----------------------------------------------------------------------------------
def _train_args(runs_dir: Path, manifest: dict[str, Any], value: Any, name: str) -> list[str]:
    """``explorer train`` arguments for a value whose run does not exist, or for its resume."""
    path = run_path(runs_dir, name)
    if path.is_dir():
        run = Run(path)
        state = run.status().get("state")
        if state == "finished":
            return []
        if state == "corrupt" or not (path / "config.json").is_file():
            raise UserError(f"run {path} is damaged (a trainer killed while creating it?); move "
                            "it away and resume the sweep to start it afresh")
        saved = run.config()
        if getattr(saved, manifest["key"]) != value:  # another run took the name
            raise UserError(f"run {path} has {manifest['key']}={getattr(saved, manifest['key'])}"
                            f", not this sweep's {format_value(value)}; move it away and resume")
        if state == "running":
            raise UserError(f"run {path} is being trained by process {run.status().get('pid')}; "
                            "wait for it or stop it, then resume the sweep")
        if not run.has_resume_state():
            raise UserError(f"run {path} ({state}) has no checkpoint to resume; delete its "
                            "directory and resume the sweep to start it afresh")
        return ["--resume", str(path)]
    config_file = manifest.get("config_file")
    if config_file and not Path(config_file).is_file():
        raise UserError(f"the sweep's config file {config_file} is gone; restore it to resume")
    args = ["--runs-dir", str(runs_dir), "--name", name]
    args += ["--preset", manifest["preset"]] if manifest["preset"] else []
    args += ["--config", config_file] if config_file else []
    items = {**manifest["overrides"], manifest["key"]: value}
    return args + [f"{k}={format_value(v)}" for k, v in items.items()]


def run_sweep(manifest_file: Path, *, progress: bool = True, probe: bool = True) -> int:
    """Train every value's run that is not finished, in order; returns an exit status.

    0 when every run finished, or when a run was stopped (Ctrl-C, SIGTERM, its STOP file): the
    sweep stops after it and says how to resume. Otherwise the failing child's status (its error
    is already on stderr), with the resume command.
    """
    from explorer.rundir.launch import explorer_command

    manifest = read_manifest(manifest_file)
    runs_dir = manifest_file.parent.parent
    resume = f"explorer sweep --resume {manifest_file}"
    interrupted: list[str] = []
    child: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:  # once: a second SIGINT would abort probing
        if not interrupted and child is not None and child.poll() is None:
            child.send_signal(signal.SIGINT)
        interrupted.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for value, name in zip(manifest["values"], manifest["runs"], strict=True):
            args = _train_args(runs_dir, manifest, value, name)
            if not args:
                print(f"sweep {manifest['name']}: {name} finished, skipped", file=sys.stderr)
                continue
            if interrupted:
                break
            flags = [*([] if progress else ["--no-progress"]), *([] if probe else ["--no-probe"])]
            command, env = explorer_command("train", *flags, *args)
            print(f"sweep {manifest['name']}: {manifest['key']}={format_value(value)} -> {name}",
                  file=sys.stderr, flush=True)
            # its own session: the terminal's Ctrl-C reaches this process only, which forwards it
            child = subprocess.Popen(command, env=env, start_new_session=True)
            code = child.wait()
            state = run_state(runs_dir, name)
            if state == "stopped" or (interrupted and code in (0, 130)):
                print(f"sweep {manifest['name']} stopped at {name}; continue it with: {resume}",
                      file=sys.stderr)
                return 0 if state == "stopped" else 130
            if code != 0:
                print(f"error: sweep {manifest['name']} stopped: training {name} exited with "
                      f"status {code}; continue it with: {resume}", file=sys.stderr)
                return code if code > 0 else 1
        if interrupted:
            print(f"sweep {manifest['name']} interrupted; continue it with: {resume}",
                  file=sys.stderr)
            return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
