"""Generated samples kept in the user's cache, so a warm run does not draw them again.

`generate_sample` is deterministic for its arguments (generate.py), and drawing the demo's
250,000 records took 6-8 s of every `bisonflow run` and every test session's runtime on this
2-core machine. A sample is therefore stored once under a key that covers everything its
bytes depend on, and later copied out of the store (25 MB: a few hundredths of a second):

- the source of every project module the generator imports, found from its import statements
  as the Lambda layer's contents are (bisonflow.deploy.packaging.import_closure), so an edit to any
  of them makes a new key and a stale sample is never served;
- the vendored data it reads (bisonflow/sample/data: the census counties and AIANNH areas);
- the versions of Python and of the third-party libraries those modules import (numpy's
  random streams and pyarrow's parquet writer make the bytes);
- the arguments: records, seed, snapshot month, records per chunk.

A cached sample equals a freshly generated one byte for byte (tests/test_sample_cache.py).
An entry is written beside the store under a name of its own and renamed into place when
complete (rename(2) is atomic within a file system), so a run stopped half-way, or two test
workers storing the same sample at once, never leave an entry that is read half-written.
The store lives in $XDG_CACHE_HOME/bisonflow/samples (XDG Base Directory Specification,
default ~/.cache), and keeps the KEEP_ENTRIES most recently used samples.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from bisonflow import PROJECT_ROOT
from bisonflow.deploy.packaging import import_closure, module_distributions
from bisonflow.sample.generate import (
    CHUNK_RECORDS,
    DEFAULT_RECORDS,
    DEFAULT_SEED,
    DEFAULT_SNAPSHOT,
    MANIFEST_NAME,
    SampleManifest,
    generate_sample,
)

#: Where the generator starts: the module that draws the sample and the package around it.
GENERATOR = (
    PROJECT_ROOT / "bisonflow" / "sample" / "generate.py",
    PROJECT_ROOT / "bisonflow" / "sample" / "__init__.py",
)
#: Files the generator reads besides its modules.
DATA_DIR = PROJECT_ROOT / "bisonflow" / "sample" / "data"
#: Samples kept (the demo's and the tests' sizes, with room for a code change or two).
KEEP_ENTRIES = 6


def cache_root() -> Path:
    """$XDG_CACHE_HOME/bisonflow/samples, or ~/.cache/bisonflow/samples when it is unset or
    not absolute (the XDG Base Directory Specification ignores a relative path)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "bisonflow" / "samples"


def generator_sources() -> tuple[list[Path], set[str]]:
    """Every file whose content the sample's bytes may depend on (the generator's modules,
    their project imports and the vendored data), and the third-party modules they import."""
    modules, third_party = import_closure(GENERATOR)
    data = {p for p in DATA_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return sorted(set(modules) | data), third_party


def library_versions(modules: Iterable[str]) -> dict[str, str]:
    """Python's version and that of each distribution providing one of `modules`."""
    versions = {"python": sys.version.split()[0]}
    for module, dists in module_distributions(modules).items():
        versions |= {f"{module}:{d}": importlib.metadata.version(d) for d in dists}
    return versions


def sample_key(
    records: int,
    seed: int,
    snapshot: dt.date,
    chunk_records: int,
    sources: Iterable[Path] | None = None,
) -> str:
    """The store's name for a sample: a SHA-256 of the sources' content (default:
    generator_sources()), the library versions and the arguments."""
    found, third_party = generator_sources()
    digest = hashlib.sha256()
    for path in found if sources is None else sources:
        name = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
        content = path.read_bytes()
        digest.update(f"{name.as_posix()}\0{len(content)}\0".encode())
        digest.update(content)
    arguments = {
        "records": records,
        "seed": seed,
        "snapshot": snapshot.isoformat(),
        "chunk_records": chunk_records,
        "versions": library_versions(third_party),
    }
    digest.update(json.dumps(arguments, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def cached_sample(
    out_dir: Path,
    records: int = DEFAULT_RECORDS,
    seed: int = DEFAULT_SEED,
    snapshot: dt.date | None = None,
    progress: Callable[[str], None] | None = None,
    chunk_records: int = CHUNK_RECORDS,
    root: Path | None = None,
) -> SampleManifest:
    """`generate_sample(out_dir, ...)`, served from the store when this code made the same
    sample before, and stored otherwise. The files under out_dir are the caller's own copy."""
    say = progress or (lambda _message: None)
    snapshot = (snapshot or DEFAULT_SNAPSHOT).replace(day=1)
    root = cache_root() if root is None else root
    entry = root / sample_key(records, seed, snapshot, chunk_records)
    out_dir = Path(out_dir)
    if (entry / MANIFEST_NAME).is_file():
        try:
            _copy_entry(entry, out_dir)
            os.utime(entry)  # most recently used: kept longest
        except OSError:  # pruned by another process meanwhile: generate it as if missing
            pass
        else:
            say(f"sample data ready in {out_dir} (from the cache, {entry})")
            return SampleManifest.load(out_dir)
    manifest = generate_sample(out_dir, records, seed, snapshot, say, chunk_records)
    _store(out_dir, entry)
    return manifest


def _copy_entry(entry: Path, out_dir: Path) -> None:
    """The entry's files under out_dir, replacing any there (as generate_sample does)."""
    manifest = json.loads((entry / MANIFEST_NAME).read_text("utf-8"))
    stale_parts = out_dir / Path(manifest["snapshot_dir"]).relative_to(manifest["root"])
    if stale_parts.exists():
        shutil.rmtree(stale_parts)  # no part of another sample may survive beside these
    shutil.copytree(entry, out_dir, dirs_exist_ok=True)
    SampleManifest.load(out_dir, stored_at=Path(manifest["root"])).write()


def _store(out_dir: Path, entry: Path) -> None:
    """Copy out_dir into the store as `entry`: complete or not at all. Best effort: a store
    that cannot be written (read-only home, full disk) costs only the next run's time."""
    partial = entry.with_name(f"{entry.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(out_dir, partial)
        partial.rename(entry)
    except OSError:  # another process stored it first, or the store is not writable
        shutil.rmtree(partial, ignore_errors=True)
        return
    _prune(entry.parent)


def _prune(root: Path) -> None:
    """Remove all but the KEEP_ENTRIES most recently used entries, and leftovers of stores
    that were stopped half-way (over an hour old, so no store still running loses its copy)."""
    entries = [p for p in root.iterdir() if p.is_dir() and ".partial-" not in p.name]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    stale = entries[KEEP_ENTRIES:]
    now = dt.datetime.now().timestamp()
    stale += [p for p in root.iterdir() if ".partial-" in p.name and now - p.stat().st_mtime > 3600]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
