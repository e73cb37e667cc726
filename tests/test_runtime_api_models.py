"""bisonflow.local.api_models: botocore's data parsed once per process (speed only), and
every caller still gets what its own loader would have parsed."""

from __future__ import annotations

import subprocess
import sys

import boto3
import botocore.session
from botocore.loaders import Loader

from bisonflow.local import api_models

COUNT_ENDPOINT_PARSES = """
import botocore.loaders
parsed = []
load_file = botocore.loaders.JSONFileLoader.load_file
def counting(self, path, *args, **kwargs):
    if path.endswith("/endpoints"):
        parsed.append(path)
    return load_file(self, path, *args, **kwargs)
botocore.loaders.JSONFileLoader.load_file = counting
import bisonflow.local.emulator  # moto's EC2 models list regions, three sessions, at import
print(len(parsed))
"""


def _loader(session: object) -> Loader:
    core = getattr(session, "_session", session)  # a boto3 Session wraps botocore's
    return core.get_component("data_loader")


def test_loaders_with_the_same_paths_share_what_they_parsed() -> None:
    api_models.SEAM.install()  # idempotent
    assert all(
        hasattr(getattr(Loader, p.name), "__wrapped_by_api_models__")
        for p in api_models.SEAM.patches
    )
    first, second = _loader(botocore.session.Session()), _loader(botocore.session.Session())
    assert first is not second
    model = first.load_service_model("sqs", "service-2")
    # Positional or by keyword (Session.get_service_data), the same object.
    assert second.load_service_model("sqs", type_name="service-2") is model
    # ... equal to what a loader parses without the seam.
    original = Loader.load_service_model.__wrapped__  # type: ignore[attr-defined]
    assert original(Loader(), "sqs", "service-2") == model
    assert second.load_data("endpoints") is first.load_data("endpoints")
    listing = first.list_available_services("service-2")
    assert listing == second.list_available_services("service-2") and listing is not (
        second.list_available_services("service-2")
    )  # each caller's own list, as before


def test_what_differs_between_loaders_is_not_shared() -> None:
    plain = _loader(botocore.session.Session())
    with_boto3_data = _loader(boto3.Session())  # boto3 adds its data directory (SDK extras)
    assert plain.search_paths != with_boto3_data.search_paths
    ec2 = plain.load_service_model("ec2", "service-2")
    assert with_boto3_data.load_service_model("ec2", "service-2") is not ec2
    # A model's own file is each loader's: load_service_model merges extras into it.
    path = f"sqs/{plain.determine_latest_version('sqs', 'service-2')}/service-2"
    again = _loader(botocore.session.Session())
    assert plain.load_data_with_path(path)[0] is not again.load_data_with_path(path)[0]


def test_the_emulator_parses_the_endpoint_table_once_at_import() -> None:
    """api_models must be installed before moto's EC2 models are imported (three Sessions
    listing regions as the class is defined): 1 parse, where there were 3."""
    result = subprocess.run(
        [sys.executable, "-c", COUNT_ENDPOINT_PARSES], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "1"
