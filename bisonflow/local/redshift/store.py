"""The stand-in's state per moto redshift-data backend (account x region): the statements
submitted there and one engine per (workgroup or cluster, database).

Kept on moto's backend object, so it is per account and region as the Data API's
statements are, and found again by every request; `forget_all` drops every store, because
moto's backends live as long as the process and would otherwise hand a later server the
statements and databases of an earlier one.
"""

from __future__ import annotations

from typing import Any

from bisonflow.local.redshift.engine import Engine
from bisonflow.local.redshift.moto_s3 import MotoS3
from bisonflow.local.redshift.records import LOCK, Statement

__all__ = ["Store", "forget_all", "store_of"]

#: The attribute of moto's backend that holds its Store.
_ATTRIBUTE = "_bisonflow_store"

#: (target key, target, database): "WorkgroupName" or "ClusterIdentifier", its name, the
#: database. One engine, one DuckDB database, per key.
EngineKey = tuple[str, str, str]


class Store:
    """Statements and engines of one moto redshift-data backend (account x region)."""

    def __init__(self, account_id: str, region: str) -> None:
        self.s3 = MotoS3(account_id, region)
        self.statements: dict[str, Statement] = {}
        self.engines: dict[EngineKey, Engine] = {}

    def engine(self, target_key: str, target: str, database: str) -> Engine:
        """The engine of that database, started on its first statement."""
        key = (target_key, target, database)
        with LOCK:
            if key not in self.engines:
                self.engines[key] = Engine(f"{target}-{database}", self.s3)
            return self.engines[key]

    def engine_of(self, statement: Statement) -> Engine | None:
        """The engine that runs `statement` (None once the store was stopped)."""
        with LOCK:
            return self.engines.get((statement.target_key, statement.target, statement.database))

    def stop(self) -> None:
        """Stop every engine (their queued statements end ABORTED)."""
        for engine in list(self.engines.values()):
            engine.stop()
        self.engines.clear()


#: moto backends that hold a Store, so forget_all() can find every engine.
_BACKENDS: list[Any] = []


def store_of(response: Any) -> Store:
    """The Store of the backend a moto request (`response`) is for, made on first use."""
    backend = response.redshiftdata_backend
    with LOCK:
        store = backend.__dict__.get(_ATTRIBUTE)
        if store is None:
            store = Store(response.current_account, response.region)
            backend.__dict__[_ATTRIBUTE] = store
            _BACKENDS.append(backend)
        return store


def forget_all() -> None:
    """Stop every engine and forget every statement of every backend."""
    with LOCK:
        backends = list(_BACKENDS)
        _BACKENDS.clear()
        stores = [b.__dict__.pop(_ATTRIBUTE, None) for b in backends]
    for store in stores:
        if store is not None:
            store.stop()
