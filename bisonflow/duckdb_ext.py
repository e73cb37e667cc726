"""Load DuckDB extensions without network access.

`INSTALL spatial` downloads from DuckDB's extension repository, which neither CI nor the
sandboxed machines can reach. The PyPI wheel `duckdb-extension-spatial` ships the compiled
extension inside the package, at `<package>/extensions/v<duckdb version>/<name>.duckdb_extension`;
DuckDB can LOAD that file by path. Every module that needs spatial SQL calls `load_spatial`, so
the lookup (and its error message) lives in one place. (The emulator reads S3 in-process, so
httpfs is not needed.)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

__all__ = ["ExtensionUnavailable", "extension_path", "load_spatial"]


class ExtensionUnavailable(RuntimeError):
    """The extension is neither loaded, nor shipped by its wheel, nor installed locally."""


def extension_path(name: str) -> Path:
    """Path of `<name>.duckdb_extension` inside the `duckdb-extension-<name>` wheel.

    The file must be built for the running DuckDB version (DuckDB refuses others), so the
    version directory is chosen to match `duckdb.__version__`.
    """
    package = f"duckdb_extension_{name}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionUnavailable(
            f"the Python package {package!r} is not installed; "
            f"pip install 'duckdb-extension-{name}=={duckdb.__version__}'"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    wanted = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if wanted.is_file():
        return wanted
    shipped = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.duckdb_extension"))
    raise ExtensionUnavailable(
        f"{package} has no extension for duckdb {duckdb.__version__} (ships {shipped}); "
        f"install duckdb-extension-{name}=={duckdb.__version__}"
    )


def _is_loaded(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def _load(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if _is_loaded(con, name):
        return
    try:
        path = extension_path(name)
    except ExtensionUnavailable as missing:
        # Last resort: an extension installed earlier into DuckDB's own extension directory.
        try:
            con.execute(f"LOAD {name}")
        except duckdb.Error:
            raise missing from None
        return
    # A path cannot be a prepared-statement parameter; it comes from site-packages, not input.
    con.execute(f"LOAD '{path.as_posix()}'")


def load_spatial(con: duckdb.DuckDBPyConnection) -> None:
    """Make ST_* functions, ST_Read and COPY ... (FORMAT GDAL) available on `con` (idempotent)."""
    _load(con, "spatial")
