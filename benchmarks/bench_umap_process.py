"""UMAP in a new process: what each ``explorer analyze`` child (one per checkpoint when the
dashboard analyses in the background) pays before its first layout.

Baseline: umap-learn called as the analysis called it before (its numba code compiled in every
process; from 4,096 points pynndescent's neighbour search, whose code cannot be cached).
Now: :func:`explorer.analysis.projection.umap_2d` (umap-learn's numba functions cached on disk
once per installation; exact cosine neighbours from 4,096 points). Each is timed in fresh
processes, after one untimed process has filled the cache, and the ratio printed per size.

Run: ``python benchmarks/bench_umap_process.py [--sizes 300 5000] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import textwrap

BASELINE = textwrap.dedent("""
    import sys, time
    import numpy as np
    started = time.perf_counter()
    import umap
    from explorer.analysis.projection import align_to, pca_2d
    x = np.random.default_rng(0).normal(size=(int(sys.argv[1]), 32)).astype(np.float32)
    init = pca_2d(x).astype(np.float64)
    layout = umap.UMAP(n_components=2, n_neighbors=15, metric="cosine", init=init, n_epochs=200,
                       n_jobs=-1).fit_transform(x)
    align_to(layout, init)
    print(time.perf_counter() - started)
""")

NOW = textwrap.dedent("""
    import sys, time
    import numpy as np
    started = time.perf_counter()
    from explorer.analysis.projection import umap_2d
    x = np.random.default_rng(0).normal(size=(int(sys.argv[1]), 32)).astype(np.float32)
    umap_2d(x)
    print(time.perf_counter() - started)
""")


def seconds(script: str, size: int) -> float:
    """Wall time of import and first fit in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script, str(size)],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 5000])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{'points':>7}{'before (s)':>12}{'now (s)':>10}{'ratio':>8}")
    for size in args.sizes:
        seconds(NOW, size)  # fills numba's cache for this size's types (a fresh installation)
        before = statistics.median(seconds(BASELINE, size) for _ in range(args.repeats))
        now = statistics.median(seconds(NOW, size) for _ in range(args.repeats))
        print(f"{size:>7}{before:>12.1f}{now:>10.1f}{before / now:>7.1f}x", flush=True)


if __name__ == "__main__":
    main()
