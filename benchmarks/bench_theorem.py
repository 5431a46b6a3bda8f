"""Time to theorem: the seconds of training the shapes demo needs to come within 25% and 10% of
the provable optimum, and the cost of scoring one checkpoint exactly (issue 10, section 5; issue 17,
section 6: a gap <= 0.10 within 60 s of training steps on 2 CPU cores).

Time to theorem. The ``shapes-demo`` preset (``shapes-subgrid``, ``augment=graph``: views drawn
from the exact augmentation graph's kernel, ``cnn-narrow``, spectral loss, mu = 30, batch 256,
360 epochs = 1,080 steps) is trained with the package's own step, ``explorer.train.Trainer``:
``Trainer.views(indices)`` makes the two views, ``Trainer.train_step`` does the SGD step with the
run's learning-rate schedule (``explorer.train.learning_rate``: warm-up, then cosine decay over
the preset's epochs). The batches are what the training loop feeds it: each epoch a seeded
permutation of the training split cut into full batches (this script draws its own permutation;
the loop's is private). Every ``--every`` steps, and at the end, the model is scored on every
node of its own graph by ``explorer.analysis.theorem.exact_metrics``. Only training seconds count:
the
clock stops while a checkpoint is scored (on CUDA after a synchronisation), and the model is put
back in train mode afterwards. The script prints, per checkpoint, the relative gap to the optimum
-sum(gamma^2) and to the best loss reachable inside the ball ||f||^2 <= mu, the class-eigenspace
R^2 and the 6th and 7th eigenvalues of E_w[f f^T]; then the step and training seconds at which
the reachable gap first fell to <= 0.25 and <= 0.10 (resolution: ``--every`` steps), the final
gap, the top 7 eigenvalues beside the graph's, class R^2 and steps/s. The same is done for SimCLR
(the ``<preset>-simclr`` preset, or ``loss=simclr``; scored at its best feature scale, since
SimCLR has no mu) unless ``--no-simclr`` (off by default with ``--quick``; ``--quick --simclr``
checks that path too).

Cost of the exact metrics. Before training, the freshly initialised model is scored (the cost
does not depend on the weights; this is also the step-0 point): the first call of a process builds
the graph and its eigendecomposition (``explorer.analysis.theorem.run_graph``) and solves the
reachable-optimum curve (``explorer.analysis.theorem.ball_curve``), both cached per process (per
graph, k
and mu); each is timed alone, cold, and the first call is their sum plus a scoring on the caches.
Warm calls are what every later checkpoint costs. The baseline is the forward pass over the
graph's nodes alone (``explorer.analysis.theorem.node_outputs``), which every scoring needs; the
ratio
says what the exact metrics add to it. Wall and CPU seconds (all threads) are printed: a shared
machine inflates wall time. Goal (issue 10, section 4; issue 17, section 6 for the guarantee's
metrics): at most 10 s per checkpoint on 2 CPU cores.

Figures are meaningful only on a quiet machine; ``--threads`` (default 2, the issue's 2 cores)
limits torch and the BLAS under NumPy. No figure is asserted; the goals are printed beside them.

    .venv/bin/python benchmarks/bench_theorem.py          # 1,080 steps + SimCLR, ~5 min, 2 cores
    .venv/bin/python benchmarks/bench_theorem.py --quick  # checks the script works, < 1 min

``--quick`` trains 8 steps of batch 64 without warm-up and cuts the reachable-optimum solver to a
few iterations: its numbers check that the script runs, nothing more.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from explorer.analysis import theorem
from explorer.builders import load_splits
from explorer.config import Config, build_config, list_presets
from explorer.train import LossWindow, Trainer

THRESHOLDS = (0.25, 0.10)  # reachable gaps whose time to reach is reported
TOP = 7  # eigenvalues printed: the class block (six) and the next one
# The targets: issue 17 section 6 for the demo's time (issue 10 asked 180 s), issue 10 for the rest
GOAL_TRAIN_SECONDS, GOAL_GAP, GOAL_R2, GOAL_SCORE_SECONDS = 60.0, 0.10, 0.95, 10.0
# --quick: a check that the script runs (8 steps, batch 64, no warm-up, a rough curve)
QUICK_STEPS, QUICK_EVERY, QUICK_BATCH, QUICK_CURVE_ITERATIONS = 8, 4, 64, 10

Seconds = tuple[float, float]  # (wall, CPU of all threads)


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, Seconds]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Point:
    """One scored checkpoint."""

    step: int
    train_seconds: float  # training seconds before it; scoring excluded
    score: Seconds  # this exact_metrics call
    record: dict[str, Any]
    c_eigs: np.ndarray  # (k,) eigenvalues of E_w[f f^T], descending
    gammas: np.ndarray  # (k,) the graph's top eigenvalues


@dataclass
class Cost:
    """What one checkpoint's exact metrics cost, (wall, CPU) seconds each."""

    first: Seconds  # the first call of a process: graph, eigendecomposition, curve, scoring
    graph: Seconds  # graph + eigendecomposition
    curve: Seconds  # the reachable-optimum curve
    warm: Seconds  # every later checkpoint
    forward: Seconds  # the forward pass over the graph's nodes alone (the baseline)


