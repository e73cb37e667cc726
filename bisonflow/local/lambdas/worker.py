"""Emulator seam: run moto's Lambda functions in warm local Python worker processes.

moto runs Lambda code only inside Docker. This module's SEAM (bisonflow.local.seams) replaces
`moto.awslambda.models.LambdaFunction._invoke_lambda` (returns `(payload, errored, logs)`)
so that the function's deployment zip is unpacked once and served by a local worker process
(`bisonflow.local.lambdas.runtime`) with the function's Environment, handler, timeout and a
context object. The function's Layers are honoured as Lambda honours them: their zips are
extracted in order into one directory (Lambda's /opt), whose `python/lib/pythonX.Y/site-packages`
and `python/` follow the function's own code on sys.path. Every function, with layers or
without, gets only the standard library and boto3's family besides (what Lambda's Python
runtime ships), never this interpreter's site-packages, so a dependency missing from its
package or layer fails here as it would on AWS. Workers stay warm and are reused the way Lambda
reuses execution environments: one worker serves one invocation at a time, and concurrent
invocations get more workers. Each worker runs as its function's execution role: it starts with
a new STS session of that role in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
as Lambda hands every execution environment its role's temporary credentials (Lambda Developer
Guide, "Using Lambda environment variables", reserved variables; the session is named after the
function, as in the assumed-role ARN Lambda's calls carry), so the IAM seam evaluates the role's
own policies for every call the code makes. Each worker writes to its own log stream in
`/aws/lambda/<name>`, with START / END / REPORT lines as Lambda writes them, and to a local log
file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from moto.awslambda.models import LambdaBackend, LambdaFunction, LayerVersion, lambda_backends

from bisonflow.deploy.packaging import runtime_provided_entries
from bisonflow.local.child_processes import OWN_GROUP, passed_through
from bisonflow.local.credentials import as_environment, role_credentials
from bisonflow.local.lambdas import runtime as lambda_runtime
from bisonflow.local.seams import Patch, Seam, Target

#: The attributes of a LambdaFunction the worker reads (instance attributes: the seam's test
#: reads them on a created function).
FUNCTION_ATTRIBUTES = (
    "function_name",
    "function_arn",
    "handler",
    "timeout",
    "memory_size",
    "version",
    "environment_vars",
    "code_bytes",
    "code_sha_256",
    "logs_group_name",
    "logs_backend",
    "layers",  # [{"Arn": layer version ARN, "CodeSize": n}], in the order given to Lambda
    "account_id",
    "region",
    "role",  # the execution role's ARN
)
#: Where moto keeps a layer version's zip: backend lookup by ARN, and the LayerVersion fields.
LAYER_LOOKUP = Target(
    LambdaBackend.__module__, "LambdaBackend.layers_versions_by_arn", ("self", "layer_version_arn")
)
LAYER_ATTRIBUTES = ("code_bytes", "code_sha_256")

#: How every worker's interpreter starts: no script directory on sys.path (-P) and no
#: site-packages (-S), so it sees only the standard library and the PYTHONPATH given.
ISOLATED_FLAGS = ("-P", "-S")
#: What an invocation answers once the pool is shut down: an execution still running while the
#: runtime stops gets a failed invocation, as from an environment that exited, not a new worker.
STOPPING = {"errorMessage": "the local runtime is stopping", "errorType": "Runtime.ExitError"}


class _Stopping(Exception):
    """The pool is shut down: nothing more is started or written under its work directory."""


@dataclass
class _Worker:
    """One warm execution environment."""

    key: str
    process: subprocess.Popen[str]
    log_stream: str
    invocations: int = 0

    def pipes(self) -> tuple[IO[str], IO[str]]:
        """The process's stdin and stdout (Popen made both pipes: never None here)."""
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError(f"Lambda worker {self.process.pid} has no pipes")
        return stdin, stdout


