"""Emulator seam (speed only): botocore's data files are parsed once per process, not once
per loader.

botocore caches what a `Loader` reads on that loader (`botocore.loaders.instance_cache`), and
every `Session` makes a loader of its own. moto 5.2.5 makes many: one per model it parses
requests with (`moto.core.utils._load_service_model`), a `Session()` per region listing (three
at the import of moto.ec2, one per service backend it creates), besides the emulator's and the
deploy's clients. Counted in one `LocalRuntime` start: 263 JSON files parsed, EC2's model
seven times (1.6 s) and the endpoint table six, 3.6 s of a 13 s start; the region listings
alone 1.8 s.

This seam keeps, per process, what the first loader with the same search paths parsed:
service models (after their SDK extras are merged, as `Loader.load_service_model` returns
them), the data files without a service (`endpoints`, `partitions`, ...), and the service
listing. Each is read from the same files by the same code, so every caller gets what it would
have parsed itself; botocore already hands one such object to every client of a session, which
only read it. Model files are left to each loader below `load_service_model`, because that
method merges the extras into the dict `load_data_with_path` returned.

Installed at import, and imported by bisonflow.local.emulator before anything that imports
moto's EC2 models, which list regions as the class is defined; installing is idempotent.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from botocore.loaders import Loader

from bisonflow.local.seams import Patch, Seam

#: The Loader methods this module replaces, each with its parameters (the originals are
#: wrapped by botocore's instance_cache, which hides them) and which calls it keeps.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "load_service_model": ("service_name", "type_name", "api_version"),
    # Only the files without a service (endpoints, partitions, sdk-default-configuration):
    # load_service_model merges a model's extras into the dict this returned for its file.
    "load_data_with_path": ("name",),
    "list_available_services": ("type_name",),
}

_shared: dict[tuple[Any, ...], Any] = {}
#: Reentrant: load_service_model calls load_data_with_path and list_available_services.
_lock = threading.RLock()


def _arguments(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """The call's arguments in parameter order, None where left out: botocore passes the
    same ones positionally (clients) or by keyword (Session.get_service_data)."""
    given = dict(zip(PARAMETERS[name], args, strict=False)) | kwargs
    return tuple(given.get(parameter) for parameter in PARAMETERS[name])


def _per_process(name: str) -> Callable[..., Any]:
    """Loader method `name`, its result kept per (search paths, extras types, arguments)."""
    method = getattr(Loader, name)

    @functools.wraps(method)
    def wrapper(self: Loader, *args: Any, **kwargs: Any) -> Any:
        arguments = _arguments(name, args, kwargs)
        if name == "load_data_with_path" and "/" in arguments[0]:
            return method(self, *args, **kwargs)
        key = (name, tuple(self.search_paths), tuple(self.extras_types), arguments)
        with _lock:
            if key not in _shared:
                _shared[key] = method(self, *args, **kwargs)
            found = _shared[key]
        # A listing is a new list from each loader: its caller may keep or change it.
        return list(found) if name == "list_available_services" else found

    # A mark on the function object (tests find the patched methods by it), an attribute
    # functools' _Wrapped type does not declare.
    wrapper.__wrapped_by_api_models__ = True  # type: ignore[attr-defined]
    return wrapper


#: What this module replaces (bisonflow.local.seams); installed at import, see above.
SEAM = Seam(
    __name__,
    *(
        Patch(Loader.__module__, f"Loader.{name}", ("self",), replacement=_per_process(name))
        for name in PARAMETERS
    ),
)
SEAM.install()
