"""Emulator seam (speed only): moto's server routes each request without re-reading its own
package directory.

moto 5.2.5's server picks the backend for every request in
`DomainDispatcherApplication.get_backend_for_host`, which first asks whether the host names a
moto module: `moto.backends.list_of_moto_modules()` lists moto's package directory and calls
`os.path.isdir` on each of its ~150 entries, on every request. The answer cannot change while
the process runs, so this seam lists it once. Nothing AWS does is involved: the same backend is
chosen for the same request, only sooner (a whole workflow run sends ~600 requests, and the
listing was about 3% of the test process's busy CPU in a profile of tests/test_workflow.py).
"""

from __future__ import annotations

from functools import cache

from moto import backends

from bisonflow.local.seams import Patch, Seam

_listed = backends.list_of_moto_modules


@cache
def list_of_moto_modules() -> tuple[str, ...]:
    """moto's module names, as moto lists them, listed once."""
    return tuple(_listed())


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(backends.__name__, "list_of_moto_modules", (), replacement=list_of_moto_modules),
)
