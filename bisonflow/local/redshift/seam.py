"""The moto attributes the Data API stand-in (`bisonflow.local.redshift.service`) patches or
relies on, and the check that they are still there: a moto upgrade that moves one must make
`install()` refuse loudly, not let the workflow run on moto's canned redshift-data answers."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

__all__ = ["PATCHED", "SEAM", "SeamTarget", "seam_problems"]


@dataclass(frozen=True)
class SeamTarget:
    """One moto attribute this module patches or relies on.

    `params` are the leading parameter names its signature must have (None: not callable or
    not checked); `patched` marks handlers `install()` replaces; `added` marks handlers moto
    does not have, which `install()` adds.
    """

    module: str
    qualname: str
    params: tuple[str, ...] | None = None
    patched: bool = False
    added: bool = False


_RESPONSES = "moto.redshiftdata.responses"
_RESPONSE_CLASS = "RedshiftDataAPIServiceResponse"

#: Request handlers on moto's RedshiftDataAPIServiceResponse that install() sets. moto finds
#: a handler by the snake-case action name among the class's plain functions.
PATCHED: tuple[str, ...] = (
    "execute_statement",
    "batch_execute_statement",
    "describe_statement",
    "get_statement_result",
    "cancel_statement",
    "list_statements",
)
_ADDED = frozenset({"batch_execute_statement", "list_statements"})

SEAM: tuple[SeamTarget, ...] = (
    *(
        SeamTarget(
            _RESPONSES,
            f"{_RESPONSE_CLASS}.{name}",
            ("self",),
            patched=True,
            added=name in _ADDED,
        )
        for name in PATCHED
    ),
    # What the handlers use on the response object.
    SeamTarget(_RESPONSES, f"{_RESPONSE_CLASS}.redshiftdata_backend"),
    SeamTarget("moto.core.responses", "BaseResponse._get_param", ("self", "param_name")),
    SeamTarget("moto.core.responses", "BaseResponse.setup_class", ("self", "request")),
    SeamTarget("moto.core.responses", "BaseResponse.call_action", ("self",)),
    SeamTarget("moto.core.utils", "method_names_from_class", ("clazz",)),
    SeamTarget("moto.redshiftdata.models", "redshiftdata_backends"),
    SeamTarget("moto.redshiftdata.exceptions", "ValidationException", ("message",)),
    SeamTarget("moto.redshiftdata.exceptions", "ResourceNotFoundException", ()),
    # moto's S3, used in-process.
    SeamTarget("moto.s3.models", "s3_backends"),
    SeamTarget("moto.s3.models", "FakeKey.value"),
    SeamTarget("moto.s3.models", "FakeKey.etag"),
    SeamTarget("moto.s3.models", "S3Backend.get_bucket", ("self", "bucket_name")),
    SeamTarget("moto.s3.models", "S3Backend.get_object", ("self", "bucket_name", "key_name")),
    SeamTarget(
        "moto.s3.models", "S3Backend.put_object", ("self", "bucket_name", "key_name", "value")
    ),
    SeamTarget("moto.s3.models", "S3Backend.delete_object", ("self", "bucket_name", "key_name")),
    SeamTarget("moto.s3.exceptions", "MissingBucket", ("bucket",)),
    SeamTarget("moto.utilities.utils", "get_partition", ("region",)),
    SeamTarget("moto.core", "DEFAULT_ACCOUNT_ID"),
)


def _resolve(target: SeamTarget) -> Any:
    obj: Any = importlib.import_module(target.module)
    for part in target.qualname.split("."):
        obj = inspect.getattr_static(obj, part)
    return obj


def seam_problems() -> list[str]:
    """What no longer matches SEAM in the installed moto (empty when all is well)."""
    problems: list[str] = []
    for target in SEAM:
        where = f"{target.module}.{target.qualname}"
        try:
            obj = _resolve(target)
        except (ImportError, AttributeError) as missing:
            if target.added:
                continue  # moto does not have it; install() adds it
            problems.append(f"{where} is missing ({missing})")
            continue
        if target.added and not getattr(obj, "_bisonflow_seam", False):
            problems.append(
                f"{where} now exists in moto; check it before letting install() replace it"
            )
            continue
        if target.params is None:
            continue
        func = obj.fget if isinstance(obj, property) else obj
        func = getattr(func, "__func__", func)
        try:
            names = tuple(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            problems.append(f"{where} has no inspectable signature")
            continue
        if names[: len(target.params)] != target.params:
            problems.append(f"{where} takes {names}, expected {target.params} first")
    return problems
