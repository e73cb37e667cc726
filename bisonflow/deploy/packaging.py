"""Build the Lambda artefacts: one small zip per function and one layer with the library.

A function zip holds only its handler module (Lambda's /var/task). The layer (Lambda's /opt)
holds under `python/` the part of `bisonflow` the handlers import, the schemas and templates
it reads at run time, and the third-party distributions those modules import beyond what
Lambda's Python runtime ships (boto3 and its dependencies). What goes in is derived from the
handlers' import statements, so a new import cannot be forgotten.

Every zip is reproducible (sorted entries, fixed timestamps and modes, no bytecode, no
installer records), so an unchanged tree gives an unchanged CodeSha256 and no new version.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TypeGuard

from packaging.requirements import Requirement

from bisonflow import PROJECT_ROOT

LAMBDA_RUNTIME = "python3.12"
LAMBDA_ARCHITECTURE = "arm64"
FUNCTIONS = (
    "check_gbif",
    "month_lock",
    "submit_statements",
    "poll_statement",
    "launch_task",
    "cleanup_task",
    "publish_month",
    "start_month",
)
#: The functions the state machine invokes (each has a `${...FunctionArn}` placeholder in the
#: ASL); start_month is the monthly schedule's target instead (bisonflow.steps.scheduled_start).
MACHINE_FUNCTIONS = tuple(f for f in FUNCTIONS if f != "start_month")

#: The project's own top-level packages (PROJECT_ROOT/<name>), packaged from the source tree.
FIRST_PARTY = ("bisonflow", "functions", "tasks")
#: Parts of the library that only the local runtime uses; a Lambda importing them is a bug.
LOCAL_ONLY = ("bisonflow/local/", "bisonflow/sample/")
#: What Lambda's Python runtime provides beyond the standard library, so never packaged.
RUNTIME_PROVIDED = ("boto3",)
#: Files the library reads at run time (schemas.py: the step schemas in definitions/).
RUNTIME_DATA_GLOBS = ("definitions/*.json",)
#: Where layers built for AWS by pip are kept, so repeated deploys do not download again.
CACHE_DIR = PROJECT_ROOT / ".bisonflow-cache" / "layers"
#: Lambda's limit on a function's code and layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 2**20
#: pip's platform tag for each Lambda architecture.
PIP_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}

_FIXED_TIME = (2020, 1, 1, 0, 0, 0)
#: Installer bookkeeping that differs between installs of the same wheel (paths, tools).
_INSTALLER_FILES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")


class PackagingError(RuntimeError):
    """A Lambda artefact cannot be built; the message says which input is at fault."""


# --- reproducible zips ------------------------------------------------------------------
def _reproducible_zip(entries: Mapping[str, Path]) -> bytes:
    """Zip `arcname -> file` sorted, with fixed timestamps and modes (0755 if executable)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname in sorted(entries):
            path = entries[arcname]
            info = zipfile.ZipInfo(arcname, _FIXED_TIME)
            info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _is_packaged(relative: PurePosixPath) -> bool:
    """False for bytecode, console scripts and installer records: they are not reproducible."""
    parts = relative.parts
    if not parts or parts[0] in ("..", "bin") or "__pycache__" in parts:
        return False
    if relative.suffix == ".pyc":
        return False
    return not (parts[0].endswith(".dist-info") and relative.name in _INSTALLER_FILES)


# --- what the handlers import ---------------------------------------------------------------
def _is_type_checking(node: ast.AST) -> TypeGuard[ast.If]:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """Every module an import statement in `path` may load at run time (`from a import b` may
    load a.b); imports under `if TYPE_CHECKING:` never run, so they do not count."""
    names: set[str] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise PackagingError(f"{path}: relative import; the library uses absolute ones")
            names.add(node.module or "")
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        if _is_type_checking(node):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))
    return names