@dataclass
class WorkerPool:
    """Warm workers keyed by function, code and configuration; idle ones are reused."""

    workdir: Path
    endpoint_url: str
    region: str
    _idle: dict[str, list[_Worker]] = field(default_factory=dict)
    _all: list[_Worker] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _unpack_lock: threading.Lock = field(default_factory=threading.Lock)
    _runtime: Path | None = None
    #: Guards _closed and _writing: shutdown waits for the threads writing under workdir.
    _writers: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False
    _writing: int = 0

    @contextmanager
    def _in_workdir(self) -> Iterator[None]:
        """Work that writes under `workdir` (unpacking, a new worker, a log file): refused once
        shutdown began, and waited for by it, so nothing is written once it returned; the
        runtime removes the directory next. An execution's thread goes on after a Ctrl-C and
        recreated `logs/lambda/` in the directory being removed (issue 12)."""
        with self._writers:
            if self._closed:
                raise _Stopping
            self._writing += 1
        try:
            yield
        finally:
            with self._writers:
                self._writing -= 1
                self._writers.notify_all()

    # --- code and environment ---------------------------------------------------
    def _unpacked(self, target: Path, zips: list[bytes]) -> Path:
        """`zips` extracted in order into `target` (later ones overwrite, as layers merge in
        /opt), once: a half-extracted directory is never used."""

        def extract(directory: Path) -> None:
            for code in zips:
                with zipfile.ZipFile(io.BytesIO(code)) as zf:
                    zf.extractall(directory)

        with self._unpack_lock:
            return made_once(target, extract)

    def _code_dir(self, fn: LambdaFunction) -> Path:
        # CodeSha256 is base64: its "/" would nest directories, and a leading "/" (one hash in
        # 64) made the path absolute, unpacking the code outside the work directory.
        digest = (fn.code_sha_256 or "nocode").replace("/", "_").replace("+", "-")
        target = self.workdir / "lambda" / fn.function_name / digest
        return self._unpacked(target, [fn.code_bytes])

    def _layers_dir(self, fn: LambdaFunction) -> Path | None:
        """The function's layers merged as in Lambda's /opt; None without layers."""
        if not fn.layers:
            return None
        backend = lambda_backends[fn.account_id][fn.region]
        versions: list[LayerVersion] = []
        for layer in fn.layers:
            version = backend.layers_versions_by_arn(layer["Arn"])
            if version is None:
                raise LookupError(f"{fn.function_name}: layer {layer['Arn']} does not exist")
            versions.append(version)
        key = hashlib.sha256("/".join(v.code_sha_256 for v in versions).encode()).hexdigest()
        return self._unpacked(
            self.workdir / "lambda-layers" / key, [v.code_bytes for v in versions]
        )

    def _runtime_site(self) -> Path:
        """boto3's family as installed here, linked into a directory of its own: what Lambda's
        Python runtime offers besides the standard library."""
        with self._unpack_lock:
            if self._runtime is None:
                self._runtime = link_runtime_site(self.workdir / "lambda-runtime")
            return self._runtime

    def _sys_path(self, fn: LambdaFunction, code_dir: Path) -> list[str]:
        """Lambda's order: the deployment package (/var/task), the layers (/opt), then the
        runtime's own boto3."""
        opt = self._layers_dir(fn)
        python = f"python{sys.version_info.major}.{sys.version_info.minor}"
        layer_paths = (
            [opt / "python" / "lib" / python / "site-packages", opt / "python"] if opt else []
        )
        return [str(p) for p in (code_dir, *layer_paths, self._runtime_site())]

    def _environment(self, fn: LambdaFunction, code_dir: Path) -> dict[str, str]:
        env = passed_through()
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(self._sys_path(fn, code_dir)),
                "PYTHONUNBUFFERED": "1",
                "LAMBDA_TASK_ROOT": str(code_dir),
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
                "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                **as_environment(role_credentials(fn.role, fn.function_name)),
            }
        )
        env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
        return env

    def _key(self, fn: LambdaFunction) -> str:
        config = json.dumps(
            [fn.function_arn, fn.handler, fn.code_sha_256, fn.environment_vars, fn.layers, fn.role],
            sort_keys=True,
        )
        return hashlib.sha256(config.encode()).hexdigest()

    # --- worker lifecycle ---------------------------------------------------------
    def _checkout(self, fn: LambdaFunction) -> _Worker:
        with self._in_workdir():
            return self._idle_or_new_worker(fn)

    def _idle_or_new_worker(self, fn: LambdaFunction) -> _Worker:
        key = self._key(fn)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            while idle:
                worker = idle.pop()
                if worker.process.poll() is None:
                    return worker
        code_dir = self._code_dir(fn)
        # By path, with -P: the runtime is stdlib-only and must not make the repository's
        # `bisonflow` shadow the one inside the deployment package. -S leaves this
        # interpreter's site-packages out: the package, its layers and the runtime's boto3
        # stand alone, as on Lambda.
        environment = self._environment(fn, code_dir)
        with self._log_file(fn).open("a") as stray_output:
            process = subprocess.Popen(
                [sys.executable, *ISOLATED_FLAGS, lambda_runtime.__file__, fn.handler],
                cwd=code_dir,
                env=environment,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stray_output,
                text=True,
                process_group=OWN_GROUP,  # the terminal's Ctrl-C is bisonflow's to handle
            )
        today = time.strftime("%Y/%m/%d", time.gmtime())
        worker = _Worker(key, process, f"{today}/[{fn.version}]{uuid.uuid4().hex}")
        fn.logs_backend.ensure_log_group(fn.logs_group_name)
        fn.logs_backend.create_log_stream(fn.logs_group_name, worker.log_stream)
        with self._lock:
            self._all.append(worker)
        return worker

    def prewarm(self, function_arns: Iterable[str]) -> list[str]:
        """Start one execution environment for each function (a qualified ARN names a version
        or alias) before its first invocation, and return the ARNs it started or found one for.

        The local stand-in for Lambda's provisioned concurrency, "pre-initialized execution
        environments ... ready to respond immediately" (Lambda Developer Guide, "Configuring
        provisioned concurrency"): a worker's start (Python, boto3, the handler's imports:
        1-3 s each on two loaded cores) is then paid while the runtime starts, not on the
        execution's critical path, where the six first invocations cost 12 s of a demo. Speed
        only: the worker is the one the first invocation would have started (same key, code,
        environment and role credentials, its own log stream), and is then reused as Lambda
        reuses environments. A pool that is stopping starts none.
        """
        started = []
        for arn in function_arns:
            account, region = arn.split(":")[4], arn.split(":")[3]
            fn = lambda_backends[account][region].get_function(arn)
            try:
                self._checkin(self._checkout(fn))
            except _Stopping:
                break
            started.append(arn)
        return started

    def _checkin(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.setdefault(worker.key, []).append(worker)

    def _log_file(self, fn: LambdaFunction) -> Path:
        path = self.workdir / "logs" / "lambda" / f"{fn.function_name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def shutdown(self) -> None:
        with self._writers:
            self._closed = True
            self._writers.wait_for(lambda: self._writing == 0)
        with self._lock:
            workers, self._all, self._idle = self._all, [], {}
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()

    # --- invocation -------------------------------------------------------------
    def invoke(self, fn: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        try:
            worker = self._checkout(fn)
        except _Stopping:
            return json.dumps(STOPPING), True, ""
        request_id = str(uuid.uuid4())
        started = time.time()
        request = {
            "event": event if event is not None else {},
            "request_id": request_id,
            "function_name": fn.function_name,
            "function_version": str(fn.version),
            "invoked_function_arn": fn.function_arn,
            "memory_limit_in_mb": fn.memory_size,
            "log_group_name": fn.logs_group_name,
            "log_stream_name": worker.log_stream,
            "deadline_ms": (started + float(fn.timeout)) * 1000,
        }
        stdin, stdout = worker.pipes()
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], float(fn.timeout))
        line = stdout.readline() if ready else ""
        elapsed_ms = (time.time() - started) * 1000
        if line:
            reply = json.loads(line)
            worker.invocations += 1
            self._checkin(worker)
            ok, payload, logs = reply["ok"], reply["payload"], reply["logs"]
        else:
            # Timed out or crashed: the execution environment is discarded, as on Lambda.
            timed_out = worker.process.poll() is None
            worker.process.kill()
            worker.process.wait()
            message = (
                f"Task timed out after {float(fn.timeout):.2f} seconds"
                if timed_out
                else f"Runtime exited with error: exit status {worker.process.returncode}"
            )
            ok, logs = False, message + "\n"
            payload = {
                "errorMessage": f"{request_id} {message}",
                "errorType": "Sandbox.Timedout" if timed_out else "Runtime.ExitError",
            }
        self._write_logs(fn, worker, request_id, logs, elapsed_ms)
        return json.dumps(payload), not ok, logs

    def _write_logs(
        self, fn: LambdaFunction, worker: _Worker, request_id: str, logs: str, elapsed_ms: float
    ) -> None:
        lines = [f"START RequestId: {request_id} Version: {fn.version}"]
        lines += logs.splitlines()
        lines += [
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms\t"
            f"Memory Size: {fn.memory_size} MB",
        ]
        now = int(time.time() * 1000)
        fn.logs_backend.put_log_events(
            fn.logs_group_name,
            worker.log_stream,
            [{"timestamp": now, "message": line} for line in lines],
        )
        # _Stopping: the work directory is being removed; CloudWatch Logs has the lines.
        with suppress(_Stopping), self._in_workdir(), self._log_file(fn).open("a") as fh:
            fh.write("\n".join(lines) + "\n")


