"""One checkpoint's exact metrics on the sub-grid (840 nodes) and on the whole grid (46,800).

``theorem.exact_metrics`` scores a ``shapes`` checkpoint on every node of its own augmentation
graph (issue 20's goal: 60 s a checkpoint on 2 CPU cores and 2 GB of memory on the whole grid).
For each preset, in a fresh child process (so the peak memory is that case's alone), a model is
built (random weights, or a run's last checkpoint with ``--run``) and scored twice:

- first: what the first checkpoint of a run costs, building the graph, its eigenpairs, the
  ball's optimum and the guarantee's constants (cached for the run's further checkpoints);
- again: what each further checkpoint costs (the network's outputs on every node, L(f), spans).

Peak memory is the child's maximum resident set size (torch and the training split included).
The last column is the whole grid's cost over the sub-grid's, measured in the same run.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_exact_grid.py [--run runs/NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRESETS = {"sub-grid (shapes-demo)": "shapes-demo", "whole grid (shapes-grid-demo)":
           "shapes-grid-demo"}


def child(preset: str, run: str | None) -> None:
    """Score one model twice and print a JSON line of the figures."""
    import torch

    from explorer.analysis import theorem
    from explorer.builders import build_model, load_splits
    from explorer.config import build_config
    from explorer.rundir.run import open_run
    from explorer.trained_model import load_trained_model

    if run:
        opened = open_run(Path(run))
        config = opened.config()
        train, _ = load_splits(config)
        model, _ = load_trained_model(opened, config, train.images.shape[1])
    else:
        config = build_config(preset, None, {})
        train, _ = load_splits(config)
        torch.manual_seed(0)
        model = build_model(config, train.images.shape[1])
    times = []
    for _ in range(2):
        started = time.perf_counter()
        record, _ = theorem.exact_metrics(model, config, train, torch.device("cpu"))
        times.append(time.perf_counter() - started)
    print(json.dumps({"nodes": record["graph"]["nodes"], "own": record["graph"]["own"],
                      "first_s": times[0], "again_s": times[1],
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
                      "share": 1 - record["gap"], "certified": record["reachable_certified"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="score this whole-grid run's last checkpoint instead of "
                                      "random weights (the sub-grid stays random)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.run)
        return
    env = {**os.environ, **{name: str(args.threads) for name in
                            ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    rows = {}
    for label, preset in PRESETS.items():
        command = [sys.executable, __file__, "--child", preset]
        if args.run and preset == "shapes-grid-demo":
            command += ["--run", args.run]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{label} failed:\n{done.stderr[-2000:]}")
        rows[label] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"# {label}: {rows[label]}", file=sys.stderr, flush=True)
    sub, whole = rows.values()
    print(f"threads = {args.threads}; weights: random"
          + (f" (whole grid: {args.run})" if args.run else "") + "\n")
    print("| graph | nodes | first checkpoint s | each further s | peak MB | share of optimum |")
    print("|---|---|---|---|---|---|")
    for label, row in rows.items():
        print(f"| {label} | {row['nodes']:,} | {row['first_s']:.1f} | {row['again_s']:.1f} | "
              f"{row['peak_mb']:.0f} | {100 * row['share']:.1f}% |")
    print(f"\nwhole grid / sub-grid: first {whole['first_s'] / sub['first_s']:.1f}x, further "
          f"{whole['again_s'] / sub['again_s']:.1f}x, nodes {whole['nodes'] / sub['nodes']:.0f}x")


if __name__ == "__main__":
    main()