@dataclass
class Run:
    """One training run, scored along the way."""

    name: str
    config: Config
    points: list[Point]
    steps: int
    train_seconds: float

    def first_below(self, threshold: float) -> Point | None:
        return next((p for p in self.points if p.record["reachable_gap"] <= threshold), None)

    @property
    def final(self) -> Point:
        return self.points[-1]


def score(trainer: Trainer, step: int, train_seconds: float) -> Point:
    """``exact_metrics`` on the trainer's model (it switches to eval mode), then train mode."""
    (record, arrays), seconds = timed(
        theorem.exact_metrics, trainer.model, trainer.config, trainer.train_set, trainer.device
    )
    trainer.model.train()
    return Point(step, train_seconds, seconds, record, arrays["exact_c_eigs"],
                 arrays["exact_gammas"])  # fmt: skip


def batches(trainer: Trainer, seed: int) -> Iterator[torch.Tensor]:
    """Index batches as the training loop makes them: each epoch a permutation seeded by
    (seed, epoch), cut into full batches (drop_last)."""
    size, n = trainer.config.batch_size, len(trainer.train_set)
    epoch = 0
    while True:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=generator).to(trainer.device)
        for start in range(0, n - size + 1, size):
            yield order[start : start + size]
        epoch += 1


# -- cost of the exact metrics -----------------------------------------------------------------
def measure_cost(trainer: Trainer, repeats: int) -> tuple[Cost, Point]:
    """The first exact_metrics call (cold caches), warm calls, and the forward pass alone.

    The first call's two cached stages are timed alone, cold, with the arguments exact_metrics
    gives them (the run's graph; k = the projector's output dimension; the run's mu, or none
    for a loss without one); then exact_metrics scores the model on those caches. The first call
    is their sum. Prints the table; returns it with the score of the model (the step-0 point).
    """
    config, train, device = trainer.config, trainer.train_set, trainer.device
    graph, graph_s = timed(theorem.run_graph, config, train)  # cold: graph + eigendecomposition
    k = min(config.projector_out_dim, graph.graph.num_nodes)
    mu = config.mu if config.loss == "spectral" else float("inf")
    _, curve_s = timed(theorem.ball_curve, graph.key, k, mu)  # cold: the reachable optimum
    point = score(trainer, 0, 0.0)
    first = tuple(a + b + c for a, b, c in zip(graph_s, curve_s, point.score, strict=True))
    warm, forward = [], []
    for _ in range(repeats):
        warm.append(timed(theorem.exact_metrics, trainer.model, config, train, device)[1])
        forward.append(timed(theorem.node_outputs, trainer.model, graph, train, device)[1])
    trainer.model.train()
    warm_s, forward_s = min(warm), min(forward)  # best of the repeats: the least disturbed
    cost = Cost(first, graph_s, curve_s, warm_s, forward_s)  # type: ignore[arg-type]
    print(f"\nCost of the exact metrics per checkpoint ({graph.graph.num_nodes} nodes, k = {k}, "
          f"mu = {config.mu:g}; warm figures: best of {repeats})")  # fmt: skip
    print(f"{'':<52}{'wall s':>9}{'CPU s':>9}")
    rows = [
        ("first call (once per process, graph, k and mu)", first),
        ("  graph + eigendecomposition", graph_s),
        ("  reachable-optimum curve", curve_s),
        ("  scoring on the cached graph and curve", point.score),
        ("warm call (every later checkpoint)", warm_s),
        ("baseline: forward pass over the nodes alone", forward_s),
    ]
    for label, (wall, cpu) in rows:
        print(f"{label:<52}{wall:>9.2f}{cpu:>9.2f}")
    print(f"ratio warm call / forward pass: {warm_s[0] / forward_s[0]:.1f}x; "
          f"first call / warm call: {first[0] / warm_s[0]:.1f}x")  # fmt: skip
    warm_ok, first_ok = warm_s[0] <= GOAL_SCORE_SECONDS, first[0] <= GOAL_SCORE_SECONDS
    print(
        f"  goal: <= {GOAL_SCORE_SECONDS:g} s per checkpoint on 2 CPU cores -> "
        f"{'met' if warm_ok else 'MISSED'} by a warm call; the first call (once per process) "
        f"{'meets it too' if first_ok else 'does not'}"
    )
    return cost, point


