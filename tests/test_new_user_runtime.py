"""Issue 12, the local runtime's edges: the EC2 agent ships any task output CloudWatch Logs
accepts (empty, odd and huge lines), reports a failure once instead of every poll, the port
probe lets a server restart at once on the port it just left, and a Ctrl-C reaches `bisonflow`
alone, which stops its Lambda workers and writes nothing after."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from bisonflow.local import PortInUse
from bisonflow.local.ec2.agent import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    Ec2Agent,
    log_batches,
    log_messages,
)
from bisonflow.local.emulator import CREDENTIALS, _check_port_free
from bisonflow.local.lambdas.worker import WorkerPool
from bisonflow.local.runtime import LocalRuntime


def test_empty_lines_are_no_events_and_huge_ones_are_split_on_characters() -> None:
    huge = "é" * 300_000  # 600,000 UTF-8 bytes: more than two events' worth
    messages = log_messages(f"first\n\n   \n{huge}\r\nlast")
    assert messages[:2] == ["first", "   "] and messages[-1] == "last"
    pieces = messages[2:-1]
    assert len(pieces) == 3 and "".join(pieces) == huge
    assert all(len(p.encode()) <= MAX_EVENT_BYTES for p in pieces)
    assert MAX_EVENT_BYTES + EVENT_OVERHEAD == 256 * 1024
    assert log_messages("\n\n") == []


def test_batches_keep_put_log_events_limits_and_order() -> None:
    many = [str(i) for i in range(MAX_BATCH_EVENTS + 5)]
    assert [len(b) for b in log_batches(many)] == [MAX_BATCH_EVENTS, 5]
    big = ["x" * MAX_EVENT_BYTES] * 9
    batches = log_batches(big)
    assert sum(len(b) for b in batches) == 9
    for batch in batches:
        assert sum(len(m) + EVENT_OVERHEAD for m in batch) <= MAX_BATCH_BYTES
    assert [m for b in log_batches(many) for m in b] == many


@pytest.fixture
def agent(runtime: LocalRuntime, tmp_path: Path) -> Ec2Agent:
    """An agent of this test's own, polled by hand, that boots no instance."""
    return Ec2Agent(
        ec2=runtime.clients["ec2"],
        iam=runtime.clients["iam"],
        endpoint_url=runtime.endpoint_url,
        region=runtime.emulator.region if runtime.emulator else "us-east-1",
        workdir=tmp_path,
        task_env={},
        paused=True,
        filters=[{"Name": "tag:bisonflow:execution", "Values": [f"none-{uuid.uuid4()}"]}],
    )


def _ended_task(agent: Ec2Agent, group: str, output: str) -> str:
    """A task process that has ended with `output` in its log, to be shipped to `group`."""
    instance_id = f"i-{uuid.uuid4().hex[:17]}"
    path = agent.log_path(instance_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(output)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    agent._procs[instance_id] = process
    agent._shipping[instance_id] = (group, instance_id, dict(CREDENTIALS))
    return instance_id


def test_odd_task_output_is_shipped_whole(runtime: LocalRuntime, agent: Ec2Agent) -> None:
    logs = runtime.clients["logs"]
    group = f"newuser-tasks-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    huge = "calc_stats: " + "ab" * 200_000
    interleaved = "calc_stats: readingcalc_stats: writing"  # two threads' halves on one line
    output = f"\n{interleaved}\n\n{huge}\n\x00binary\ufffd\n"
    instance_id = _ended_task(agent, group, output)
    agent.poll_once()
    events = logs.get_log_events(logGroupName=group, logStreamName=instance_id)["events"]
    messages = [e["message"] for e in events]
    assert messages[0] == interleaved and messages[-1] == "\x00binary\ufffd"
    assert "".join(messages[1:-1]) == huge and len(messages) == 4
    assert agent.notices == [] and instance_id not in agent._procs


def test_a_failed_shipment_is_reported_once_and_not_retried(agent: Ec2Agent) -> None:
    instance_id = _ended_task(agent, "no-such-group", "a line\n")
    agent.poll_once()
    agent.poll_once()
    assert len(agent.notices) == 1, agent.notices
    assert agent.notices[0].startswith(
        f"instance {instance_id}: its log was not shipped to CloudWatch Logs (ResourceNotFound"
    )
    assert agent.notices[0].endswith(f"it stays in {agent.log_path(instance_id)}")
    assert instance_id not in agent._procs


class _Unreachable:
    """An EC2 client whose every call fails the same way."""

    def get_paginator(self, name: str) -> Any:
        raise ConnectionError("the emulator is gone")


def test_a_repeating_error_is_reported_once(tmp_path: Path) -> None:
    agent = Ec2Agent(
        ec2=_Unreachable(),
        iam=None,
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        workdir=tmp_path,
        task_env={},
        interval=0.01,
    )
    agent.start()
    time.sleep(0.3)
    agent.stop()
    assert agent.notices == [
        "ConnectionError: the emulator is gone (reported once; the agent keeps polling)"
    ]


def test_a_port_just_left_can_be_taken_again_at_once() -> None:
    """A server that stopped leaves its connections in TIME_WAIT; the probe must not refuse
    the port for that (the server binds with SO_REUSEADDR), only for a listener."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()

    def close_server_side_first() -> None:  # the side that closes first keeps TIME_WAIT
        accepted.close()

    threading.Thread(target=close_server_side_first).start()
    time.sleep(0.1)
    client.close()
    with pytest.raises(PortInUse, match=f"port {port} on 127.0.0.1 is already in use"):
        _check_port_free(port)  # still listening
    server.close()
    _check_port_free(port)  # TIME_WAIT only: free for a restart


def test_a_shut_down_pool_starts_no_worker_and_writes_nothing(tmp_path: Path) -> None:
    """An execution goes on in moto's threads while the runtime stops: a Lambda invoked after
    the pool was shut down fails like an environment that exited, and nothing reappears in
    the work directory the runtime removes next (Ctrl-C left logs/lambda/ behind)."""
    workdir = tmp_path / "runtime"
    pool = WorkerPool(workdir=workdir, endpoint_url="http://127.0.0.1:9", region="us-east-1")
    pool.shutdown()
    payload, errored, logs = pool.invoke(object(), {"month": "2026-12"})  # type: ignore[arg-type]
    assert errored and logs == ""
    assert json.loads(payload) == {
        "errorMessage": "the local runtime is stopping",
        "errorType": "Runtime.ExitError",
    }
    assert not workdir.exists()


def test_lambda_workers_are_out_of_the_terminals_process_group(runtime: LocalRuntime) -> None:
    """A terminal's Ctrl-C signals its whole foreground process group; a worker in it died
    before `bisonflow` could stop the execution, which then failed and printed why."""
    lambdas = runtime.clients["lambda"]
    name = lambdas.list_functions()["Functions"][0]["FunctionName"]
    lambdas.invoke(FunctionName=name, Payload=b"{}")
    assert runtime.emulator and runtime.emulator.pool
    # Workers that ended (a timed-out invocation's, killed) stay listed; the live ones count.
    workers = [w.process.pid for w in runtime.emulator.pool._all if w.process.poll() is None]
    assert workers
    for pid in workers:
        assert os.getpgid(pid) == pid != os.getpgrp()