def made_once(target: Path, fill: Callable[[Path], None]) -> Path:
    """`target`, filled by `fill` in a `.partial` sibling renamed into place once complete: a
    half-made directory (an interrupted unpack) is never used, and one already made is kept."""
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        fill(partial)
        partial.rename(target)
    return target


def link_runtime_site(directory: Path) -> Path:
    """A directory holding links to the runtime-provided distributions' top-level entries."""

    def link(partial: Path) -> None:
        for entry in runtime_provided_entries():
            (partial / entry.name).symlink_to(entry)

    return made_once(directory, link)


#: The pool every invocation in this process goes to (moto's functions are process-wide).
_pool: WorkerPool | None = None


def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """moto's invocation, served by the pool's warm workers."""
    pool = _pool
    if pool is None:  # uninstalled while a call was on its way: as a pool shut down
        return json.dumps(STOPPING), True, ""
    return pool.invoke(self, event)


#: What this module replaces and reads of moto (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        LambdaFunction.__module__,
        "LambdaFunction._invoke_lambda",
        ("self", "event"),
        replacement=_invoke_lambda,
    ),
    uses=(LAYER_LOOKUP, Target(LambdaBackend.__module__, "lambda_backends")),
)


def install(workdir: Path, endpoint_url: str, region: str) -> WorkerPool:
    """Route every Lambda invocation in this moto process to a new pool of local workers (the
    previous pool, if any, is shut down; the emulator shuts down its own at stop, and
    `SEAM.uninstall()` gives moto its own invocation back)."""
    global _pool
    SEAM.check()
    pool = WorkerPool(workdir=workdir, endpoint_url=endpoint_url, region=region)
    previous, _pool = _pool, pool
    if previous is not None:
        previous.shutdown()
    SEAM.install()
    return pool
