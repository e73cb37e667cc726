"""Every emulator seam through the one mechanism (bisonflow.local.seams): its targets exist in
the pinned moto, a moved target is refused by name, the runtime installs it, install patches
its targets and uninstall puts back exactly what was there."""

from __future__ import annotations

import dataclasses
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from bisonflow.local import seams
from bisonflow.local.emulator import EVERY_SEAM
from bisonflow.local.redshift import seam as data_api_seam
from bisonflow.local.redshift import service as redshift_service
from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.seams import Patch, Seam, SeamConflict, SeamMoved, Target

ABSENT = object()
IDS = [seam.name.removeprefix("bisonflow.local.") for seam in EVERY_SEAM]
every_seam = pytest.mark.parametrize("seam", EVERY_SEAM, ids=IDS)


def _own(patch: Target) -> Any:
    """What the patch's owner holds in its own namespace (ABSENT: nothing, or inherited)."""
    return vars(patch.owner()).get(patch.name, ABSENT)


@every_seam
def test_seam_targets_exist_in_moto(seam: Seam) -> None:
    """Fails when a moto upgrade moves, renames or re-signs anything a seam patches or reads."""
    assert seam.patches
    assert seam.problems() == []


@every_seam
def test_a_moved_target_is_refused_by_name(seam: Seam) -> None:
    moved = [
        dataclasses.replace(patch, qualname=patch.qualname + "_moved")
        for patch in seam.patches
        if not patch.added
    ]
    # A seam that only adds what moto lacks relies on what it reads (its `uses`).
    uses = tuple(dataclasses.replace(t, qualname=t.qualname + "_moved") for t in seam.uses)
    renamed = Seam(seam.name, *moved, uses=uses)
    with pytest.raises(SeamMoved) as refused:
        # install() checks before it replaces; with nothing left to replace, check() alone
        renamed.install() if moved else renamed.check()
    for target in (*moved, *uses):
        assert f"{target.where} is missing" in str(refused.value)
    assert seam.name in str(refused.value)
    assert list(renamed.slots()) == []
    assert not moved or not renamed.installed()


@every_seam
def test_the_runtime_installs_the_seam(runtime: LocalRuntime, seam: Seam) -> None:
    """The emulator installs every seam on its target, and no module of moto that imported a
    patched function by name still calls moto's own."""
    assert runtime.emulator is not None
    assert seam.installed()
    for patch in seam.patches:
        assert vars(patch.owner())[patch.name] is patch.replacement
        if patch.copies_under:
            original = seam.original(patch)
            assert seams.modules_holding(patch.copies_under, patch.name, original) == []


@pytest.fixture
def as_found(request: pytest.FixtureRequest) -> Iterator[Seam]:
    """The seam uninstalled for the test, and installed again after it if it was (the
    session's runtime may share this process)."""
    seam: Seam = request.param
    was = seam.installed()
    seam.uninstall()
    try:
        yield seam
    finally:
        seam.uninstall()
        if was:
            seam.install()


@pytest.mark.parametrize("as_found", EVERY_SEAM, ids=IDS, indirect=True)
def test_install_patches_and_uninstall_restores_exactly(as_found: Seam) -> None:
    seam = as_found
    moto = {patch: _own(patch) for patch in seam.patches}
    for patch, value in moto.items():
        assert value is not patch.replacement
        present = getattr(patch.owner(), patch.name, ABSENT) is not ABSENT
        assert present != patch.added, patch.where
    seam.install()
    seam.install()  # idempotent
    assert seam.installed()
    replaced = list(seam.slots())
    assert {id(p) for _, _, p in replaced} == {id(p) for p in seam.patches}
    copies = {}
    for owner, name, patch in replaced:
        assert vars(owner)[name] is patch.replacement
        if owner is not patch.owner():
            copies[(owner, name)] = seam.original(patch)
    seam.uninstall()
    seam.uninstall()  # idempotent
    assert not seam.installed() and list(seam.slots()) == []
    for patch, value in moto.items():
        assert _own(patch) is value, patch.where
    for (owner, name), original in copies.items():
        assert vars(owner)[name] is original


# --- the mechanism on a toy module --------------------------------------------------------