# -- time to theorem ---------------------------------------------------------------------------
def header_row() -> str:
    return (f"{'step':>6}{'train s':>9}{'loss':>9}{'gap':>8}{'reach gap':>11}{'class R2':>10}"
            f"{'eig6':>7}{'eig7':>7}{'score s':>9}")  # fmt: skip


def point_row(point: Point) -> str:
    r, eigs = point.record, point.c_eigs
    eig6 = eigs[5] if len(eigs) > 5 else float("nan")
    eig7 = eigs[6] if len(eigs) > 6 else float("nan")
    return (f"{point.step:>6}{point.train_seconds:>9.1f}{r['loss']:>9.3f}{r['gap']:>8.3f}"
            f"{r['reachable_gap']:>11.3f}{r['class_r2']:>10.3f}{eig6:>7.2f}{eig7:>7.2f}"
            f"{point.score[0]:>9.1f}")  # fmt: skip


def train_and_score(name: str, trainer: Trainer, start: Point, steps: int, every: int,
                    seed: int) -> Run:  # fmt: skip
    """Train ``steps`` steps with ``Trainer.train_step``, scoring every ``every`` steps and at
    the end; only the training segments are on the clock."""
    device, window = trainer.device, LossWindow(sums={})
    indices = batches(trainer, seed)
    points, trained = [start], 0.0
    print(f"\n{name}: {trainer.config.loss} loss, {steps} steps, scored every {every}")
    print(header_row())
    print(point_row(start), flush=True)
    targets = [*range(every, steps, every), steps]
    for target in targets:
        trainer.model.train()
        sync(device)
        started = time.perf_counter()
        while trainer.step < target:
            view1, view2 = trainer.views(next(indices))
            trainer.train_step(view1, view2, window)
            trainer.step += 1
        sync(device)
        trained += time.perf_counter() - started
        points.append(score(trainer, trainer.step, trained))
        print(point_row(points[-1]), flush=True)
    if not torch.isfinite(window.sums["loss"]).item():  # read back once, after timing
        print("warning: the training loss became non-finite; the figures are meaningless")
    return Run(name, trainer.config, points, steps, trained)


def reached(run: Run, threshold: float) -> str:
    point = run.first_below(threshold)
    if point is None:
        return f"not reached in {run.steps} steps"
    return f"{point.train_seconds:.0f} s ({point.step} steps)"


def eigs_text(values: np.ndarray) -> str:
    return " ".join(f"{v:.2f}" for v in values[:TOP])


def report_run(run: Run, every: int) -> None:
    final = run.final.record
    first, second = (f"<= {t:.2f}: {reached(run, t)}" for t in THRESHOLDS)
    print(f"{run.name}: reachable gap {first}; {second} (scored every {every} steps)")
    print(
        f"  final: gap {final['gap']:.3f} (to -sum gamma^2 = {final['optimum']:.2f}), "
        f"reachable gap {final['reachable_gap']:.3f} (to {final['reachable_optimum']:.2f}), "
        f"loss {final['loss']:.2f}, class R2 {final['class_r2']:.3f}, "
        f"{run.steps / run.train_seconds:.2f} steps/s ({run.train_seconds:.0f} s of training)"
    )
    print(f"  top {TOP} eigenvalues of E_w[f f^T]: {eigs_text(run.final.c_eigs)}")
    print(f"  the graph's gamma_1..{TOP}:          {eigs_text(run.final.gammas)}")
    if run.config.loss != "spectral":
        print(f"  (scored at its best feature scale c = {final['feature_scale']:.3g})")


