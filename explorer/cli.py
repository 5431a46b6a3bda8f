"""``explorer``: the command line. Thin: parse, call the package, print.

Every user mistake surfaces as a :class:`~explorer.errors.UserError`: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from explorer.errors import UserError

if TYPE_CHECKING:
    from explorer.config import Config
    from explorer.rundir.run import Run

EPILOG_TRAIN = """examples:
  explorer train --preset shapes-demo
  explorer train --preset cifar10-paper data_root=~/data download=true epochs=200
  explorer train --preset shapes-demo loss=simclr --name shapes-simclr
  explorer train --resume runs/shapes-simclr
  explorer train --resume runs/shapes-simclr lr=0.01 epochs=50
--resume takes key=value for lr, weight_decay, epochs and warmup_epochs only.
config keys (key=value): see docs or any preset in explorer/presets/"""

EPILOG_SWEEP = """examples:
  explorer sweep --preset shapes-demo class_change_p=0,0.05,0.1,0.2 epochs=100
  explorer sweep --preset shapes-demo --name mu mu=1,10,30 --no-probe
  explorer sweep --resume runs/.sweeps/shapes-demo-class_change_p.json
  explorer sweeps; explorer sweeps shapes-demo-class_change_p
One field holds comma-separated values; every value's config is checked before any run starts.
Run NAME-VALUE is trained by its own `explorer train` (probe and analysis as there), one after
another. Ctrl-C (or a run's STOP file) stops the current run at a checkpoint and the sweep after
it; --resume skips finished runs, resumes a stopped one and starts the rest.
Several GPUs: the runs go one after another on one device (device=auto: the first visible GPU).
Start one sweep per GPU with disjoint values and names, e.g.
  CUDA_VISIBLE_DEVICES=0 explorer sweep --name a --preset P lr=0.1,0.2
  CUDA_VISIBLE_DEVICES=1 explorer sweep --name b --preset P lr=0.4,0.8
A sweep refuses to run under torchrun. To spread one value's run over several GPUs, train it
alone: torchrun --nproc_per_node=N -m explorer train --name NAME-VALUE ... (a finished run of
the sweep's name is skipped by explorer sweep --resume)."""


EPILOG_APP = """examples:
  explorer app                                   # runs/ here, on http://127.0.0.1:8501
  explorer app --runs-dir ~/experiments/runs --port 8600
  explorer app --host 0.0.0.0 --read-only        # others on the network may look, not act
The dashboard can start training processes and delete runs: --host other than this machine
exposes that to whoever reaches the port; pair it with --read-only."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="explorer",
        description="Train, probe and inspect spectral contrastive learning runs "
        "(HaoChen et al., NeurIPS 2021).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a model (new run or --resume)",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a new run from a preset/config file plus key=value overrides, "
        "or resume a stopped run. Prints a probe table at the end.",
    )
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    train.add_argument("--preset", help="a shipped preset (list them: explorer presets)")
    train.add_argument("--config", help="a TOML config file")
    train.add_argument("--runs-dir", default="runs", help="where runs live (default: runs)")
    train.add_argument("--name", help="run name (default: DATASET-LOSS-TIMESTAMP)")
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped, killed or failed run (or a finished one with more epochs=)",
    )
    train.add_argument("--no-probe", action="store_true", help="skip the final probe table")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    probe = commands.add_parser(
        "probe",
        help="linear and kNN probes of a run, beside baselines",
        description="Probe the latest (or a given) checkpoint of a run with linear and kNN "
        "classifiers on frozen backbone features, beside raw pixels and a random backbone.",
    )
    probe.add_argument("run_dir", metavar="RUN_DIR")
    probe.add_argument("--checkpoint", help="a checkpoint file in the run (default: latest)")
    probe.add_argument("--device", help="override the run's device (auto, cpu, cuda, mps)")
    probe.add_argument("--no-baselines", action="store_true", help="probe the run only")

    analyze = commands.add_parser(
        "analyze",
        help="spectra, probes and 2-D layouts of every checkpoint, stored in the run",
        description="Analyse each checkpoint of a run (batch Gram spectra, RankMe, alpha, "
        "augmentation-graph estimate, probes per class, aligned PCA/UMAP layouts) and store the "
        "results under RUN_DIR/analysis/. Checkpoints already analysed are skipped.",
    )
    analyze.add_argument("run_dir", metavar="RUN_DIR")
    analyze.add_argument("--checkpoint", help="one checkpoint file in the run (default: all)")
    analyze.add_argument(
        "--projection",
        choices=("both", "pca", "umap"),
        help="2-D layouts to compute (default: the run's analysis_projection, else both)",
    )
    analyze.add_argument("--device", help="override the run's device (auto, cpu, cuda, mps)")
    analyze.add_argument("--force", action="store_true", help="recompute existing artifacts")
    analyze.add_argument("--no-progress", action="store_true", help="no progress bar")

    runs = commands.add_parser(
        "runs", help="list runs in a table", description="List the runs under a directory."
    )
    runs.add_argument("--runs-dir", default="runs", help="where runs live (default: runs)")

    sweep = commands.add_parser(
        "sweep",
        help="one run per value of one config field, trained one after another",
        epilog=EPILOG_SWEEP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train one run per value of KEY=V1,V2,... (the other key=value fixed), "
        "record the sweep in RUNS_DIR/.sweeps/NAME.json and print the guarantee and probe "
        "table of its runs at the end.",
    )
    sweep.add_argument("overrides", nargs="*", metavar="key=value",
                       help="KEY=V1,V2,... (the swept field) and fixed overrides")
    sweep.add_argument("--preset", help="a shipped preset (list them: explorer presets)")
    sweep.add_argument("--config", help="a TOML config file")
    sweep.add_argument("--runs-dir", default="runs", help="where runs live (default: runs)")
    sweep.add_argument("--name", help="sweep name (default: PRESET-KEY); runs are NAME-VALUE")
    sweep.add_argument("--resume", metavar="MANIFEST",
                       help="continue a sweep: RUNS_DIR/.sweeps/NAME.json, or NAME with --runs-dir")
    sweep.add_argument("--no-probe", action="store_true", help="skip each run's probe table")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bars")

    sweeps = commands.add_parser(
        "sweeps", help="list sweeps, or one sweep's table",
        description="List the sweeps under a runs directory with their runs' states, or print "
        "one sweep's table (α, E(f), E(f*), the bound, γ_{k+1}, share of the optimum, probes).")
    sweeps.add_argument("name", nargs="?", metavar="NAME", help="a sweep to tabulate")
    sweeps.add_argument("--runs-dir", default="runs", help="where runs live (default: runs)")

    commands.add_parser("presets", help="list the presets", description="List the presets.")

    app = commands.add_parser(
        "app", help="open the dashboard on a runs folder",
        epilog=EPILOG_APP, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the dashboard (Streamlit) on http://HOST:PORT, showing the runs\n"
        "under --runs-dir; an empty folder receives the shipped demo runs. Ctrl-C stops it.")
    app.add_argument("--runs-dir", default="runs", help="where runs live (default: runs)")
    app.add_argument("--port", type=int, default=8501, help="port to listen on (default: 8501)")
    app.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                     help="address to listen on (default: 127.0.0.1, this machine only)")
    app.add_argument("--read-only", action="store_true",
                     help="every page readable; launch, stop, resume, rename, delete, import and "
                     "reinstall refused (nothing is written to the runs folder)")

    imp = commands.add_parser(
        "import", help="an encoder trained elsewhere (weights or features) as an analysed run",
        description="Make a run of FILE: weights (.pth/.pt/.ckpt read as weights only, or "
        ".safetensors) of the --arch network, analysed on the dataset key=value names; or an "
        ".npz of features (N x d) and labels (N), optionally split, classes, images or paths. "
        "The run is analysed and probed like a trained one (docs/RUN_FORMAT.md, Imported runs).")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("overrides", nargs="*", metavar="key=value",
                     help="config as for explorer train, e.g. dataset=cifar10 data_root=...")
    imp.add_argument("--arch", help="the network of a weights file: a backbone (resnet18, ...) "
                     "or a torchvision classification model (vit_b_16, torchvision:NAME)")
    imp.add_argument("--name", help="run name (default: FILE's stem and the dataset)")
    imp.add_argument("--runs-dir", default="runs", help="where runs live (default: runs)")
    imp.add_argument("--device", help="where to analyse (auto, cpu, cuda, mps)")
    imp.__class__ = _OptionsAnywhere  # FILE --arch NAME key=value, in any order
    return parser


class _OptionsAnywhere(argparse.ArgumentParser):
    """A subcommand's parser whose options may come between its positionals' values."""

    _plain = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        if self._plain:  # the intermixed parse's own two passes
            return super().parse_known_args(args, namespace)
        self._plain = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._plain = False


def _import(args: argparse.Namespace) -> int:
    from explorer.analysis.probe_run import format_probe_table
    from explorer.analysis.run import format_analysis_table
    from explorer.encoder_import import describe, import_encoder

    result = import_encoder(args.file, arch=args.arch, overrides=args.overrides, name=args.name,
                            runs_dir=args.runs_dir, device=args.device)
    print(describe(result))
    print(format_analysis_table(result.records))
    print(format_probe_table(result.probe))
    return 0


def _app(args: argparse.Namespace) -> int:
    """Check the options, then become ``python -m explorer_dashboard`` (Streamlit serving the
    dashboard package shipped beside this one; this package never imports it)."""
    import os
    import socket

    runs = Path(args.runs_dir).expanduser().resolve()
    if runs.exists() and not runs.is_dir():
        raise UserError(f"--runs-dir {runs} is a file; name a folder of runs")
    if args.read_only and not runs.is_dir():
        raise UserError(f"--runs-dir {runs} does not exist, and a read-only dashboard creates "
                        "nothing; name a folder of runs, or drop --read-only")
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a port; use 1 to 65535 (default 8501)")
    try:
        family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.bind((args.host, args.port))
    except OSError as err:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err}); "
                        "another server holds it, or the address is not this machine's: "
                        "pick another --port or --host") from None
    if args.host not in LOOPBACK:
        print(f"warning: listening on {args.host}: anyone who reaches port {args.port} "
              + ("can read every run." if args.read_only else
                 "can launch training and delete runs; add --read-only to allow reading only."),
              file=sys.stderr)
    env = {**os.environ, "EXPLORER_RUNS_DIR": str(runs),
           "EXPLORER_READ_ONLY": "1" if args.read_only else ""}
    command = [sys.executable, "-m", "explorer_dashboard", f"--server.port={args.port}",
               f"--server.address={args.host}"]
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # Streamlit takes over this process (and Ctrl-C)
    return 0  # not reached


def _sweep(args: argparse.Namespace) -> int:
    """Validate every value's config, write the manifest, then train (or resume) the runs."""
    import os

    from explorer.rundir import sweep

    if all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")):  # torchrun's
        # children would inherit these and wait for ranks that never come
        raise UserError("explorer sweep does not run under torchrun; start it as one process "
                        "(see explorer sweep --help on several GPUs)")
    if args.resume:
        if args.preset or args.config or args.name or args.overrides:
            raise UserError("--resume continues a sweep as it was recorded; drop --preset, "
                            "--config, --name and key=value")
        path = sweep.resolve_manifest(args.resume, args.runs_dir)
        manifest = sweep.read_manifest(path)
    else:
        key, raw, fixed_items = sweep.split_sweep_args(args.overrides)
        from explorer.config import parse_overrides

        fixed = parse_overrides(fixed_items)
        values = sweep.parse_values(key, raw)
        configs = sweep.sweep_configs(args.preset, args.config, fixed, key, values)
        name = args.name or sweep.default_sweep_name(args.preset, args.config, configs[0], key)
        manifest = sweep.new_manifest(args.runs_dir, name, key, values, args.preset,
                                      args.config, fixed)
        path = sweep.manifest_path(args.runs_dir, name)
        print(f"sweep {name}: {len(values)} runs; manifest {path}", file=sys.stderr)
    code = sweep.run_sweep(path, progress=not args.no_progress, probe=not args.no_probe)
    print(sweep.format_sweep_table(sweep.sweep_table(path.parent.parent, manifest),
                                   manifest["key"]), flush=True)
    return code


def _sweeps(args: argparse.Namespace) -> int:
    from explorer.rundir import sweep

    if args.name is None:
        print(sweep.sweeps_listing(args.runs_dir))
        return 0
    path = sweep.resolve_manifest(args.name, args.runs_dir)
    manifest = sweep.read_manifest(path)
    print(sweep.format_sweep_table(sweep.sweep_table(path.parent.parent, manifest),
                                   manifest["key"]))
    return 0


def _train(args: argparse.Namespace) -> int:
    from explorer import distributed
    from explorer.rundir import lock

    try:
        return _train_run(args)
    finally:
        lock.release_all()  # the process exits next; main() may also run in a test's process
        distributed.cleanup()


def _train_run(args: argparse.Namespace) -> int:
    from explorer import distributed
    from explorer.analysis.probe_run import format_probe_table, probe_run
    from explorer.config import build_config, config_warnings
    from explorer.train import Trainer, analysis_mode

    if args.resume:
        run, config = _open_for_resume(args)
        trainer = Trainer(config, progress=not args.no_progress)
        distributed.barrier()  # every rank has read the status before rank 0 changes it
    else:
        config = build_config(args.preset, args.config, args.overrides)
        if distributed.is_main():
            for _, message in config_warnings(config):
                print(f"warning: {message}", file=sys.stderr)
        trainer = Trainer(config, progress=not args.no_progress)  # data errors surface here
        run = _create_run_on_rank0(args, config)
    state = trainer.fit(run, resume=bool(args.resume))
    if not distributed.is_main():  # under torchrun rank 0 alone probes, analyses and prints
        return 0 if state != "failed" else 1
    if state == "failed":
        print(f"error: {run.status().get('last_error')}", file=sys.stderr)
        return 1
    if state == "stopped":
        return 0
    if not args.no_probe:  # status.json's phase tells the dashboard what the process does now
        run.set_phase("probing")
        print(format_probe_table(probe_run(run, progress=not args.no_progress)), flush=True)
    if analysis_mode(config, trainer.device) == "end":
        trainer.analyze_at_end()
    run.set_phase("done")
    return 0


def _open_for_resume(args: argparse.Namespace) -> tuple[Run, Config]:
    """The run to resume, locked by this process (rank 0), and its config with the allowed
    changes; every check runs before the data loads and before anything is written."""
    from explorer import distributed
    from explorer.builders import resolve_device
    from explorer.config import parse_overrides
    from explorer.rundir.checkpoint import TrainState, resume_config, resume_plan
    from explorer.rundir.run import open_run

    if args.preset or args.config or args.name:
        raise UserError(
            "--resume continues a run with its saved config; drop --preset, --config and "
            "--name (key=value may change lr, weight_decay, epochs, warmup_epochs)"
        )
    run = open_run(args.resume)
    saved = run.config()
    changes = parse_overrides(args.overrides)
    distributed.init(resolve_device(saved.device))  # the ranks agree on the lock below
    failure: UserError | None = None
    if distributed.is_main():
        try:
            run.lock()  # the one writer from here on: a second trainer stops here
            # "running" here is a writer without the lock (an older explorer)
            done = TrainState.from_dict(run.load_resume_state()).epoch  # fails if corrupt
            resume_plan(str(run.path), run.status().get("state"), saved, changes, done)
        except (KeyError, TypeError, ValueError):
            failure = UserError(f"checkpoint of {run.path} is damaged (no step counters)")
        except UserError as err:
            failure = err
    failure = distributed.broadcast_object(failure)
    if failure is not None:
        raise failure
    return run, resume_config(saved, changes, 0)


def _create_run_on_rank0(args: argparse.Namespace, config: Config) -> Run:
    """Rank 0 makes the run directory, locked before anything is written in it, and sends its
    path (or its error) to the other ranks.

    The other ranks only read the path (a ``STOP`` file), so on other machines it need not exist.
    """
    from explorer import distributed
    from explorer.rundir.run import Run, create_run

    created: Run | UserError | None = None
    if distributed.is_main():
        try:
            created = create_run(args.runs_dir, config, args.name, lock=True)
            print(f"run directory: {created.path}", file=sys.stderr)
        except UserError as err:
            created = err
    shared = distributed.broadcast_object(created.path if isinstance(created, Run) else created)
    if isinstance(shared, UserError):
        raise shared
    return created if isinstance(created, Run) else Run(shared)


def run_checkpoint(run: Run, given: str) -> Path:
    """The run's own model checkpoint that ``given`` names: a path (relative to the working
    directory or absolute) or a file name in the run's ``checkpoints/``. Never another run's."""
    path = Path(given).expanduser()
    if not path.is_file():
        path = run.checkpoint_dir / given
    if not path.is_file():
        raise UserError(f"checkpoint {given} does not exist")
    own = run.weight_checkpoints()
    for _, candidate in own:
        if candidate.resolve() == path.resolve():
            return candidate
    epochs = ", ".join(str(e) for e, _ in own) or "none yet"
    raise UserError(
        f"checkpoint {given} is not one of run {run.path}'s checkpoints (epochs {epochs}); "
        f"name one of the files in {run.checkpoint_dir}"
    )


def _probe(args: argparse.Namespace) -> int:
    from explorer.analysis.probe_run import format_probe_table, probe_run
    from explorer.rundir.run import open_run

    run = open_run(args.run_dir)
    checkpoint = run_checkpoint(run, args.checkpoint) if args.checkpoint else None
    results = probe_run(
        run, checkpoint=checkpoint, baselines=not args.no_baselines, device=args.device
    )
    print(format_probe_table(results))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from explorer.analysis.projection import PROJECTIONS
    from explorer.analysis.run import analyze_run, format_analysis_table
    from explorer.rundir.run import open_run

    run = open_run(args.run_dir)
    checkpoint = run_checkpoint(run, args.checkpoint) if args.checkpoint else None
    projections = None
    if args.projection:
        projections = PROJECTIONS if args.projection == "both" else (args.projection,)
    records = analyze_run(
        run,
        checkpoint=checkpoint,
        projections=projections,
        device=args.device,
        force=args.force,
        progress=not args.no_progress,
    )
    print(format_analysis_table(records))
    return 0


def runs_table(runs_dir: str | Path) -> str:
    from explorer.readings.overview import summaries

    header = ("name", "dataset", "backbone", "loss", "epochs", "state", "linear", "kNN")
    percent = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    rows = [
        (s.name, s.dataset or "?", s.backbone or "?", s.loss or "?",
         s.epochs_text if s.state != "corrupt" else "?", s.state, percent(s.linear),
         percent(s.knn))
        for s in summaries(runs_dir)
    ]
    if not rows:
        return f"no runs under {runs_dir}; start one with: explorer train --preset shapes-demo"
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in (header, *rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "probe":
            return _probe(args)
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "sweeps":
            return _sweeps(args)
        if args.command == "runs":
            print(runs_table(args.runs_dir))
            return 0
        if args.command == "app":
            return _app(args)
        if args.command == "import":
            return _import(args)
        if args.command == "presets":
            from explorer.config import list_presets

            print("\n".join(list_presets()))
            return 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside training (which handles SIGINT itself)
        print(f"interrupted at {time.strftime('%H:%M:%S')}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
