"""The emulator's operator clients are made at first use, once each (speed only)."""

from __future__ import annotations

import pytest

from bisonflow.local.emulator import REGION, SERVICES, OperatorClients


def test_a_client_is_made_at_first_use_and_kept() -> None:
    clients = OperatorClients("http://127.0.0.1:9")
    assert len(clients) == 0  # nothing made yet
    s3 = clients["s3"]
    assert clients["s3"] is s3 and list(clients) == ["s3"]
    assert s3.meta.endpoint_url == "http://127.0.0.1:9" and s3.meta.region_name == REGION
    assert {clients[name].meta.service_model.service_name for name in SERVICES} == set(SERVICES)
    with pytest.raises(KeyError):
        clients["not-a-service-here"]