def goals(run: Run) -> None:
    """The issue's section-5 targets for the spectral demo, printed (never asserted)."""
    point = run.first_below(GOAL_GAP)
    eigs = run.final.c_eigs
    checks = [
        (f"reachable gap <= {GOAL_GAP:g} within {GOAL_TRAIN_SECONDS:g} s of training",
         point is not None and point.train_seconds <= GOAL_TRAIN_SECONDS),
        ("six eigenvalues within 0.1 of 1", len(eigs) > 5 and bool(np.all(abs(eigs[:6] - 1) <= 0.1))),  # noqa: E501
        ("the seventh below 0.5", len(eigs) > 6 and eigs[6] < 0.5),
        (f"class R2 >= {GOAL_R2:g}", run.final.record["class_r2"] >= GOAL_R2),
    ]  # fmt: skip
    text = "; ".join(f"{label} -> {'met' if ok else 'MISSED'}" for label, ok in checks)
    print(f"  goals (issues 10 and 17, 2 CPU cores): {text}")


def summary(runs: list[Run], cost: Cost, args: argparse.Namespace, device: torch.device) -> None:
    spectral = runs[0]
    c = spectral.config
    print("\n---- summary (for the README) ----")
    print(f"Time to theorem, `{args.preset}` ({c.dataset}, augment={c.augment}, {c.backbone}, "
          f"mu = {c.mu:g}, batch {c.batch_size}), {device}, {torch.get_num_threads()} threads, "
          f"seed {args.seed}; training seconds only, scored every {args.every} steps "
          f"on the {spectral.final.record['graph']['nodes']}-node graph:")  # fmt: skip
    print()
    print(
        f"| run | reachable gap <= {THRESHOLDS[0]:.2f} | <= {THRESHOLDS[1]:.2f} | final gap "
        f"(reachable) | top {TOP} eigenvalues of E_w[ffT] | class R2 | steps/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        r = run.final.record
        print(f"| {run.name} | {reached(run, THRESHOLDS[0])} | "
              f"{reached(run, THRESHOLDS[1])} | {r['gap']:.3f} ({r['reachable_gap']:.3f}) | "
              f"{eigs_text(run.final.c_eigs)} | {r['class_r2']:.3f} | "
              f"{run.steps / run.train_seconds:.2f} |")  # fmt: skip
    print(f"| graph | | | | {eigs_text(spectral.final.gammas)} | | |")
    print()
    print(
        f"Exact metrics per checkpoint: {cost.warm[0]:.1f} s, against {cost.forward[0]:.1f} s "
        f"for the forward pass over the nodes alone ({cost.warm[0] / cost.forward[0]:.1f}x); "
        f"the first call of a process {cost.first[0]:.1f} s (graph and eigendecomposition "
        f"{cost.graph[0]:.1f} s, reachable-optimum curve {cost.curve[0]:.1f} s)."
    )
    if args.quick:
        print("(--quick: a check that the script runs; these numbers measure nothing)")


def simclr_config(args: argparse.Namespace, epochs: int) -> Config:
    """The ``<preset>-simclr`` preset when there is one, else the preset with loss=simclr."""
    name = f"{args.preset}-simclr"
    if name in list_presets():
        return make_config(name, args, epochs)
    return make_config(args.preset, args, epochs, loss="simclr")


def make_config(preset: str, args: argparse.Namespace, epochs: int | None = None,
                loss: str | None = None) -> Config:  # fmt: skip
    overrides: dict[str, Any] = {"device": args.device, "seed": args.seed, "knn_every": 0,
                                 "analyze": "off"}  # fmt: skip
    if args.quick:
        overrides.update(batch_size=QUICK_BATCH, warmup_epochs=0)
    if epochs is not None:
        overrides["epochs"] = epochs
    if loss is not None:
        overrides["loss"] = loss
    for item in args.set or []:  # --set lr=0.2: the CLI's key=value overrides, as strings
        key, _, value = item.partition("=")
        overrides[key] = value
    return build_config(preset, overrides=overrides)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Run: .venv/bin/python benchmarks/bench_theorem.py [--quick]",
    )
    parser.add_argument("--preset", default="shapes-demo",
                        help="a shapes preset (default shapes-demo)")  # fmt: skip
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int,
                        help="train this many steps (the schedule of ceil(steps / steps per "
                             "epoch) epochs); default: the preset's epochs")  # fmt: skip
    length.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--every", type=int, help="steps between scorings (default 30)")
    parser.add_argument(
        "--repeats",
        type=int,
        help="warm exact_metrics and forward calls timed; best kept (default 3)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="cpu (default: the issue's goals are for 2 CPU cores), cuda or auto",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch and BLAS threads (default 2, the issue's cores; 0: leave as is)",
    )  # noqa: E501
    parser.add_argument("--baseline", metavar="BACKBONE",
                        help="also train the spectral run with this backbone (e.g. cnn-small, "
                             "the demo's former one) and print the ratio of the times")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config field of every run (repeatable), e.g. "
                             "--set lr=0.2 --set batch_size=128")  # fmt: skip
    parser.add_argument(
        "--simclr",
        action=argparse.BooleanOptionalAction,
        help="train and score SimCLR beside it (default: on; off with --quick)",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"a check that the script works, under a minute: {QUICK_STEPS} steps "
                             f"of batch {QUICK_BATCH}, scored every {QUICK_EVERY}, a rough "
                             "reachable-optimum curve")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = args.steps if args.steps is not None or args.epochs else QUICK_STEPS
        theorem.CURVE_ITERATIONS = QUICK_CURVE_ITERATIONS  # read at call time by ball_curve
    args.simclr = not args.quick if args.simclr is None else args.simclr
    if args.every is None:
        args.every = QUICK_EVERY if args.quick else 30
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    for name in ("steps", "epochs", "every", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)  # NumPy's BLAS: the eigendecomposition, the curve
    base = make_config(args.preset, args, args.epochs)
    if not theorem.applies(base):
        raise SystemExit(f"{args.preset}: dataset {base.dataset} has no exact graph")
    splits = load_splits(base)  # shared by both runs (same dataset, same seed)
    per_epoch = len(splits[0]) // base.batch_size
    epochs = math.ceil(args.steps / per_epoch) if args.steps else base.epochs
    steps = args.steps or epochs * per_epoch

    trainer = Trainer(make_config(args.preset, args, epochs), progress=False, splits=splits)
    c, device = trainer.config, trainer.device
    plural = "s" if epochs != 1 else ""
    print(
        f"{args.preset}: {c.dataset} ({len(splits[0])} training images), augment={c.augment}, "
        f"{c.backbone}, mu = {c.mu:g}, batch {c.batch_size}, {steps} steps ({epochs} epoch{plural}"
        f" of {per_epoch}), lr {c.effective_lr:g}, warm-up {c.warmup_epochs} epochs; "
        f"device {device}, {torch.get_num_threads()} threads, seed {args.seed}"
    )
    if args.quick:
        print(
            f"--quick: reachable-optimum solver cut to {QUICK_CURVE_ITERATIONS} iterations; "
            "the numbers below only show that the script runs"
        )
    cost, start = measure_cost(trainer, args.repeats)
    print(f"graph: {start.record['graph']['description']}")
    runs = [train_and_score("spectral", trainer, start, steps, args.every, args.seed)]
    if args.baseline:
        config = dataclasses.replace(trainer.config, backbone=args.baseline)
        other = Trainer(config, progress=False, splits=splits)
        first = score(other, 0, 0.0)
        runs.append(train_and_score(f"spectral, {args.baseline}", other, first, steps,
                                    args.every, args.seed))  # fmt: skip
    if args.simclr:
        other = Trainer(simclr_config(args, epochs), progress=False, splits=splits)
        first = score(other, 0, 0.0)  # its own mu: its curve is solved now, off the clock
        runs.append(train_and_score("simclr", other, first, steps, args.every, args.seed))
    print()
    for run in runs:
        report_run(run, args.every)
        if run.config.loss == "spectral":
            goals(run)
    summary(runs, cost, args, device)
    if args.baseline:
        baseline_ratio(runs[0], runs[1])


def baseline_ratio(run: Run, baseline: Run) -> None:
    """Seconds of training to a reachable gap <= GOAL_GAP, the preset against the baseline
    backbone trained in this process (a ratio holds on a noisy machine where seconds do not)."""
    ours, theirs = run.first_below(GOAL_GAP), baseline.first_below(GOAL_GAP)
    speed = (baseline.steps / baseline.train_seconds) / (run.steps / run.train_seconds)
    text = (f"steps/s: {run.steps / run.train_seconds:.2f} against "
            f"{baseline.steps / baseline.train_seconds:.2f} (a step costs {speed:.2f} of the "
            "baseline's)")
    if ours is not None and theirs is not None:
        text += (f"; reachable gap <= {GOAL_GAP:g} after {ours.train_seconds:.0f} s against "
                 f"{theirs.train_seconds:.0f} s: {theirs.train_seconds / ours.train_seconds:.2f}x "
                 "faster")
    print(f"\nbaseline ({baseline.name}): {text}")


if __name__ == "__main__":
    main()
