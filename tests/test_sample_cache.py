"""The sample store (bisonflow.sample.cache): a cached sample is the generated one, byte for
byte; any change to what makes the bytes misses; an entry is complete or absent."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from bisonflow import PROJECT_ROOT
from bisonflow.sample import cache, generate_sample
from bisonflow.sample.generate import (
    DEFAULT_SNAPSHOT,
    MANIFEST_NAME,
    PATH_FIELDS,
    SampleManifest,
)

RECORDS = 1_500
SEED = 11


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }


def _relative(manifest: SampleManifest) -> dict[str, object]:
    """The manifest with its paths relative to its root: what must not depend on where."""
    data = manifest.to_dict()
    root = Path(data.pop("root"))
    return {k: Path(v).relative_to(root) if k in PATH_FIELDS else v for k, v in data.items()}


def test_a_cached_sample_equals_a_freshly_generated_one_byte_for_byte(tmp_path: Path) -> None:
    fresh = generate_sample(tmp_path / "fresh", records=RECORDS, seed=SEED)
    store = tmp_path / "store"
    said: list[str] = []
    stored = cache.cached_sample(
        tmp_path / "first", RECORDS, SEED, progress=said.append, root=store
    )
    assert any(m.startswith(f"writing {RECORDS:,} GBIF records") for m in said)  # a miss
    assert [p.name for p in store.iterdir()] == [
        cache.sample_key(RECORDS, SEED, DEFAULT_SNAPSHOT, cache.CHUNK_RECORDS)
    ]  # stored under its key, no partial copy left beside it

    # A part file of another sample in the way is removed, as generate_sample removes it.
    stray = tmp_path / "warm" / fresh.snapshot_dir.relative_to(fresh.root) / "000099"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not a part of this sample")
    said.clear()
    cached_sample = cache.cached_sample(
        tmp_path / "warm", RECORDS, SEED, progress=said.append, root=store
    )
    assert not any("GBIF records" in m for m in said)  # a hit: nothing drawn
    assert any("from the cache" in m for m in said)

    assert _files(cached_sample.root) == _files(fresh.root) == _files(stored.root)
    assert cached_sample.expected == fresh.expected
    assert _relative(cached_sample) == _relative(fresh)
    assert cached_sample.snapshot_dir.is_relative_to(tmp_path / "warm")
    # The manifest on disk names the copy's own files, and loads back as returned.
    assert SampleManifest.load(tmp_path / "warm") == cached_sample


def test_a_change_to_the_generators_source_or_arguments_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources, third_party = cache.generator_sources()
    names = {p.relative_to(PROJECT_ROOT).as_posix() for p in sources}
    # The generator's modules, the project modules they import, and the vendored layers.
    assert {
        "bisonflow/sample/generate.py",
        "bisonflow/sample/occurrences.py",
        "bisonflow/gbif/schema.py",
        "bisonflow/sample/data/us_county_2017_10m.shp",
    } <= names
    assert {"numpy:numpy", "pyarrow:pyarrow"} <= set(cache.library_versions(third_party))

    # A copy of one source stands for the generator, so the test can edit it.
    module = tmp_path / "occurrences.py"
    module.write_bytes((PROJECT_ROOT / "bisonflow/sample/occurrences.py").read_bytes())
    monkeypatch.setattr(cache, "generator_sources", lambda: ([module], third_party))
    store = tmp_path / "store"
    said: list[str] = []

    def drawn() -> bool:
        said.clear()
        cache.cached_sample(tmp_path / "out", RECORDS, SEED, progress=said.append, root=store)
        return any("GBIF records" in m for m in said)

    assert drawn() and not drawn()
    module.write_text(module.read_text() + "\n# a change\n")
    assert drawn() and not drawn()

    key = cache.sample_key(RECORDS, SEED, DEFAULT_SNAPSHOT, cache.CHUNK_RECORDS)
    assert key != cache.sample_key(RECORDS + 1, SEED, DEFAULT_SNAPSHOT, cache.CHUNK_RECORDS)
    assert key != cache.sample_key(RECORDS, SEED + 1, DEFAULT_SNAPSHOT, cache.CHUNK_RECORDS)
    assert key != cache.sample_key(RECORDS, SEED, dt.date(2026, 10, 1), cache.CHUNK_RECORDS)
    assert key != cache.sample_key(RECORDS, SEED, DEFAULT_SNAPSHOT, 1_000)


def test_an_entry_is_complete_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    key = cache.sample_key(RECORDS, SEED, DEFAULT_SNAPSHOT, cache.CHUNK_RECORDS)
    # Another run's copy, stopped half-way: never read, whatever it holds.
    (store / f"{key}.partial-1-deadbeef").mkdir(parents=True)
    (store / f"{key}.partial-1-deadbeef" / MANIFEST_NAME).write_text("{")

    real_copytree = cache.shutil.copytree

    def interrupted(src: Path, dst: Path, *args: object, **kwargs: object) -> Path:
        copied = real_copytree(src, dst, *args, **kwargs)
        if Path(dst).name.startswith(f"{key}.partial-"):
            raise OSError(28, "No space left on device")  # copied, then the disk filled
        return copied

    monkeypatch.setattr(cache.shutil, "copytree", interrupted)
    manifest = cache.cached_sample(tmp_path / "a", RECORDS, SEED, root=store)
    assert (manifest.snapshot_dir / "000000").is_file()  # the run goes on with its sample
    assert not (store / key).exists()  # and no entry was published
    assert sorted(p.name for p in store.iterdir()) == [f"{key}.partial-1-deadbeef"]


def test_the_store_keeps_the_most_recently_used_entries(tmp_path: Path) -> None:
    now = dt.datetime.now().timestamp()
    for age in range(cache.KEEP_ENTRIES + 2):
        entry = tmp_path / f"entry{age}"
        entry.mkdir()
        os.utime(entry, (now - age * 60, now - age * 60))
    for name, age in (("x.partial-1-old", 7200), ("x.partial-2-new", 60)):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (now - age, now - age))
    cache._prune(tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == [f"entry{age}" for age in range(cache.KEEP_ENTRIES)] + ["x.partial-2-new"]


def test_the_store_is_in_the_users_cache_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/var/cache/someone")
    assert cache.cache_root() == Path("/var/cache/someone/bisonflow/samples")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec ignores it
    assert cache.cache_root() == Path.home() / ".cache" / "bisonflow" / "samples"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_root() == Path.home() / ".cache" / "bisonflow" / "samples"
