"""Per-checkpoint analysis: time to analyse one checkpoint, before and after issue 28, and to load
a run's artifacts.

Goals: analysing one checkpoint on 5,000 points under 8 s on 2 quiet CPU cores once umap-learn is
warm (issue 28; issue 4 asked for 30 s), and loading all artifacts of a 20-checkpoint run within
1 s.

The model is the ``shapes-demo`` preset's (cnn-narrow, projector 512->128, batch 256, mu 30) at
its random initialisation (the cost does not depend on the weights), on two data sets:

- ``--data shapes``: the whole ``shapes`` grid with image-space augmentation (``augment=shapes``:
  the preset's graph views know only its sub-grid), so the analysis also scores it on the exact
  sub-grid graph, as a ``shapes`` run's is. The evaluation sample is 5,000 training images for
  the views, spectra and probe fitting, and 5,000 projected images; the shapes test split holds
  2,000, so the projected images are another seeded draw from the training split.
- ``--data demo``: the preset itself (``shapes-subgrid``, graph views, 810 training and 270 test
  images, all of them in the sample), scored on its own graph over its training split.

Two pipelines run in the same process, their checkpoints interleaved (a shared machine's load
then weighs on both alike; the ratio is what to read):

- **before**: no disk cache of the exact graph's graph-only quantities (``EXPLORER_CACHE_DIR=off``),
  200 UMAP epochs from the previous layout (``projection.SEEDED_EPOCHS = 200``), the linear probe
  and the exact graph's guarantee on the process's threads (``probes.one_thread`` and
  ``theorem._one_blas_thread`` replaced by no-ops): the code as it was;
- **now**: the disk cache (:mod:`explorer.analysis.graph_cache`, here in a scratch folder filled
  once, untimed, as the first analysis of this graph anywhere fills it),
  :data:`~explorer.analysis.projection.SEEDED_EPOCHS` from the previous layout, and those small
  solves on one thread.

Three checkpoints each: the first of a run (UMAP from PCA) in a new process, the next one in the
same process (``analyze=end`` and ``inline``: the process's caches are warm), and the next one in a
new process (``analyze=background``: every checkpoint is an ``explorer analyze`` of its own). A
new process is imitated by emptying the in-process caches (:func:`theorem.clear_caches`);
umap-learn's import and compilation, paid once per process, are printed apart.

Wall time is what the goal is about; CPU time (all threads) is printed beside it because a shared
machine inflates wall time: on 2 idle cores, wall time is at least CPU time / 2.

Each case runs ``--repeats`` times per pipeline, alternating which goes first, and the fastest
is kept (a load only ever slows a run down).

Run: ``python benchmarks/bench_analysis.py [--samples 5000] [--checkpoints 20] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from explorer.analysis import probes, projection, theorem
from explorer.analysis.checkpoint import analyze_checkpoint
from explorer.analysis.graph_cache import CACHE_ENV
from explorer.analysis.projection import warm_up_umap
from explorer.analysis.sample import EvaluationSample
from explorer.config import build_config
from explorer.data import load_dataset
from explorer.rundir.artifacts import load_all_analyses, save_analysis
from explorer.rundir.run import create_run
from explorer.train import build_model

# the new settings, before a pipeline sets its own
SEEDED_EPOCHS = projection.SEEDED_EPOCHS
ONE_THREAD, ONE_BLAS_THREAD = probes.one_thread, theorem._one_blas_thread


@contextmanager
def _all_threads() -> Iterator[None]:
    yield


def _with_all_threads(function: Any, *args: Any) -> Any:
    return function(*args)


@contextmanager
def pipeline(name: str, cache: str) -> Iterator[None]:
    """The settings of one pipeline: ``before`` (no disk cache, 200 seeded UMAP epochs, small
    solves on every thread) or ``now`` (the disk cache in ``cache``, :data:`SEEDED_EPOCHS`, small
    solves on one thread)."""
    saved = os.environ.get(CACHE_ENV), projection.SEEDED_EPOCHS
    before = name == "before"
    os.environ[CACHE_ENV] = "off" if before else cache
    projection.SEEDED_EPOCHS = 200 if before else SEEDED_EPOCHS
    probes.one_thread = _all_threads if before else ONE_THREAD
    theorem._one_blas_thread = _with_all_threads if before else ONE_BLAS_THREAD
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = saved[0]
        projection.SEEDED_EPOCHS = saved[1]
        probes.one_thread, theorem._one_blas_thread = ONE_THREAD, ONE_BLAS_THREAD


def timed_analysis(
    model: torch.nn.Module, sample: EvaluationSample, config: Any,
    previous: dict[str, np.ndarray] | None, new_process: bool,
) -> tuple[float, float, dict[str, Any], dict[str, np.ndarray]]:
    """``(wall s, CPU s, record, arrays)`` of one checkpoint; ``new_process`` empties the
    in-process caches first, as a new ``explorer analyze`` starts."""
    if new_process:
        theorem.clear_caches()
    start, cpu = time.perf_counter(), time.process_time()
    record, arrays = analyze_checkpoint(model, sample, config, previous=previous)
    return time.perf_counter() - start, time.process_time() - cpu, record, arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--checkpoints", type=int, default=20)
    parser.add_argument("--data", choices=("shapes", "demo", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=3,
                        help="analyses per pipeline and case; the fastest is kept")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))  # the development machine's 2 cores

    start = time.perf_counter()
    warm_up_umap()
    print(f"umap-learn import + JIT warm-up: {time.perf_counter() - start:.1f} s "
          "(once per process)")
    scratch = tempfile.TemporaryDirectory()
    last = None
    for data_name in ("shapes", "demo") if args.data == "both" else (args.data,):
        last = bench_checkpoints(data_name, args, scratch.name)

    assert last is not None
    config, record, arrays = last
    run = create_run(scratch.name, config, "bench")
    for epoch in range(1, args.checkpoints + 1):
        save_analysis(run, epoch, {**record, "epoch": epoch}, arrays)
    start = time.perf_counter()
    loaded, errors = load_all_analyses(run)
    seconds = time.perf_counter() - start
    assert len(loaded) == args.checkpoints and not errors
    scratch.cleanup()
    n = record["n_test"]
    print(f"\nload all artifacts of a {args.checkpoints}-checkpoint run ({n} points each): "
          f"{1000 * seconds:.0f} ms")
    print(f"  goal: <= 1 s -> {'met' if seconds <= 1 else 'MISSED'}")


def bench_checkpoints(
    data_name: str, args: argparse.Namespace, scratch: str
) -> tuple[Any, dict[str, Any], dict[str, np.ndarray]]:
    """Time the three cases of one data set, before and now; returns the config and the last
    analysis (for the load benchmark)."""
    if data_name == "shapes":
        config = build_config("shapes-demo", overrides={
            "dataset": "shapes", "augment": "shapes", "device": "cpu", "analyze": "off"})
        data = load_dataset("shapes", "train")
        generator = torch.Generator().manual_seed(0)
        train_idx = torch.randperm(len(data), generator=generator)[: args.samples]
        test_idx = torch.randperm(len(data), generator=generator)[: args.samples].sort().values
        sample = EvaluationSample(data.subset(train_idx), data.subset(test_idx), test_idx)
    else:
        config = build_config("shapes-demo", overrides={"device": "cpu", "analyze": "off"})
        train, test = (load_dataset(config.dataset, split) for split in ("train", "test"))
        sample = EvaluationSample(train, test, torch.arange(len(test)))
    torch.manual_seed(0)
    model = build_model(config, in_channels=3)
    size = f"{len(sample.train)}/{len(sample.test)} images"
    print(f"\n=== {data_name}: {config.dataset}, augment={config.augment}, {size} ===")
    cache = os.path.join(scratch, "cache")
    with pipeline("now", cache):  # the first analysis of this graph anywhere fills the cache
        start = time.perf_counter()
        theorem.clear_caches()
        theorem.exact_metrics(model, config, sample.train, torch.device("cpu"))
        print(f"filling the disk cache (once per graph, k and mu, per installation): "
              f"{time.perf_counter() - start:.1f} s")

    cases = (("first checkpoint (UMAP from PCA), new process", False, True),
             ("next checkpoint, same process (analyze=end, inline)", True, False),
             ("next checkpoint, new process (analyze=background)", True, True))
    first: dict[str, dict[str, np.ndarray]] = {}
    totals: dict[str, list[float]] = {"before": [], "now": []}
    last: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None
    for label, seeded, new_process in cases:
        print(f"\n{label}, {size}, the fastest of {args.repeats}:")
        timings: dict[str, dict[str, float]] = {}
        for repeat in range(args.repeats):  # alternate the order: a load's drift hits both
            for name in ("before", "now") if repeat % 2 == 0 else ("now", "before"):
                with pipeline(name, cache):
                    seconds, cpu, record, arrays = timed_analysis(
                        model, sample, config, first[name] if seeded else None, new_process)
                print(f"  {name:6s}: {seconds:5.1f} s wall, {cpu:5.1f} s CPU")
                if not seeded:
                    first[name] = arrays
                if seconds < timings.get(name, {}).get("total", np.inf):
                    timings[name] = {**record["timings"], "total": seconds}
                last = record, arrays
        for name in totals:
            totals[name].append(timings[name]["total"])
        print(f"  {'stage':20s} {'before':>7s} {'now':>7s}  now/before")
        for stage in timings["before"]:
            old, new = timings["before"][stage], timings["now"].get(stage, float("nan"))
            print(f"  {stage:20s} {old:7.2f} {new:7.2f}  {new / max(old, 1e-9):6.2f}")
    worst = max(totals["now"])
    print(f"\nslowest checkpoint now / before: {worst:.1f} s / {max(totals['before']):.1f} s "
          f"= {worst / max(totals['before']):.2f}; mean ratio "
          f"{np.mean([n / b for n, b in zip(totals['now'], totals['before'], strict=True)]):.2f}")
    print(f"  goal: <= 8 s per checkpoint on 2 quiet CPU cores -> "
          f"{'met' if worst <= 8 else 'MISSED (on this machine, now)'}")
    assert last is not None
    return config, *last


if __name__ == "__main__":
    main()