def _module_file(module: str) -> Path | None:
    base = PROJECT_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(start: Iterable[Path]) -> tuple[list[Path], set[str]]:
    """The project files `start` imports transitively (`start` included), and the
    third-party top-level modules those files import: what a build derived from these files
    must carry, or a cache of their output must be keyed by (bisonflow.sample.cache)."""
    pending = list(start)
    seen: set[Path] = set()
    third_party: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path):
            top = module.split(".")[0]
            if top in FIRST_PARTY:
                parts = module.split(".")
                # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
                for depth in range(1, len(parts) + 1):
                    found = _module_file(".".join(parts[:depth]))
                    if found is not None:
                        pending.append(found)
            elif top and top not in sys.stdlib_module_names:
                third_party.add(top)
    return sorted(seen), third_party


def library_closure() -> tuple[list[Path], set[str]]:
    """The project files the handlers import transitively (their own modules excluded), and
    the third-party top-level modules those files import (boto3's family excluded later)."""
    files, third_party = import_closure(
        PROJECT_ROOT / "functions" / f"{function}.py" for function in FUNCTIONS
    )
    relative = [path.relative_to(PROJECT_ROOT).as_posix() for path in files]
    local = [name for name in relative if name.startswith(LOCAL_ONLY)]
    if local:
        raise PackagingError(f"Lambda code imports the local-only module {local[0]}")
    library = [
        p for p, name in zip(files, relative, strict=True) if not name.startswith("functions/")
    ]
    return library, third_party


# --- third-party distributions -------------------------------------------------------------
def _distribution_closure(names: Iterable[str]) -> dict[str, importlib.metadata.Distribution]:
    """Installed distributions `names` need, by normalised name, following their requirements
    whose markers hold for this interpreter (extras are never requested)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = _normalise(pending.pop())
        if name in found:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise PackagingError(f"distribution {name} is needed but not installed") from exc
        found[name] = dist
        for text in dist.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def module_distributions(modules: Iterable[str]) -> dict[str, list[str]]:
    """The installed distributions providing each of `modules` (top-level names); a module no
    installed distribution provides is left out.

    A distribution named as its module (boto3, jsonschema, numpy, ...) is taken at its word;
    only the others are looked up in importlib.metadata.packages_distributions(), which reads
    every installed distribution's file list (0.25 s here, on every deploy and run).
    """
    found: dict[str, list[str]] = {}
    others = []
    for module in sorted(set(modules)):
        try:
            found[module] = [importlib.metadata.distribution(module).metadata["Name"]]
        except importlib.metadata.PackageNotFoundError:
            others.append(module)
    if others:
        providers = importlib.metadata.packages_distributions()
        found |= {module: providers[module] for module in others if module in providers}
    return found


def layer_distributions() -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions the layer carries: what the handlers' code imports, with
    their dependencies, minus what Lambda's runtime provides."""
    _, modules = library_closure()
    providers = module_distributions(modules)
    missing = sorted(m for m in modules if m not in providers)
    if missing:
        raise PackagingError(f"Lambda code imports {', '.join(missing)}, which is not installed")
    wanted = {dist for module in modules for dist in providers[module]}
    provided = _distribution_closure(RUNTIME_PROVIDED)
    return {n: d for n, d in _distribution_closure(wanted).items() if n not in provided}


def runtime_provided_entries() -> list[Path]:
    """Top-level packages, modules and metadata of the distributions Lambda's Python runtime
    provides (boto3 and its dependencies), as installed here; the local worker offers only
    these beside the standard library, as Lambda does."""
    entries: set[Path] = set()
    for dist in _distribution_closure(RUNTIME_PROVIDED).values():
        for file in dist.files or ():
            relative = PurePosixPath(file.as_posix())
            if _is_packaged(relative):
                entries.add(Path(str(dist.locate_file(relative.parts[0]))))
    return sorted(entries)


def _installed_entries(dists: Iterable[importlib.metadata.Distribution]) -> dict[str, Path]:
    entries: dict[str, Path] = {}
    for dist in dists:
        for file in dist.files or ():
            relative = PurePosixPath(file.as_posix())
            path = Path(str(dist.locate_file(file)))
            if _is_packaged(relative) and path.is_file():
                entries[f"python/{relative}"] = path
    return entries


