"""Site x species matrices (heatmap, presence-absence) and their biodiversity statistics.

A county x species matrix for the US is tens of millions of cells but mostly empty, so
everything stays in scipy.sparse (CSR, rows = sites, columns = species) and is never
densified; per-site and per-species vectors are the only dense arrays.

Notation: N sites, S species, P the binary PAM. Only sites and species with at least one
presence are part of P, so no statistic divides by zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp


@dataclass(frozen=True)
class SiteSpeciesMatrix:
    """A sparse matrix with its row (site) and column (taxon key) labels, both sorted."""

    sites: npt.NDArray[np.object_]
    taxa: npt.NDArray[np.int64]
    matrix: sp.csr_matrix

    @property
    def num_sites(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def num_species(self) -> int:
        return int(self.matrix.shape[1])

    def triples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(site, taxonkey, value) of every stored cell, ordered by site then taxon."""
        coo = self.matrix.tocoo()
        order = np.lexsort((coo.col, coo.row))
        return self.sites[coo.row[order]], self.taxa[coo.col[order]], coo.data[order]


#: Occurrence counts per site and species.
Heatmap = SiteSpeciesMatrix
#: 1 where a species is present (count >= the threshold) at a site.
Pam = SiteSpeciesMatrix


@dataclass(frozen=True)
class Matrices:
    heatmap: Heatmap
    pam: Pam


def build_heatmap(sites: npt.ArrayLike, taxa: npt.ArrayLike, counts: npt.ArrayLike) -> Heatmap:
    """Counts summed per (site, taxon); zero counts and the rows/columns left empty dropped."""
    site_values = np.asarray(sites, dtype=object)
    taxon_values = np.asarray(taxa, dtype=np.int64)
    count_values = np.asarray(counts, dtype=np.int64)
    if not len(site_values) == len(taxon_values) == len(count_values):
        raise ValueError(
            f"sites, taxa and counts differ in length: "
            f"{len(site_values)}, {len(taxon_values)}, {len(count_values)}"
        )
    if (count_values < 0).any():
        raise ValueError("occurrence counts must not be negative")
    site_labels, rows = np.unique(site_values, return_inverse=True)
    taxon_labels, cols = np.unique(taxon_values, return_inverse=True)
    matrix = sp.csr_matrix(
        (count_values, (rows.ravel(), cols.ravel())),
        shape=(len(site_labels), len(taxon_labels)),
        dtype=np.int64,
    )  # COO -> CSR sums duplicate (site, taxon) entries
    return _without_empty(site_labels, taxon_labels, matrix)


def presence_absence(heatmap: Heatmap, min_count: int = 1) -> Pam:
    """P_ij = 1 where count_ij >= min_count; sites and species without a presence dropped."""
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    matrix = heatmap.matrix.copy()
    matrix.data = (matrix.data >= min_count).astype(np.int8)
    return _without_empty(heatmap.sites, heatmap.taxa, matrix)


def build_matrices(
    sites: npt.ArrayLike, taxa: npt.ArrayLike, counts: npt.ArrayLike, min_count: int = 1
) -> Matrices:
    heatmap = build_heatmap(sites, taxa, counts)
    return Matrices(heatmap, presence_absence(heatmap, min_count))


def site_stats(pam: Pam) -> dict[str, np.ndarray]:
    """Per site: alpha (richness), alpha/S, phi (range-size sum) and phi/(N*alpha)."""
    n, s = pam.matrix.shape
    alpha, omega = _richness(pam), _range_sizes(pam)
    phi = np.asarray(pam.matrix @ omega, dtype=np.int64)
    return {
        "site": pam.sites,
        "alpha": alpha,
        "alpha_proportional": alpha / s,
        "phi": phi,
        "phi_average_proportional": phi / (n * alpha),
    }


def species_stats(pam: Pam) -> dict[str, np.ndarray]:
    """Per species: omega (range size), omega/N, psi (richness sum) and psi/(S*omega)."""
    n, s = pam.matrix.shape
    alpha, omega = _richness(pam), _range_sizes(pam)
    psi = np.asarray(pam.matrix.T @ alpha, dtype=np.int64)
    return {
        "taxonkey": pam.taxa,
        "omega": omega,
        "omega_proportional": omega / n,
        "psi": psi,
        "psi_average_proportional": psi / (s * omega),
    }


def diversity_stats(pam: Pam) -> dict[str, float | int]:
    """Whittaker's and Lande's beta diversity and Legendre's total variance of the PAM."""
    n, s = pam.matrix.shape
    if n == 0:
        raise ValueError("the PAM has no presences; diversity statistics are undefined")
    omega = _range_sizes(pam)
    omega_proportional_sum = float(omega.sum()) / n
    return {
        "num_sites": int(n),
        "num_species": int(s),
        "whittaker": s / omega_proportional_sum,
        "lande": s - omega_proportional_sum,
        "legendre": float(omega.sum()) - float((omega * omega).sum()) / n,
    }


def _richness(pam: Pam) -> npt.NDArray[np.int64]:
    """alpha_i: species present at each site."""
    return np.asarray(pam.matrix.sum(axis=1, dtype=np.int64)).ravel()


def _range_sizes(pam: Pam) -> npt.NDArray[np.int64]:
    """omega_j: sites at which each species is present."""
    return np.asarray(pam.matrix.sum(axis=0, dtype=np.int64)).ravel()


def _without_empty(sites: np.ndarray, taxa: np.ndarray, matrix: sp.csr_matrix) -> SiteSpeciesMatrix:
    """Takes ownership of `matrix` (zeros are eliminated in place)."""
    matrix.eliminate_zeros()
    keep_rows = np.diff(matrix.indptr) > 0
    keep_cols = np.bincount(matrix.indices, minlength=matrix.shape[1]) > 0
    trimmed = matrix[keep_rows].tocsc()[:, keep_cols].tocsr()
    trimmed.sort_indices()
    return SiteSpeciesMatrix(sites[keep_rows], taxa[keep_cols], trimmed)
