"""UMAP layouts without per-process compilation: exact cosine neighbours (against
scikit-learn's brute-force search) and umap-learn's numba code read back from numba's cache; a
layout started from the previous one keeps its neighbourhoods in fewer epochs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.manifold import trustworthiness
from sklearn.neighbors import NearestNeighbors

from explorer.analysis import projection
from explorer.analysis.projection import SMALL_DATA, cosine_neighbours, umap_2d


@pytest.mark.parametrize("chunk", [7, 2048])
def test_cosine_neighbours_are_scikit_learns_brute_force_ones(chunk: int) -> None:
    x = np.random.default_rng(0).normal(size=(300, 12)).astype(np.float32)
    indices, distances = cosine_neighbours(x, 10, chunk=chunk)
    reference = NearestNeighbors(n_neighbors=10, metric="cosine", algorithm="brute").fit(x)
    ref_distances, ref_indices = reference.kneighbors(x)
    assert indices.shape == distances.shape == (300, 10)
    np.testing.assert_array_equal(indices[:, 0], np.arange(300))  # itself first
    np.testing.assert_array_equal(indices, ref_indices)  # random data: no ties
    np.testing.assert_allclose(distances, ref_distances, atol=1e-5)


def test_a_zero_row_is_its_own_nearest_and_at_distance_one_from_the_rest() -> None:
    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    x[3] = 0.0
    indices, distances = cosine_neighbours(x, 5)
    assert indices[3, 0] == 3 and distances[3, 0] == 0.0
    np.testing.assert_allclose(distances[3, 1:], 1.0)
    assert 3 not in indices[np.arange(20) != 3, 0]


def test_above_umaps_small_data_size_the_layout_keeps_two_clusters_apart() -> None:
    """From SMALL_DATA points the neighbours come from cosine_neighbours, not pynndescent."""
    rng = np.random.default_rng(2)
    n = SMALL_DATA // 2 + 50
    directions = np.zeros((2, 16), dtype=np.float32)
    directions[0, 0] = directions[1, 1] = 1.0
    x = np.concatenate([d + 0.05 * rng.normal(size=(n, 16)) for d in directions])
    labels = np.repeat([0, 1], n)
    layout = umap_2d(x.astype(np.float32), n_epochs=20, seed=0)
    assert layout.shape == (2 * n, 2) and np.isfinite(layout).all()
    centres = [layout[labels == c].mean(0) for c in (0, 1)]
    spread = max(float(np.linalg.norm(layout[labels == c] - centres[c], axis=1).mean())
                 for c in (0, 1))
    assert np.linalg.norm(centres[0] - centres[1]) > 3 * spread


def test_a_layout_started_from_the_last_one_keeps_its_neighbourhoods_in_fewer_epochs() -> None:
    """A checkpoint's features move from the last one's (a quarter of the points change
    cluster); its layout starts from the last layout with SEEDED_EPOCHS, not FULL_EPOCHS: the
    neighbourhoods it keeps (trustworthiness, against the new features in UMAP's cosine metric)
    are within 0.01 of a full fit's (0.950 and 0.954 here; 50 epochs give 0.946, 20 0.938),
    and far above the start's own (0.770)."""
    assert projection.SEEDED_EPOCHS < projection.FULL_EPOCHS
    rng = np.random.default_rng(3)
    centres, noise = rng.normal(size=(6, 16)), 0.4 * rng.normal(size=(1200, 16))
    labels = rng.integers(0, 6, 1200)
    before = (centres[labels] + noise).astype(np.float32)
    labels = np.where(rng.random(1200) < 0.25, rng.integers(0, 6, 1200), labels)
    after = (centres[labels] + noise + 0.2 * rng.normal(size=noise.shape)).astype(np.float32)
    last = umap_2d(before, seed=0)
    full = umap_2d(after, last, n_epochs=projection.FULL_EPOCHS, seed=0)
    seeded = umap_2d(after, last, seed=0)
    np.testing.assert_array_equal(
        seeded, umap_2d(after, last, n_epochs=projection.SEEDED_EPOCHS, seed=0))
    kept = {name: trustworthiness(after, layout, n_neighbors=15, metric="cosine")
            for name, layout in (("full", full), ("seeded", seeded), ("start", last))}
    assert kept["seeded"] >= kept["full"] - 0.01, kept
    assert kept["seeded"] > kept["start"] + 0.1, kept  # the fit did repair the start


#: umap-learn's costly functions (compute_membership_strengths and the layout's epochs compiled
#: about 12 s of a first fit's 15 on 2 cores); small helpers such as tau_rand may compile anew.
COSTLY = ("smooth_knn_dist", "compute_membership_strengths",
          "_nb_optimize_layout_euclidean_single_epoch_parallel")

FIT_AND_COUNT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from numba.core.dispatcher import Dispatcher
    from explorer.analysis.projection import umap_2d
    umap_2d(np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32), n_epochs=5)
    counts = {}
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] == "umap":
            for key, value in vars(module).items():
                if isinstance(value, Dispatcher):
                    counts[key] = (sum(value.stats.cache_misses.values()),
                                   sum(value.stats.cache_hits.values()))
    print(json.dumps(counts))
""")


def test_a_second_process_reads_umaps_compiled_code_from_the_cache() -> None:
    """The first process may compile (a fresh installation); a later one reads the costly
    functions from numba's cache (umap-learn alone compiles them in every process). Three tries:
    another test process writing the same cache index at that instant can drop an entry."""
    seen = []
    for _ in range(4):
        result = subprocess.run([sys.executable, "-c", FIT_AND_COUNT], capture_output=True,
                                text=True, timeout=300, check=True)
        counts = json.loads(result.stdout)
        seen.append({name: counts[name] for name in COSTLY})
        if len(seen) > 1 and all(seen[-1][name] == [0, 1] for name in COSTLY):
            return
    raise AssertionError(f"every process compiled umap-learn's costly functions: {seen}")
