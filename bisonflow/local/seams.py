"""One mechanism for every emulator seam: a declared patch of moto, checked, installed and
uninstalled the same way.

A seam replaces an attribute of moto (or of botocore) so that the local runtime does what AWS
does where moto 5.2.5 does not, or, where its module says "speed only", does the same sooner.
Each seam module declares one `Seam`: the `Patch`es it installs (the module, the attribute's
path in it, the replacement) and the `Target`s it only reads. Nothing is replaced before every
target has been found and, where the seam names them, its leading parameters compared: a moto
upgrade that moved, renamed or re-signed one makes `install()` raise `SeamMoved` naming each,
instead of leaving the runtime on moto's own behaviour (which the seam exists to correct) or
failing deep inside a workflow at the first call. tests/test_seams.py runs the same check,
install and uninstall over every seam the emulator installs.

`install()` and `uninstall()` are idempotent, and `uninstall()` puts back exactly what the
owner held: the same object in its own namespace (a staticmethod stays that staticmethod), and
an attribute the owner only inherited, or did not have, is removed again. One attribute is
replaced by one patch at a time; a second seam on it is refused (`SeamConflict`), so seams
never stack in an order that matters: where two concerns meet at one attribute, one
replacement composes them (bisonflow.local.sfn.start).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Patch", "Seam", "SeamConflict", "SeamMoved", "Target", "modules_holding"]

#: What the owner held when it held nothing under the name.
_ABSENT: Any = object()


class SeamMoved(RuntimeError):
    """moto no longer has what a seam patches or reads where the seam says."""


class SeamConflict(RuntimeError):
    """Another seam already replaces the attribute."""


@dataclass(frozen=True)
class Target:
    """An attribute of moto a seam reads: `qualname` inside `module` ("Class.method" or a
    module-level name); `params`, if given, are the leading parameter names it must take."""

    module: str
    qualname: str
    params: tuple[str, ...] | None = None

    @property
    def where(self) -> str:
        return f"{self.module}.{self.qualname}"

    @property
    def name(self) -> str:
        return self.qualname.rpartition(".")[2]

    def owner(self) -> Any:
        """The module or class holding the attribute (ImportError/AttributeError if moved)."""
        owner: Any = importlib.import_module(self.module)
        for part in self.qualname.split(".")[:-1]:
            owner = inspect.getattr_static(owner, part)
        return owner


@dataclass(frozen=True, eq=False)
class Patch(Target):
    """A Target the seam replaces with `replacement`.

    `added`: moto has no such attribute; install adds it, uninstall removes it, and a moto that
    grew one of its own is refused. `copies_under`: modules under this package that imported
    moto's value by name (`from x import f`) are patched too, since they call their own copy.
    """

    replacement: Any = field(kw_only=True)
    added: bool = field(default=False, kw_only=True)
    copies_under: str | None = field(default=None, kw_only=True)

    # A patch is itself, whatever it replaces: two seams may name the same target.
    __eq__ = object.__eq__
    __hash__ = object.__hash__


@dataclass
class _Slot:
    """One name in one namespace that a patch replaced, with what was there before."""

    owner: Any
    name: str
    own: Any  # the owner's own namespace entry, _ABSENT if it had none (inherited or missing)
    patch: Patch
    seam: str

    def restore(self) -> None:
        if self.own is _ABSENT:
            if self.name in vars(self.owner):
                delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self.own)


#: Every installed replacement, by (id of its owner, name); guarded by _LOCK.
_SLOTS: dict[tuple[int, str], _Slot] = {}
#: The value moto had at each installed patch's target before it (for the check).
_ORIGINALS: dict[Patch, Any] = {}
_LOCK = threading.RLock()


def _parameters(value: Any) -> tuple[str, ...] | None:
    func: Any = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
    try:
        return tuple(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return None


def modules_holding(package: str, name: str, value: Any) -> list[Any]:
    """The loaded modules under `package` that hold `value` under `name` (imported it by name)."""
    return [
        module
        for module_name, module in list(sys.modules.items())
        if (module_name == package or module_name.startswith(package + "."))
        and vars(module).get(name, _ABSENT) is value
    ]


class Seam:
    """The patches one seam module installs and the moto attributes it relies on."""

    def __init__(self, name: str, *patches: Patch, uses: tuple[Target, ...] = ()) -> None:
        self.name = name
        self.patches = patches
        self.uses = uses

    def __repr__(self) -> str:
        return f"Seam({self.name!r})"

    def problems(self) -> list[str]:
        """What no longer matches this seam in the installed moto (empty when all is well)."""
        found: list[str] = []
        for target in (*self.patches, *self.uses):
            try:
                owner = target.owner()
            except (ImportError, AttributeError) as missing:
                found.append(f"{target.where} is missing ({missing})")
                continue
            with _LOCK:
                value = (
                    _ORIGINALS[target]
                    if isinstance(target, Patch) and target in _ORIGINALS
                    else inspect.getattr_static(owner, target.name, _ABSENT)
                )
            if isinstance(target, Patch) and target.added:
                if value is not _ABSENT:
                    found.append(
                        f"{target.where} now exists in moto; check it before letting the "
                        "seam replace it"
                    )
                continue
            if value is _ABSENT:
                found.append(f"{target.where} is missing")
                continue
            if target.params is None:
                continue
            names = _parameters(value)
            if names is None:
                found.append(f"{target.where} has no inspectable signature")
            elif names[: len(target.params)] != target.params:
                found.append(f"{target.where} takes {names}, expected {target.params} first")
        return found

    def check(self) -> None:
        """Raise SeamMoved naming every target moto moved, renamed or re-signed."""
        problems = self.problems()
        if problems:
            raise SeamMoved(
                f"moto's seam has moved; {self.name} needs updating: " + "; ".join(problems)
            )

    def _holds(self, patch: Patch) -> bool:
        return patch in _ORIGINALS

    def original(self, patch: Patch) -> Any:
        """What moto had at `patch`'s target before this seam replaced it (installed only)."""
        with _LOCK:
            return _ORIGINALS[patch]

    def installed(self) -> bool:
        with _LOCK:
            return all(self._holds(patch) for patch in self.patches)

    def slots(self) -> Iterator[tuple[Any, str, Patch]]:
        """(owner, name, patch) of every namespace entry this seam replaces now."""
        with _LOCK:
            held = [s for s in _SLOTS.values() if any(s.patch is p for p in self.patches)]
        for slot in held:
            yield slot.owner, slot.name, slot.patch

    def install(self) -> None:
        """Check every target, then replace what is not replaced yet (idempotent)."""
        with _LOCK:
            pending = [patch for patch in self.patches if not self._holds(patch)]
            if not pending:
                return
            self.check()
            planned: list[tuple[Patch, Any, list[Any]]] = []
            for patch in pending:
                owner = patch.owner()
                value = inspect.getattr_static(owner, patch.name, _ABSENT)
                sites = [owner]
                if patch.copies_under and value is not _ABSENT:
                    sites += [
                        module
                        for module in modules_holding(patch.copies_under, patch.name, value)
                        if module is not owner
                    ]
                for site in sites:
                    slot = _SLOTS.get((id(site), patch.name))
                    if slot is not None:
                        raise SeamConflict(
                            f"{patch.where} is already replaced by {slot.seam}; compose the "
                            "two in one replacement"
                        )
                planned.append((patch, value, sites))
            for patch, value, sites in planned:
                _ORIGINALS[patch] = value
                for site in sites:
                    own = vars(site).get(patch.name, _ABSENT)
                    _SLOTS[(id(site), patch.name)] = _Slot(site, patch.name, own, patch, self.name)
                    setattr(site, patch.name, patch.replacement)

    def uninstall(self) -> None:
        """Put back exactly what every replaced entry held (idempotent)."""
        with _LOCK:
            for key, slot in reversed(list(_SLOTS.items())):
                if any(slot.patch is p for p in self.patches):
                    slot.restore()
                    del _SLOTS[key]
            for patch in self.patches:
                _ORIGINALS.pop(patch, None)