def _pip_entries(python_version: str, architecture: str) -> dict[str, Path]:
    """The layer's distributions for AWS Lambda, pinned to the versions tested here, installed
    by pip for the target platform once and cached under CACHE_DIR."""
    pins = sorted(f"{d.metadata['Name']}=={d.version}" for d in layer_distributions().values())
    key = hashlib.sha256(json.dumps([python_version, architecture, pins]).encode()).hexdigest()
    target = CACHE_DIR / f"python{python_version}-{architecture}-{key[:16]}"
    if not target.is_dir():
        # Per process: two builds at once (parallel test runs) must not share a directory.
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--target", str(partial),
            "--platform", PIP_PLATFORMS[architecture], "--only-binary=:all:",
            "--python-version", python_version, "--implementation", "cp", *pins,
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise PackagingError(
                f"pip could not install {' '.join(pins)} for Python {python_version} on "
                f"{architecture}: {result.stderr.strip()[-2000:]}"
            )
        try:
            partial.rename(target)  # complete or absent: a broken download is never reused
        except OSError:  # another build finished first with the same pins
            shutil.rmtree(partial, ignore_errors=True)
    return {
        f"python/{relative}": path
        for path in target.rglob("*")
        if path.is_file() and _is_packaged(relative := PurePosixPath(path.relative_to(target)))
    }


# --- the artefacts ------------------------------------------------------------------------
def function_zip(function: str) -> bytes:
    """The deployment package of one Lambda: its handler module and the `functions` package."""
    if function not in FUNCTIONS:
        raise PackagingError(f"unknown function {function!r}; expected one of {FUNCTIONS}")
    package = PROJECT_ROOT / "functions"
    return _reproducible_zip(
        {
            "functions/__init__.py": package / "__init__.py",
            f"functions/{function}.py": package / f"{function}.py",
        }
    )


def layer_zip(python_version: str | None = None, architecture: str | None = None) -> bytes:
    """The layer every function uses: library, its run-time files and third-party packages.

    None/None builds it for the interpreter running this, from the installed distributions
    (the local runtime; no network). A Python version ("3.12") or an architecture ("arm64",
    "x86_64") builds it for AWS Lambda with pip's binary wheels for that platform; the other
    defaults to LAMBDA_RUNTIME's version or LAMBDA_ARCHITECTURE.
    """
    library, _ = library_closure()
    entries = {f"python/{p.relative_to(PROJECT_ROOT).as_posix()}": p for p in library}
    for pattern in RUNTIME_DATA_GLOBS:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            entries[f"python/{path.relative_to(PROJECT_ROOT).as_posix()}"] = path
    if python_version is None and architecture is None:
        entries |= _installed_entries(layer_distributions().values())
    else:
        python_version = python_version or LAMBDA_RUNTIME.removeprefix("python")
        architecture = architecture or LAMBDA_ARCHITECTURE
        if not re.fullmatch(r"3\.\d{1,2}", python_version):
            raise PackagingError(f"python_version {python_version!r} is not like '3.12'")
        if architecture not in PIP_PLATFORMS:
            raise PackagingError(
                f"architecture {architecture!r} is not one of {', '.join(PIP_PLATFORMS)}"
            )
        entries |= _pip_entries(python_version, architecture)
    _check_size(entries)
    return _reproducible_zip(entries)


def _check_size(entries: Mapping[str, Path]) -> None:
    """Refuse a layer Lambda would refuse, naming what makes it big (say, a new import of
    pyarrow in a module the handlers use)."""
    sizes: Counter[str] = Counter()
    for arcname, path in entries.items():
        sizes[arcname.split("/")[1]] += path.stat().st_size
    total = sum(sizes.values())
    if total > LAMBDA_UNZIPPED_LIMIT:
        largest = ", ".join(f"{name} {size / 2**20:.1f} MB" for name, size in sizes.most_common(3))
        raise PackagingError(
            f"the layer unzips to {total / 2**20:.1f} MB, over Lambda's "
            f"{LAMBDA_UNZIPPED_LIMIT / 2**20:.0f} MB for code and layers; largest: {largest}"
        )


def handler_of(function: str) -> str:
    return f"functions.{function}.handler"
