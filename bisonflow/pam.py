"""Site x species matrices (heatmap, presence-absence) and their biodiversity statistics.

A county x species matrix for the US has hundreds of millions of cells but is mostly empty,
so everything stays in scipy.sparse (CSR, rows = sites, columns = species) and is never
densified; per-site and per-species vectors are the only dense arrays.

Labels are factorised with pyarrow's hash-based dictionary encoding rather than `np.unique`
on Python strings: a national table has millions of rows but only thousands of distinct
sites, and sorting millions of string objects would dominate the whole task.

The species are accepted species: the columns are GBIF's `specieskey` (the taxon
"corresponding to `species`", gbif/occurrence `aws-public-data.md`, "Schema"), so a
subspecies or a synonym-named record counts toward its species and never as a species of
its own (bisonflow.dimensions.SPECIES_KEY); counts of one species under several RIIS
assessments at a site are summed into one cell. Taxon keys are text, as GBIF publishes them
from the 2025-08-01 snapshot on (see `bisonflow.gbif_schema`), and are only ever matched
and counted. Species are ordered
shortest key first, then by code point ("key order"): decimal keys, which have no leading
zeros, so keep the numeric order they had as integers, and any other key still has one
fixed place.

Notation (as published): N sites, S species, P the binary PAM. Only sites and species with
at least one presence are part of P, so no statistic divides by zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from bisonflow.dimensions import SPECIES_KEY

SITE = "site"
#: The species column of the published PAM, heatmap and species statistics, as in the
#: species lists they are built from (bisonflow.dimensions.SPECIES_KEY).
TAXON = SPECIES_KEY
#: Column of the heatmap's cell values (occurrences of a taxon at a site).
OCC_COUNT = "occ_count"

SITE_STATS_COLUMNS = (SITE, "alpha", "alpha_proportional", "phi", "phi_average_proportional")
SPECIES_STATS_COLUMNS = (TAXON, "omega", "omega_proportional", "psi", "psi_average_proportional")
DIVERSITY_COLUMNS = ("num_sites", "num_species", "whittaker", "lande", "legendre")


@dataclass(frozen=True)
class SiteSpeciesMatrix:
    """A CSR matrix with its row (site) and column (taxon key) labels: sites sorted by code
    point, taxa in key order (see the module docstring).

    The matrix is canonical (sorted indices, no duplicates, no stored zeros) and has no
    empty row or column, which the statistics rely on.
    """

    sites: pa.StringArray
    taxa: pa.StringArray
    matrix: sp.csr_matrix

    @property
    def num_sites(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def num_species(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def to_table(self, value_column: str | None = None, encoded: bool = False) -> pa.Table:
        """One row per stored cell, ordered by site then taxon: `site`, `specieskey` and, if
        named, the cell value.

        `encoded`: the label columns are dictionary arrays whose indices are the CSR's own
        row and column positions and whose dictionaries are `sites` and `taxa`, so no label
        is gathered (a national PAM has 50,000,000 cells, about 1 GB of gathered strings);
        their values are those of the plain table. Otherwise labels are gathered with `take`
        (no Python strings)."""
        rows = np.repeat(np.arange(self.num_sites, dtype=np.int32), np.diff(self.matrix.indptr))
        columns: dict[str, pa.Array] = {
            SITE: _labelled(rows, self.sites, encoded),
            TAXON: _labelled(self.matrix.indices, self.taxa, encoded),
        }
        if value_column is not None:
            columns[value_column] = pa.array(self.matrix.data.astype(np.int64, copy=False))
        return pa.table(columns)


#: Occurrence counts per site and species.
Heatmap = SiteSpeciesMatrix
#: 1 where a species is present (count >= the threshold) at a site.
Pam = SiteSpeciesMatrix


@dataclass(frozen=True)
class Matrices:
    heatmap: Heatmap
    pam: Pam

    def tables(self, encoded: bool = False) -> tuple[pa.Table, pa.Table]:
        """(heatmap rows with OCC_COUNT, PAM rows), both ordered by site then taxon, labels
        dictionary-encoded if `encoded` (SiteSpeciesMatrix.to_table).

        The PAM's cells are a subset of the heatmap's in the same order, so when there are as
        many (every count reaches the threshold, as with the default of 1) the PAM rows are
        the heatmap rows without their counts, not gathered a second time.
        """
        heatmap = self.heatmap.to_table(OCC_COUNT, encoded)
        if self.pam.nnz == self.heatmap.nnz:
            return heatmap, heatmap.drop_columns([OCC_COUNT])
        return heatmap, self.pam.to_table(encoded=encoded)


def build_heatmap(sites: npt.ArrayLike, taxa: npt.ArrayLike, counts: npt.ArrayLike) -> Heatmap:
    """Counts summed per (site, taxon); zero counts and the rows/columns left empty dropped.

    `sites` and `taxa` may be pyarrow (chunked, or dictionary-encoded) string arrays or any
    sequences of strings; integer taxon keys (as GBIF published them before 2025-08) become
    their decimal text. `counts`: anything numpy turns into integers.
    """
    site_values = _strings(sites, "site labels")
    taxon_values = _strings(_integer_text(taxa), "taxon keys")
    count_values = _integers(counts, "occurrence counts")
    if not len(site_values) == len(taxon_values) == len(count_values):
        raise ValueError(
            f"sites, taxa and counts differ in length: "
            f"{len(site_values)}, {len(taxon_values)}, {len(count_values)}"
        )
    for values, what in ((site_values, "site labels"), (taxon_values, "taxon keys")):
        if values.null_count:
            raise ValueError(f"{values.null_count} {what} are null")
    if count_values.size and count_values.min() < 0:
        raise ValueError("occurrence counts must not be negative")
    site_labels, rows = _factorize(site_values)
    site_labels = site_labels.cast(pa.string())  # large_string input, same labels
    taxon_labels, cols = _factorize(taxon_values, _key_order)
    taxon_labels = taxon_labels.cast(pa.string())
    matrix = _summed_csr(rows, cols, count_values, (len(site_labels), len(taxon_labels)))
    return _without_empty(site_labels, taxon_labels, matrix)


def presence_absence(heatmap: Heatmap, min_count: int = 1) -> Pam:
    """P_ij = 1 where count_ij >= min_count; sites and species without a presence dropped."""
    if isinstance(min_count, bool) or not isinstance(min_count, int | np.integer):
        raise ValueError(f"min_count must be an integer, got {min_count!r}")
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    present = heatmap.matrix.data >= min_count
    matrix = sp.csr_matrix(
        (present.astype(np.int8), heatmap.matrix.indices.copy(), heatmap.matrix.indptr.copy()),
        shape=heatmap.matrix.shape,
    )
    return _without_empty(heatmap.sites, heatmap.taxa, matrix)


def build_matrices(
    sites: npt.ArrayLike, taxa: npt.ArrayLike, counts: npt.ArrayLike, min_count: int = 1
) -> Matrices:
    heatmap = build_heatmap(sites, taxa, counts)
    return Matrices(heatmap, presence_absence(heatmap, min_count))


def richness(pam: Pam) -> npt.NDArray[np.int64]:
    """alpha_i = sum_j P_ij: species present at each site (row lengths of the binary CSR)."""
    return np.diff(pam.matrix.indptr).astype(np.int64)


def range_sizes(pam: Pam) -> npt.NDArray[np.int64]:
    """omega_j = sum_i P_ij: sites at which each species is present."""
    return np.bincount(pam.matrix.indices, minlength=pam.num_species).astype(np.int64)


def site_stats(pam: Pam) -> pa.Table:
    """Per site: alpha (richness), alpha/S, phi = sum_j P_ij omega_j (the range sizes of the
    site's species) and phi/(N * alpha)."""
    n, s = pam.matrix.shape
    alpha, omega = richness(pam), range_sizes(pam)
    phi = np.asarray(pam.matrix @ omega, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):  # only an empty PAM has s == 0
        return _table(
            SITE_STATS_COLUMNS,
            [pam.sites, alpha, alpha / s, phi, phi / (n * alpha)],
        )


def species_stats(pam: Pam) -> pa.Table:
    """Per species: omega (range size), omega/N, psi = sum_i alpha_i P_ij (the richness of the
    sites it occupies) and psi/(S * omega)."""
    n, s = pam.matrix.shape
    alpha, omega = richness(pam), range_sizes(pam)
    psi = np.asarray(pam.matrix.T @ alpha, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _table(
            SPECIES_STATS_COLUMNS,
            [pam.taxa, omega, omega / n, psi, psi / (s * omega)],
        )


def diversity_stats(pam: Pam) -> pa.Table:
    """Whittaker's and Lande's beta diversity and Legendre's total variance, one row.

    whittaker = S / sum(omega/N), lande = S - sum(omega/N), legendre = sum(omega) -
    sum(omega^2)/N. They are undefined without a presence, so an empty PAM gives no row
    (a CSV with the header only), never a division by zero.
    """
    n, s = pam.matrix.shape
    if n == 0:
        return _table(DIVERSITY_COLUMNS, [np.array([], dtype=np.int64)] * 2 + [np.array([])] * 3)
    omega = range_sizes(pam)
    omega_proportional_sum = float(omega.sum()) / n
    return _table(
        DIVERSITY_COLUMNS,
        [
            [n],
            [s],
            [s / omega_proportional_sum],
            [s - omega_proportional_sum],
            [float(omega.sum()) - float((omega * omega).sum()) / n],
        ],
    )


def _labelled(positions: npt.NDArray[np.integer], labels: pa.Array, encoded: bool) -> pa.Array:
    """labels[positions], as a dictionary array over `labels` or gathered."""
    indices = pa.array(positions.astype(np.int32, copy=False))
    if encoded:
        return pa.DictionaryArray.from_arrays(indices, labels)
    return labels.take(indices)


def _table(names: tuple[str, ...], columns: list) -> pa.Table:
    arrays = (c if isinstance(c, pa.Array) else pa.array(c) for c in columns)
    return pa.table(dict(zip(names, arrays, strict=True)))


def _strings(values: npt.ArrayLike, what: str) -> pa.Array | pa.ChunkedArray:
    """Labels as Arrow strings, or dictionary-encoded strings as parquet readers give them
    (kept encoded: only the small dictionary is ever hashed)."""
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        try:
            values = pa.array(np.asarray(values, dtype=object), type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise ValueError(f"{what} must be strings") from None
    value_type = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        raise ValueError(f"{what} must be strings, got {values.type}")
    return values


def _integer_text(values: npt.ArrayLike) -> npt.ArrayLike:
    """Integer keys as their decimal text; anything else as it is (checked by `_strings`)."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return pc.cast(values, pa.string()) if pa.types.is_integer(values.type) else values
    array = np.asarray(values)
    if array.size and np.issubdtype(array.dtype, np.integer):
        return pa.array(array).cast(pa.string())
    return values


def _integers(values: npt.ArrayLike, what: str) -> npt.NDArray[np.int64]:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        if values.null_count:
            raise ValueError(f"{values.null_count} {what} are null")
        values = values.to_numpy()
    array = np.asarray(values)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must be integers, got {array.dtype}")
    return array.astype(np.int64, copy=False)


def _code_point_order(labels: pa.Array) -> npt.NDArray[np.int64]:
    return pc.sort_indices(labels).to_numpy()


def _key_order(labels: pa.Array) -> npt.NDArray[np.int64]:
    """Shortest first, then by code point: decimal keys in numeric order."""
    table = pa.table({"length": pc.binary_length(labels), "label": labels})
    return pc.sort_indices(
        table, sort_keys=[("length", "ascending"), ("label", "ascending")]
    ).to_numpy()


def _factorize(
    values: pa.Array | pa.ChunkedArray,
    order: Callable[[pa.Array], npt.NDArray[np.int64]] = _code_point_order,
) -> tuple[pa.Array, npt.NDArray[np.int32]]:
    """(distinct labels in `order`, each value's position among them), by hashing once and
    sorting only the distinct labels. int32 positions halve the index arrays scipy copies.

    Dictionary-encoded input is factorised through its (unified) dictionary, so millions of
    rows cost one integer gather; values the rows never use become empty rows, dropped later.
    """
    if pa.types.is_dictionary(values.type):
        chunks = (
            values.unify_dictionaries().chunks if isinstance(values, pa.ChunkedArray) else [values]
        )
        dictionary = chunks[0].dictionary if chunks else pa.array([], values.type.value_type)
        labels, positions = _factorize(dictionary, order)
        indices = [c.indices.to_numpy(zero_copy_only=False) for c in chunks]
        return labels, positions[np.concatenate(indices) if indices else np.array([], np.int32)]
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    ranked = order(encoded.dictionary)
    position = np.empty(len(ranked), dtype=np.int32)
    position[ranked] = np.arange(len(ranked), dtype=np.int32)
    codes = position[encoded.indices.to_numpy(zero_copy_only=False)]
    return encoded.dictionary.take(pa.array(ranked)), codes


def _summed_csr(
    rows: npt.NDArray[np.int32],
    cols: npt.NDArray[np.int32],
    counts: npt.NDArray[np.int64],
    shape: tuple[int, int],
) -> sp.csr_matrix:
    """Canonical CSR (sorted indices, duplicate cells summed) from unordered triples.

    scipy's COO -> CSR sorts every row's indices with a comparison sort, which dominates a
    5-million-cell build. Here each cell becomes one integer key (row * columns + column) and
    the keys are sorted by value, several times faster than any argsort; when the key and
    the count both fit in 32 bits (any US matrix), they are packed into one int64 so a single
    value sort carries the counts along. Counts are non-negative (checked by the caller).
    """
    num_rows, num_cols = shape
    key = rows.astype(np.int64) * num_cols + cols
    if key.size and key.max() < 2**31 and counts.max() < 2**32:
        packed = np.sort(key << 32 | counts)
        key, values = packed >> 32, packed & 0xFFFFFFFF
    else:
        order = np.argsort(key)
        key, values = key[order], counts[order]
    first = np.ones(key.size, dtype=bool)
    np.not_equal(key[1:], key[:-1], out=first[1:])
    if not first.all():  # the same (site, taxon) in several rows: one cell, counts summed
        starts = np.flatnonzero(first)
        key, values = key[starts], np.add.reduceat(values, starts)
    cell_rows, cell_cols = np.divmod(key, num_cols)
    indptr = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(cell_rows, minlength=num_rows), out=indptr[1:])
    index_type = np.int32 if key.size < 2**31 else np.int64
    return sp.csr_matrix(
        (values, cell_cols.astype(index_type), indptr.astype(index_type)), shape=shape
    )


def _without_empty(sites: pa.Array, taxa: pa.Array, matrix: sp.csr_matrix) -> SiteSpeciesMatrix:
    """Drops stored zeros, then empty rows and columns, without densifying or re-sorting.

    Takes ownership of `matrix`. Column positions are remapped in order, so the indices stay
    sorted; rows without entries vanish from indptr.
    """
    matrix.eliminate_zeros()
    keep_rows = np.diff(matrix.indptr) > 0
    keep_cols = np.bincount(matrix.indices, minlength=matrix.shape[1]) > 0
    if keep_rows.all() and keep_cols.all():
        return SiteSpeciesMatrix(sites, taxa, matrix)
    new_column = np.cumsum(keep_cols) - 1
    indptr = np.concatenate(([0], matrix.indptr[1:][keep_rows]))
    trimmed = sp.csr_matrix(
        (matrix.data, new_column[matrix.indices].astype(matrix.indices.dtype), indptr),
        shape=(int(keep_rows.sum()), int(keep_cols.sum())),
    )
    return SiteSpeciesMatrix(
        sites.filter(pa.array(keep_rows)), taxa.filter(pa.array(keep_cols)), trimmed
    )
