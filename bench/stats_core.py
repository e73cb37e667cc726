"""The statistics core (matrices from site/taxon/count arrays, then every statistic), sparse
(bisonflow.stats.pam) against a straightforward dense numpy implementation of the same published
formulas: bench.stats prints the two times side by side and fails if any statistic differs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from bench import timed
from bisonflow.stats import pam


def compare_with_dense(sites: int, species: int, presences: int) -> tuple[float, float]:
    """Best-of-three times of the sparse and dense statistics on the same triples; raises if
    any statistic differs."""
    rng = np.random.default_rng(7)
    cells = rng.choice(sites * species, size=presences, replace=False)
    labels = pa.array([f"{i:05d}" for i in range(sites)])
    site_labels = labels.take(pa.array(cells // species))
    taxa = pa.array(1_000_000 + cells % species).cast(pa.string())  # taxon keys are text
    counts = 1 + rng.geometric(0.3, presences)
    sparse_times, dense_times = [], []
    for _ in range(3):
        sparse, seconds = timed(lambda: sparse_statistics(site_labels, taxa, counts))
        sparse_times.append(seconds)
        dense, seconds = timed(lambda: dense_statistics(site_labels, taxa, counts))
        dense_times.append(seconds)
    for name in dense:
        np.testing.assert_allclose(sparse[name], dense[name], rtol=1e-12, err_msg=name)
    return min(sparse_times), min(dense_times)


def sparse_statistics(sites: pa.Array, taxa: pa.Array, counts: np.ndarray) -> dict[str, Any]:
    p = pam.build_matrices(sites, taxa, counts).pam
    by_site, by_species = pam.site_stats(p), pam.species_stats(p)
    out = {name: by_site[name].to_numpy() for name in pam.SITE_STATS_COLUMNS[1:]}
    out |= {name: by_species[name].to_numpy() for name in pam.SPECIES_STATS_COLUMNS[1:]}
    (diversity,) = pam.diversity_stats(p).to_pylist()
    return out | {name: np.array([diversity[name]]) for name in pam.DIVERSITY_COLUMNS}


def dense_statistics(sites: pa.Array, taxa: pa.Array, counts: np.ndarray) -> dict[str, Any]:
    """The published formulas on a dense N x S array, written the obvious way."""
    site_labels, rows = np.unique(np.asarray(sites.to_pylist(), dtype=object), return_inverse=True)
    taxon_labels, cols = np.unique(np.asarray(taxa.to_pylist(), dtype=object), return_inverse=True)
    heatmap = np.zeros((len(site_labels), len(taxon_labels)), dtype=np.int64)
    np.add.at(heatmap, (rows, cols), counts)
    presence = (heatmap >= 1).astype(np.int64)
    presence = presence[presence.sum(axis=1) > 0][:, presence.sum(axis=0) > 0]
    n, s = presence.shape
    alpha, omega = presence.sum(axis=1), presence.sum(axis=0)
    phi, psi = presence @ omega, alpha @ presence
    return {
        "alpha": alpha,
        "alpha_proportional": alpha / s,
        "phi": phi,
        "phi_average_proportional": phi / (n * alpha),
        "omega": omega,
        "omega_proportional": omega / n,
        "psi": psi,
        "psi_average_proportional": psi / (s * omega),
        "num_sites": np.array([n]),
        "num_species": np.array([s]),
        "whittaker": np.array([s / (omega / n).sum()]),
        "lande": np.array([s - (omega / n).sum()]),
        "legendre": np.array([omega.sum() - (omega**2).sum() / n]),
    }