class _Base:
    def inherited(self, x: int) -> str:
        return "base"


class _Toy(_Base):
    def method(self, a: int) -> str:
        return "moto"

    @staticmethod
    def static(d: int) -> str:
        return "moto"


def _replacement(self: Any, a: int) -> str:
    return "seam"


@pytest.fixture
def toy() -> Iterator[types.ModuleType]:
    module = types.ModuleType("seams_toy")
    module.Toy = _Toy  # type: ignore[attr-defined]
    module.helper = _Toy.method  # type: ignore[attr-defined]
    copy = types.ModuleType("seams_toy.user")
    copy.helper = _Toy.method  # type: ignore[attr-defined]  # imported by name
    sys.modules.update({"seams_toy": module, "seams_toy.user": copy})
    yield module
    for name in ("seams_toy", "seams_toy.user"):
        del sys.modules[name]


def test_uninstall_restores_the_owners_own_entries(toy: types.ModuleType) -> None:
    before = dict(vars(_Toy))
    static = staticmethod(lambda d: "seam")
    seam = Seam(
        "toy",
        Patch("seams_toy", "Toy.method", ("self", "a"), replacement=_replacement),
        Patch("seams_toy", "Toy.static", ("d",), replacement=static),
        Patch("seams_toy", "Toy.inherited", ("self", "x"), replacement=_replacement),
        Patch("seams_toy", "Toy.added", replacement=_replacement, added=True),
        Patch("seams_toy", "helper", replacement=_replacement, copies_under="seams_toy"),
    )
    seam.install()
    toy_instance = _Toy()
    assert toy_instance.method(1) == toy_instance.inherited(1) == "seam"
    assert _Toy.static(1) == "seam" and toy_instance.added(1) == "seam"  # type: ignore[attr-defined]
    assert sys.modules["seams_toy.user"].helper is _replacement
    assert seam.problems() == []  # checked against what moto had, not the replacements
    with pytest.raises(SeamConflict, match="seams_toy.Toy.method is already replaced by toy"):
        Seam("other", Patch("seams_toy", "Toy.method", replacement=_replacement)).install()
    seam.uninstall()
    assert dict(vars(_Toy)) == before  # the staticmethod object itself; nothing inherited kept
    assert "inherited" not in vars(_Toy) and not hasattr(_Toy, "added")
    assert toy.helper is sys.modules["seams_toy.user"].helper is _Toy.method


def test_a_signature_or_an_added_name_moto_grew_is_refused(toy: types.ModuleType) -> None:
    seam = Seam(
        "toy",
        Patch("seams_toy", "Toy.method", ("self", "b"), replacement=_replacement),
        Patch("seams_toy", "Toy.inherited", replacement=_replacement, added=True),
        uses=(Target("seams_toy", "Toy.gone"), Target("seams_absent", "anything")),
    )
    with pytest.raises(SeamMoved) as refused:
        seam.install()
    message = str(refused.value)
    assert "seams_toy.Toy.method takes ('self', 'a'), expected ('self', 'b') first" in message
    assert "seams_toy.Toy.inherited now exists in moto" in message
    assert "seams_toy.Toy.gone is missing" in message
    assert "seams_absent.anything is missing" in message
    assert vars(_Toy)["method"] is not _replacement  # nothing was replaced


# --- the Data API stand-in's handlers (moved from tests/test_redshift_duckdb.py) ------------


def test_data_api_handlers_are_found_where_moto_dispatches() -> None:
    """The handlers moto dispatches to must be plain functions of the response class, found by
    the snake-case action name."""
    import importlib

    responses = importlib.import_module("moto.redshiftdata.responses")
    moto_utils = importlib.import_module("moto.core.utils")
    cls = responses.RedshiftDataAPIServiceResponse
    for name in data_api_seam.PATCHED:
        if name not in data_api_seam.ADDED:
            assert name in moto_utils.method_names_from_class(cls), name
    assert moto_utils.camelcase_to_underscores("BatchExecuteStatement") == (
        "batch_execute_statement"
    )
    assert [p.name for p in redshift_service.SEAM.patches] == list(data_api_seam.PATCHED)
    with pytest.raises(ValueError, match="are not"):
        data_api_seam.data_api_seam({"execute_statement": print})
