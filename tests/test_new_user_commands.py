"""Issue 12, as a newcomer meets it: the commands `bisonflow local up` prints work pasted into
a shell with nothing set (only PATH and HOME), the console's URL it prints opens the console
(issue 15), a deploy that stopped half-way is named in one
line and can be removed, SIGTERM cleans up like Ctrl-C and the port can be taken again at
once, and Ctrl-C on `bisonflow run` ends in one line with exit 130.

One `local up` serves the module (a start is half a minute on a busy machine)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from conftest import leave_half_way

from bisonflow import PROJECT_ROOT

BIN = Path(sys.executable).parent
RECORDS = "2000"


def bare_environment(home: Path, tmp: Path | None = None) -> dict[str, str]:
    """A fresh shell's environment: the venv's commands on PATH, an empty HOME, no AWS_*
    (and Python's fault handler, so a process that hangs can be made to say where)."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "PYTHONFAULTHANDLER": "1"}
    return env | ({"TMPDIR": str(tmp)} if tmp else {})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """A `bisonflow local up` subprocess and everything it printed."""

    process: subprocess.Popen
    port: int
    home: Path
    tmp: Path
    lines: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None  # reads the output once wait_for found its marker

    def ended(self, timeout: float = 180) -> int:
        """The exit code, once every line it printed is in `lines`; a process still running
        after `timeout` dumps its threads' stacks (SIGABRT, the fault handler) into the
        failure. (Waiting a fixed half second for the last lines was too short under load.)"""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(timeout=30)
            self._drained()
            raise AssertionError("did not stop:\n" + "".join(self.lines[-200:])) from None
        self._drained()
        return code

    def _drained(self) -> None:
        """The output pipe read to its end (the process has exited, so the end comes)."""
        if self.drain:
            self.drain.join(timeout=60)
            assert not self.drain.is_alive(), "the output pipe stayed open after the exit"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for(self, marker: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        assert self.process.stdout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            assert line, "local up exited early:\n" + "".join(self.lines)
            self.lines.append(line)
            if marker in line:
                # Keep draining: a full pipe would block the server's next write.
                self.drain = threading.Thread(target=self.lines.extend, args=(self.process.stdout,))
                self.drain.start()
                return
        raise AssertionError(f"no {marker!r} in {timeout} s:\n" + "".join(self.lines))

    def printed_commands(self) -> list[str]:
        """The commands under "Try", without the notes in brackets after them."""
        start = next(i for i, line in enumerate(self.lines) if line.startswith("Try "))
        commands = []
        for line in self.lines[start + 1 :]:
            if not line.strip():
                break
            commands.append(line.strip().split("   (")[0])
        return commands

    def shell(self, command: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """`command` as pasted into a fresh shell."""
        return subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            env=bare_environment(self.home),
            cwd=self.home,
            timeout=timeout,
        )


def serve(home: Path, tmp: Path, port: int) -> Served:
    process = subprocess.Popen(
        [BIN / "bisonflow", "local", "up", "--port", str(port), "--records", RECORDS],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=bare_environment(home, tmp),
        cwd=PROJECT_ROOT,
    )
    return Served(process, port, home, tmp)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newcomer's HOME, empty at first: the module's runtimes share it, so the sample the
    first one drew is the others' cache hit (~/.cache/bisonflow/samples), as on a laptop."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def served(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("tmp")
    up = serve(home, tmp, _free_port())
    try:
        up.wait_for("stops it")
        yield up
    finally:
        if up.process.poll() is None:
            up.process.send_signal(signal.SIGINT)
            up.process.wait(timeout=60)


def test_the_printed_commands_work_in_a_shell_with_nothing_set(served: Served) -> None:
    commands = served.printed_commands()
    assert any(
        c.startswith("AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws ") for c in commands
    )
    assert any(c.startswith("bisonflow start --endpoint-url") for c in commands)
    assert any(c.startswith("bisonflow deploy --endpoint-url") for c in commands)
    # The redeploy first: it reports "no changes" only while the tree is the one `local up`
    # deployed, and colleagues edit the shared tree while this module runs.
    outputs = {}
    for command in sorted(commands, key=lambda c: not c.startswith("bisonflow deploy")):
        done = served.shell(command)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, done.stderr
        outputs[command] = done.stdout
    # The plain AWS CLI reads back the execution it started, as any AWS client would.
    (aws_start,) = [c for c in commands if " aws " in c and "start-execution" in c]
    arn = json.loads(outputs[aws_start])["executionArn"]
    aws = aws_start.split(" stepfunctions ")[0]
    described = served.shell(f"{aws} stepfunctions describe-execution --execution-arn {arn}")
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["executionArn"] == arn
    started = served.shell(f"bisonflow start --endpoint-url {served.endpoint} --month 2019-01")
    follow = started.stdout.splitlines()[-1].removeprefix("follow it with: ")
    assert follow.startswith(f"bisonflow watch --endpoint-url {served.endpoint} arn:aws:states:")
    watched = served.shell(follow)
    assert watched.returncode == 0 and "] -> CheckGbif" in watched.stdout
    assert "month not processed: GBIF has not published the 2019-01 snapshot" in watched.stdout


def test_the_printed_console_url_opens_the_console_and_nothing_else_does(served: Served) -> None:
    """Issue 15: `local up` prints the console's URL; opened as printed, the console says which
    account, region and endpoint it talks to; without the URL's session token it refuses."""
    (line,) = [line for line in served.lines if line.strip().startswith("console:")]
    url = line.split()[1]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    with urllib.request.urlopen(url, timeout=30) as answer:
        page = answer.read().decode()
    assert f"account 123456789012 · us-east-1 at {served.endpoint}" in page
    origin = url.rsplit("/", 2)[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(origin + "/", timeout=30)
    assert refused.value.code == 403


def test_bisonflow_console_serves_the_console_of_any_endpoint(served: Served) -> None:
    """`bisonflow console --endpoint-url URL`, as against an account: it prints its URL, the
    page names the account, region and endpoint, Ctrl-C ends it with exit 0; a stack the
    account lacks ends it in one line."""
    console = subprocess.Popen(
        [BIN / "bisonflow", "console", "--endpoint-url", served.endpoint],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=bare_environment(served.home),
    )
    try:
        assert console.stdout
        printed = [console.stdout.readline() for _ in range(2)]
        assert printed[0].startswith("BISON console for account 123456789012 · us-east-1"), printed
        url = printed[1].strip()
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert f"us-east-1 at {served.endpoint} · stack bisonflow" in answer.read().decode()
    finally:
        console.send_signal(signal.SIGINT)
        rest, _ = console.communicate(timeout=60)
    assert console.returncode == 0 and "stopping" in rest, rest
    missing = served.shell(
        f"bisonflow console --endpoint-url {served.endpoint} --stack-name no-such-stack"
    )
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "no-such-stack" in missing.stderr


def test_without_the_keys_the_aws_cli_says_so(served: Served) -> None:
    """docs/running.md's line for the plain AWS CLI: it needs keys (any) and a region."""
    done = served.shell(f"aws --endpoint-url {served.endpoint} stepfunctions list-state-machines")
    assert done.returncode != 0 and "region" in done.stderr.lower()


def test_a_deploy_that_stopped_half_way_is_named_and_can_be_removed(served: Served) -> None:
    """A deploy interrupted after CreateChangeSet (CREATE) leaves the stack REVIEW_IN_PROGRESS:
    redeploy says so in one line; destroy removes it without touching other stacks."""
    cfn = boto3.client(
        "cloudformation",
        endpoint_url=served.endpoint,
        region_name="us-east-1",
        aws_access_key_id="any",
        aws_secret_access_key="any",
    )
    leave_half_way(cfn, "halfway")
    target = f"--endpoint-url {served.endpoint} --stack-name halfway"
    redeploy = served.shell(f"bisonflow deploy {target}")
    assert redeploy.returncode == 2, redeploy.stderr
    assert redeploy.stderr.splitlines() == [
        "bisonflow: stack halfway is REVIEW_IN_PROGRESS (an earlier deploy stopped after "
        "creating its first change set, so the stack has no resources); run `bisonflow destroy "
        "--stack-name halfway` and deploy again"
    ]
    destroy = served.shell(f"bisonflow destroy {target}")
    assert destroy.returncode == 0 and destroy.stderr == "", destroy.stderr
    assert "stack halfway deleted." in destroy.stdout
    again = served.shell(f"bisonflow destroy {target}")
    assert again.returncode == 2
    assert again.stderr.splitlines() == ["bisonflow: there is no stack halfway in us-east-1"]
    machines = served.shell(f"bisonflow executions --endpoint-url {served.endpoint}")
    assert machines.returncode == 0, "the other stack's state machine must survive"


def test_sigterm_cleans_up_and_the_port_is_free_again_at_once(served: Served) -> None:
    assert any(p.name.startswith("bisonflow-") for p in served.tmp.iterdir())
    served.process.send_signal(signal.SIGTERM)
    assert served.ended() == 0
    assert "stopping\n" in served.lines
    assert list(served.tmp.iterdir()) == [], "the work directory must be removed"
    again = serve(served.home, served.tmp, served.port)
    try:
        # A port still refused ends `local up` at once (PortInUse): the wait is for a slow
        # start under load only.
        again.wait_for("emulator listening on")
    finally:
        again.process.send_signal(signal.SIGTERM)
        code = again.ended()
    if "Ctrl-C (or SIGTERM) stops it.\n" in again.lines:
        # A quick machine finished starting before the signal came: stopped while serving.
        assert code == 0 and "stopping\n" in again.lines, again.lines
    else:
        # Stopped while starting: exit 128 + SIGTERM, in one line.
        assert code == 128 + signal.SIGTERM
        assert again.lines[-1] == "bisonflow: stopped (SIGTERM)\n", again.lines
    assert not any("Traceback" in line for line in again.lines)
    assert list(served.tmp.iterdir()) == []


def test_ctrl_c_on_run_ends_in_one_line(home: Path, tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group; `run` stops its runtime, removes
    its work directory and says so in one line, exit 130 (128 + SIGINT)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = subprocess.Popen(
        [BIN / "bisonflow", "run", "--records", RECORDS, "--out", str(tmp_path / "runs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bare_environment(home, tmp),
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )
    assert process.stdout and process.stderr
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("started arn:"):
            break
    time.sleep(3)  # inside the execution: Lambdas and a task are running
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=180) == 130, "".join(seen)
    assert process.stderr.read().splitlines() == ["bisonflow: stopped (SIGINT)"]
    assert list(tmp.rglob("*")) == []
