"""The moto attributes the Data API stand-in (`bisonflow.local.redshift.service`) patches or
relies on, declared with the one seam mechanism (bisonflow.local.seams): a moto upgrade that
moves one makes `install()` refuse loudly, naming it, instead of letting the workflow run on
moto's canned redshift-data answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bisonflow.local.seams import Patch, Seam, Target

__all__ = ["PATCHED", "USES", "data_api_seam"]

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
#: Handlers moto 5.2.5 does not have, which install() adds.
ADDED = frozenset({"batch_execute_statement", "list_statements"})

#: What the handlers use of moto without replacing it.
USES: tuple[Target, ...] = (
    # What the handlers use on the response object.
    Target(_RESPONSES, f"{_RESPONSE_CLASS}.redshiftdata_backend"),
    Target("moto.core.responses", "BaseResponse._get_param", ("self", "param_name")),
    Target("moto.core.responses", "BaseResponse.setup_class", ("self", "request")),
    Target("moto.core.responses", "BaseResponse.call_action", ("self",)),
    Target("moto.core.utils", "method_names_from_class", ("clazz",)),
    Target("moto.redshiftdata.models", "redshiftdata_backends"),
    Target("moto.redshiftdata.exceptions", "ValidationException", ("message",)),
    Target("moto.redshiftdata.exceptions", "ResourceNotFoundException", ()),
    # moto's S3, used in-process.
    Target("moto.s3.models", "s3_backends"),
    Target("moto.s3.models", "FakeKey.value"),
    Target("moto.s3.models", "FakeKey.etag"),
    Target("moto.s3.models", "S3Backend.get_bucket", ("self", "bucket_name")),
    Target("moto.s3.models", "S3Backend.get_object", ("self", "bucket_name", "key_name")),
    Target("moto.s3.models", "S3Backend.put_object", ("self", "bucket_name", "key_name", "value")),
    Target("moto.s3.models", "S3Backend.delete_object", ("self", "bucket_name", "key_name")),
    Target("moto.s3.exceptions", "MissingBucket", ("bucket",)),
    Target("moto.utilities.utils", "get_partition", ("region",)),
    Target("moto.core", "DEFAULT_ACCOUNT_ID"),
)


def data_api_seam(handlers: Mapping[str, Callable[..., Any]]) -> Seam:
    """The stand-in's seam: `handlers` (one per name of PATCHED, in that order) replace or
    join moto's redshift-data handlers; the HTTP module that defines them declares it."""
    if tuple(handlers) != PATCHED:
        raise ValueError(f"handlers {tuple(handlers)} are not {PATCHED}")
    return Seam(
        "bisonflow.local.redshift",
        *(
            Patch(
                _RESPONSES,
                f"{_RESPONSE_CLASS}.{name}",
                ("self",),
                replacement=handler,
                added=name in ADDED,
            )
            for name, handler in handlers.items()
        ),
        uses=USES,
    )
