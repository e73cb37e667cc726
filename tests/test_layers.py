"""The library's packages form a layered order, and no import runs back up it.

Bottom first, each layer may import only itself and the layers below it:

 1. base       the modules at the top of bisonflow/: aws, config, layout, dimensions,
               schemas, duckdb_ext (names, settings and clients every layer shares)
 2. gbif       GBIF's species API, the name cache, the occurrence schema
 3. riis       the US-RIIS master list, its columns and the guard on a new list
 4. sql        the workflow's Redshift SQL (subset rules, assessments, boundaries)
 5. stats      the month's statistics (PAM, new this month, provenance)
 6. graphics   figures and maps of those statistics
 7. steps      the step library the Lambdas and tasks call (CheckGbif, task specs,
               statements, publish, the month record)
 8. deploy     the real deploy: artifacts, the template, change sets, IAM, schedule
 9. deploy.emulated  what a target's CloudFormation lacks, created through the service APIs
10. deploy entry     bisonflow.deploy itself (deploy, destroy), which uses both
11. history    executions, their views, cost and the report
12. console    the workflow in a browser, on any endpoint (what only a local runtime can do
               is handed to it by the CLI)
13. sample     the generated sample month
14. local base what every part of the local runtime shares: the package's names,
               role credentials, child processes, the seam mechanism
15. local.iam, 16. local.redshift, 17. local.sfn, 18. local.ec2, 19. local.lambdas
               the emulated services
20. local      the runtime that puts them together (emulator, runtime, deploy, scheduler,
               the GBIF stand-in, fault injection)
21. cli        the commands

The library never imports its callers (functions/, tasks/). Every import counts: a module's
top, an import inside a function (a lazy import hides a cycle, it does not remove it) and
one under `if TYPE_CHECKING:`. A module belongs to the longest prefix below that names it;
a new package must be placed in LAYERS, or test_every_package_has_a_declared_layer fails.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from bisonflow import PROJECT_ROOT

#: The layer order above as data, bottom first: (layer, module-name prefixes). A prefix names
#: a package and everything under it, or one module; "<package>.__init__" names only the
#: package's own module.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("bisonflow",)),
    ("gbif", ("bisonflow.gbif",)),
    ("riis", ("bisonflow.riis",)),
    ("sql", ("bisonflow.sql",)),
    ("stats", ("bisonflow.stats",)),
    ("graphics", ("bisonflow.graphics",)),
    ("steps", ("bisonflow.steps",)),
    ("deploy", ("bisonflow.deploy",)),
    ("deploy.emulated", ("bisonflow.deploy.emulated",)),
    ("deploy entry", ("bisonflow.deploy.__init__",)),
    ("history", ("bisonflow.history",)),
    ("console", ("bisonflow.console",)),
    ("sample", ("bisonflow.sample",)),
    (
        "local base",
        (
            "bisonflow.local.__init__",
            "bisonflow.local.credentials",
            "bisonflow.local.child_processes",
            "bisonflow.local.seams",
        ),
    ),
    ("local.iam", ("bisonflow.local.iam",)),
    ("local.redshift", ("bisonflow.local.redshift",)),
    ("local.sfn", ("bisonflow.local.sfn",)),
    ("local.ec2", ("bisonflow.local.ec2",)),
    ("local.lambdas", ("bisonflow.local.lambdas",)),
    ("local", ("bisonflow.local",)),
    ("cli", ("bisonflow.cli",)),
)
#: The project's callers: the library never imports them.
CALLERS = ("functions", "tasks")
LIBRARY = PROJECT_ROOT / "bisonflow"


@dataclass(frozen=True)
class Violation:
    path: str  # the importing file, relative to the project root
    line: int
    module: str  # the importing module
    target: str  # the imported module

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module} imports {self.target}: {why(self)}"


def module_name(path: Path, root: Path = PROJECT_ROOT) -> str:
    """bisonflow/local/__init__.py -> bisonflow.local.__init__, bisonflow/aws.py -> .aws."""
    return ".".join(path.relative_to(root).with_suffix("").parts)


def layer_of(module: str) -> int:
    """The index in LAYERS of the longest prefix naming `module`."""
    best, found = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    if found < 0:
        raise ValueError(f"{module} is in no layer")
    return found


def why(violation: Violation) -> str:
    if violation.target.split(".")[0] in CALLERS:
        return "the library never imports its callers (functions/, tasks/)"
    own, other = layer_of(violation.module), layer_of(violation.target)
    return (
        f"layer {LAYERS[own][0]!r} ({own + 1}) may not import layer {LAYERS[other][0]!r} "
        f"({other + 1}), which is above it; move what both need down to the lower layer"
    )


def resolve(dotted: str, root: Path) -> str | None:
    """The module key of a dotted name: a module file, or a package's __init__; None when
    the name is no module of the project (a name imported from a module)."""
    parts = dotted.split(".")
    if root.joinpath(*parts).with_suffix(".py").is_file():
        return dotted
    if (root.joinpath(*parts) / "__init__.py").is_file():
        return f"{dotted}.__init__"
    return None


def imports(source: str, module: str, root: Path) -> list[tuple[int, str]]:
    """(line, imported module key) of every import of a project module in `source`, at any
    depth: top level, inside functions, under `if TYPE_CHECKING:`."""
    package = module.split(".")[:-1]  # a module's package; an __init__'s is its own
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            # `from X import sub` imports the submodule; `from X import name`, X itself
            names = [n for n in submodules if resolve(n, root)]
            if len(names) < len(submodules):
                names.append(base)
        else:
            continue
        for name in names:
            key = name if name.split(".")[0] in CALLERS else resolve(name, root)
            if key is not None:
                found.append((node.lineno, key))
    return sorted(found)


def violations(root: Path = PROJECT_ROOT) -> list[Violation]:
    """Every import in the library that runs back up the layers or reaches a caller."""
    out: list[Violation] = []
    for path in sorted((root / "bisonflow").rglob("*.py")):
        module = module_name(path, root)
        own = layer_of(module)
        for line, target in imports(path.read_text(encoding="utf-8"), module, root):
            caller = target.split(".")[0] in CALLERS
            if caller or layer_of(target) > own:
                out.append(Violation(path.relative_to(root).as_posix(), line, module, target))
    return out


def test_no_import_runs_back_up_the_layers() -> None:
    found = violations()
    assert not found, "imports running back up the layers:\n" + "\n".join(map(str, found))


def test_every_package_has_a_declared_layer() -> None:
    """A new package is placed in LAYERS by hand, not swept into the base layer."""
    declared = {p.removesuffix(".__init__") for _, prefixes in LAYERS for p in prefixes}
    packages = {
        module_name(init.parent, PROJECT_ROOT)
        for init in LIBRARY.rglob("__init__.py")
        if init.parent != LIBRARY
    }
    undeclared = sorted(
        package
        for package in packages
        if not any(package == d or package.startswith(d + ".") for d in declared - {"bisonflow"})
    )
    assert not undeclared, f"packages in no layer of tests/test_layers.py LAYERS: {undeclared}"


def test_every_declared_prefix_names_a_module() -> None:
    """LAYERS does not rot: each prefix is a package or module of the library."""
    missing = [
        prefix
        for _, prefixes in LAYERS
        for prefix in prefixes
        if resolve(prefix.removesuffix(".__init__"), PROJECT_ROOT) is None
    ]
    assert not missing, f"LAYERS names what is not in bisonflow/: {missing}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_an_import_back_up_is_reported_naming_the_file_and_line(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "bisonflow/__init__.py": "",
            "bisonflow/layout.py": "import os\n",
            "bisonflow/sample/__init__.py": "",
            "bisonflow/sample/riis.py": "from bisonflow.local.gbif_standin import NO_MATCH\n",
            "bisonflow/local/__init__.py": "",
            "bisonflow/local/gbif_standin.py": "from bisonflow.layout import os\n",
        },
    )
    (found,) = violations(root)
    assert found == Violation(
        "bisonflow/sample/riis.py", 1, "bisonflow.sample.riis", "bisonflow.local.gbif_standin"
    )
    sample, local = (1 + [name for name, _ in LAYERS].index(n) for n in ("sample", "local"))
    assert str(found).startswith(
        "bisonflow/sample/riis.py:1: bisonflow.sample.riis imports bisonflow.local.gbif_standin: "
        f"layer 'sample' ({sample}) may not import layer 'local' ({local})"
    )


def test_lazy_type_checking_and_relative_imports_count(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "bisonflow/__init__.py": "",
            "bisonflow/config.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from bisonflow.sql import subset_rules\n"
                "def rules():\n"
                "    from bisonflow.sql.subset_rules import SubsetRules\n"
                "    return SubsetRules\n"
            ),
            "bisonflow/sql/__init__.py": "",
            "bisonflow/sql/subset_rules.py": "from ..config import rules\nimport tasks.runner\n",
            "bisonflow/stats/__init__.py": "from . import pam\n",
            "bisonflow/stats/pam.py": "from .. import layout\n",
        },
    )
    found = [(v.path, v.line, v.target) for v in violations(root)]
    assert found == [
        ("bisonflow/config.py", 3, "bisonflow.sql.subset_rules"),
        ("bisonflow/config.py", 5, "bisonflow.sql.subset_rules"),
        ("bisonflow/sql/subset_rules.py", 2, "tasks.runner"),
    ]


def test_the_local_runtime_may_use_its_services_but_they_not_it() -> None:
    """The split of bisonflow/local/ by module: its shared base below the services, the
    runtime that composes them above."""
    assert layer_of("bisonflow.local.__init__") < layer_of("bisonflow.local.iam.seam")
    assert layer_of("bisonflow.local.credentials") < layer_of("bisonflow.local.lambdas.worker")
    assert layer_of("bisonflow.local.redshift.engine") < layer_of("bisonflow.local.faults")
    assert layer_of("bisonflow.local.sfn.names") < layer_of("bisonflow.local.emulator")
    assert layer_of("bisonflow.aws") == 0 and layer_of("bisonflow.cli.main") == len(LAYERS) - 1


def test_the_real_deploy_reads_on_its_own() -> None:
    """deploy/emulated (moto's gaps, made by API) sits above the real deploy's modules and
    below the package's own deploy(), which chooses it for a target that lacks a type."""
    real, emulated = (
        layer_of("bisonflow.deploy.stack"),
        layer_of("bisonflow.deploy.emulated.resources"),
    )
    assert real < emulated < layer_of("bisonflow.deploy.__init__")


def test_the_docstring_names_the_layers_of_the_data_in_order() -> None:
    """The order is written twice, for readers and for the test; they cannot drift apart."""
    listed = re.findall(r"(\d+)\. (local base|deploy entry|[^\s,]+)", __doc__ or "")
    assert [int(n) for n, _ in listed] == list(range(1, len(LAYERS) + 1))
    assert [name for _, name in listed] == [name for name, _ in LAYERS]
