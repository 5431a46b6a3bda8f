"""Per-checkpoint analysis: time to analyse one checkpoint, and to load a run's artifacts.

Goals (issue 4): analysing one checkpoint on 5,000 points within 30 s on 2 CPU cores once
umap-learn is warm, and loading all artifacts of a 20-checkpoint run within 1 s.

The model is the ``shapes-demo`` preset's (cnn-narrow, projector 512->128, batch 256, mu 30) at
its random initialisation (the cost does not depend on the weights), on the whole ``shapes`` grid
with image-space augmentation (``augment=shapes``: the preset's graph views know only its
sub-grid), so the analysis also scores it on the exact sub-grid graph, as a ``shapes`` run's is.
The evaluation sample is
5,000 training images for the views, spectra and probe fitting, and 5,000 projected images; the
shapes test split holds 2,000, so the projected images are another seeded draw from the training
split. umap-learn is imported and compiled first (warm-up), then one checkpoint is analysed from
scratch (UMAP started from PCA) and one started from that layout, as every later checkpoint is.
The load benchmark writes that artifact 20 times into a scratch run and reads them all back.

Wall time is what the goal is about; CPU time (all threads) is printed beside it because a shared
machine inflates wall time: on 2 idle cores, wall time is at least CPU time / 2.

Run: ``python benchmarks/bench_analysis.py [--samples 5000] [--checkpoints 20]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from explorer.analysis.checkpoint import analyze_checkpoint
from explorer.analysis.projection import warm_up_umap
from explorer.analysis.sample import EvaluationSample
from explorer.config import build_config
from explorer.data import load_dataset
from explorer.rundir.artifacts import load_all_analyses, save_analysis
from explorer.rundir.run import create_run
from explorer.train import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--checkpoints", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))  # the development machine's 2 cores

    config = build_config("shapes-demo", overrides={"dataset": "shapes", "augment": "shapes",
                                                    "device": "cpu", "analyze": "off"})
    data = load_dataset("shapes", "train")
    generator = torch.Generator().manual_seed(0)
    train_idx = torch.randperm(len(data), generator=generator)[: args.samples]
    test_idx = torch.randperm(len(data), generator=generator)[: args.samples].sort().values
    sample = EvaluationSample(data.subset(train_idx), data.subset(test_idx), test_idx)
    torch.manual_seed(0)
    model = build_model(config, in_channels=3)

    start = time.perf_counter()
    warm_up_umap()
    seconds = time.perf_counter() - start
    print(f"umap-learn import + JIT warm-up: {seconds:.1f} s (once per process)")

    results = []
    for label, previous in (("first checkpoint (PCA start)", None), ("next checkpoint", 0)):
        start, cpu = time.perf_counter(), time.process_time()
        record, arrays = analyze_checkpoint(
            model, sample, config, previous=None if previous is None else results[0][1]
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        results.append((record, arrays))
        stages = ", ".join(f"{k} {v:.1f}" for k, v in record["timings"].items())
        print(
            f"analyse {label}, {args.samples} points: {seconds:.1f} s wall, {cpu:.1f} s CPU "
            f"(wall by stage: {stages})"
        )
    verdict = "met" if seconds <= 30 else "MISSED"
    print(f"  goal: <= 30 s per checkpoint on 2 CPU cores -> {verdict}")

    with tempfile.TemporaryDirectory() as scratch:
        run = create_run(scratch, config, "bench")
        record, arrays = results[-1]
        for epoch in range(1, args.checkpoints + 1):
            save_analysis(run, epoch, {**record, "epoch": epoch}, arrays)
        start = time.perf_counter()
        loaded, errors = load_all_analyses(run)
        seconds = time.perf_counter() - start
        assert len(loaded) == args.checkpoints and not errors
    print(
        f"load all artifacts of a {args.checkpoints}-checkpoint run ({args.samples} points each): "
        f"{1000 * seconds:.0f} ms"
    )
    print(f"  goal: <= 1 s -> {'met' if seconds <= 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
