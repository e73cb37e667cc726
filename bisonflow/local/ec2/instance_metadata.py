"""What a process on a task instance can read from instance metadata (IMDS), as EC2 serves it.

The EC2 agent (bisonflow.local.ec2.agent) plays IMDS for the boot script and the task
container. On AWS whether they reach it depends on the instance's metadata options (from its
launch template) and on how far the caller is from the instance's network interface. The
rules, from AWS's documentation:

- **HttpEndpoint** `disabled`: nobody on the instance can read instance metadata (EC2 API
  Reference, LaunchTemplateInstanceMetadataOptionsRequest: "If you specify a value of
  disabled, you will not be able to access your instance metadata"; default `enabled`).
- **HttpPutResponseHopLimit** (default 1, 1-64): how many network hops the response to the
  IMDSv2 token PUT may travel. A process on the host is 1 hop away; a container on Docker's
  bridge network is one hop further: "In a container environment, if the hop limit is 1, the
  IMDSv2 response does not return because going to the container is considered an additional
  network hop" (Amazon EC2 User Guide, "Retrieve instance metadata", Considerations). A
  container with `network_mode: host` shares the host's interface: 1 hop.
- **HttpTokens** (default `optional`): with `required` every read needs an IMDSv2 token; with
  `optional` a tokenless IMDSv1 read also succeeds. The AWS SDKs "use IMDSv2 calls by default.
  If the IMDSv2 call receives no response, the SDK retries the call and, if still unsuccessful,
  uses IMDSv1" (same Considerations): so a container whose token PUT response is dropped still
  gets credentials when tokens are optional (botocore's InstanceMetadataFetcher: a read
  timeout on the token PUT means no token, then a tokenless GET), and gets none when they are
  required.
- **InstanceMetadataTags** (default `disabled`): `tags/instance` is "only available if you
  explicitly allow access to tags in instance metadata" (EC2 User Guide, "Instance metadata
  categories"; "Enable access to tags in instance metadata").
- Credentials (`iam/security-credentials/<role>`) exist only on an instance with an IAM
  instance profile; they are a session of the profile's role named after the instance id.

MetadataService serves the part a task reads over HTTP: the IMDSv2 token (`PUT
/latest/api/token`, TTL 1-21,600 s in `X-aws-ec2-metadata-token-ttl-seconds`), `instance-id`,
and the Spot interruption notice `spot/instance-action`, absent (404) until the instance is
marked interrupted, then `{"action": ..., "time": ...}` (EC2 User Guide, "Spot Instance
interruption notices"; "Use the Instance Metadata Service to access instance metadata"). Each
instance has its own base URL, `http://127.0.0.1:<port>/<instance-id>/`, as each instance has
its own 169.254.169.254. A caller whose token PUT would not come back (the rules above) gets
403 at once, where AWS drops the response and the caller waits for its timeout.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Hops from the instance's interface to a process on the host, and to a container on
#: Docker's default bridge network (one more).
HOST_HOPS = 1
BRIDGE_HOPS = 2


@dataclass(frozen=True)
class MetadataOptions:
    """An instance's metadata options, with EC2's defaults for what the template leaves out."""

    http_endpoint: str = "enabled"
    http_tokens: str = "optional"
    hop_limit: int = 1
    instance_metadata_tags: str = "disabled"

    @classmethod
    def from_api(cls, options: dict[str, Any] | None) -> MetadataOptions:
        """From a launch template's (or an instance's) `MetadataOptions` as the EC2 API has
        them."""
        options = options or {}
        default = cls()
        return cls(
            http_endpoint=options.get("HttpEndpoint") or default.http_endpoint,
            http_tokens=options.get("HttpTokens") or default.http_tokens,
            hop_limit=int(options.get("HttpPutResponseHopLimit") or default.hop_limit),
            instance_metadata_tags=options.get("InstanceMetadataTags")
            or default.instance_metadata_tags,
        )


@dataclass(frozen=True)
class Network:
    """Where a task container sits, read from its compose file."""

    mode: str  # "host" or "bridge"
    hops: int

    def describe(self) -> str:
        return "the compose host network" if self.mode == "host" else "the compose bridge network"


def container_network(network_mode: str) -> Network:
    """Where a container with compose's `network_mode` sits: `host` is the host's own
    interface (1 hop); `bridge` (compose's default) is Docker's default bridge (2 hops)."""
    if network_mode == "host":
        return Network("host", HOST_HOPS)
    if network_mode == "bridge":
        return Network("bridge", BRIDGE_HOPS)
    raise ValueError(
        f"network_mode {network_mode} is not modelled by the local EC2 agent (host or bridge)"
    )


@dataclass(frozen=True)
class Access:
    """Whether a caller gets something from instance metadata, and if not, why not."""

    granted: bool
    reason: str = ""


def metadata_reachable(options: MetadataOptions, hops: int, caller: str) -> Access:
    """Whether `caller`, `hops` away, can read instance metadata at all (a token, or a
    tokenless read where tokens are optional)."""
    if options.http_endpoint != "enabled":
        return Access(
            False,
            f"the launch template's MetadataOptions.HttpEndpoint is {options.http_endpoint}, "
            f"so {caller} cannot read instance metadata",
        )
    if hops <= options.hop_limit:
        return Access(True)
    needs = (
        f"IMDSv2 token PUT needs {hops} hops from {caller} but the launch template's "
        f"HttpPutResponseHopLimit is {options.hop_limit}"
    )
    if options.http_tokens == "optional":
        return Access(True, needs + ": it falls back to IMDSv1 (HttpTokens optional)")
    return Access(False, needs + " and HttpTokens is required (no IMDSv1 fallback)")


#: Why there are no credentials at any distance.
NO_ROLE = "the instance has no IAM instance profile with a role"


def container_credentials(options: MetadataOptions, network: Network, role: str | None) -> Access:
    """Whether the task container gets its instance profile role's credentials from IMDS."""
    if not role:
        return Access(False, NO_ROLE)
    return metadata_reachable(options, network.hops, network.describe())


def host_credentials(options: MetadataOptions, role: str | None) -> Access:
    """Whether a process on the host (the Docker daemon's awslogs driver) gets the instance
    profile role's credentials."""
    if not role:
        return Access(False, NO_ROLE)
    return metadata_reachable(options, HOST_HOPS, "the host")


def boot_script_reads(options: MetadataOptions, paths: list[str]) -> Access:
    """Whether the boot script, on the host, can read every metadata path it asks for."""
    reachable = metadata_reachable(options, HOST_HOPS, "the boot script")
    if not reachable.granted:
        return reachable
    tags = [p for p in paths if p.startswith("tags/instance/")]
    if tags and options.instance_metadata_tags != "enabled":
        return Access(
            False,
            f"the boot script reads {tags[0]} but the launch template's "
            f"InstanceMetadataTags is {options.instance_metadata_tags}",
        )
    return Access(True)


#: IMDSv2's token TTL bounds, in seconds.
TOKEN_TTL_RANGE = (1, 21_600)


class _QuietServer(ThreadingHTTPServer):
    """A task killed mid-request resets its connection: that is the fault under test, not
    an error of the service (socketserver would print a traceback for each)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@dataclass
class _Instance:
    reach: Access  # whether the task container reaches IMDS at all
    tokens_required: bool
    notice: dict[str, str] | None = None
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)


class MetadataService:
    """IMDS for the local task processes: one HTTP server, one base URL per instance."""

    def __init__(self) -> None:
        self._instances: dict[str, _Instance] = {}
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="instance-metadata", daemon=True
        )

    def start(self) -> MetadataService:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def endpoint(self, instance_id: str) -> str:
        """The base URL the instance's processes read metadata at (botocore's
        AWS_EC2_METADATA_SERVICE_ENDPOINT)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/{instance_id}/"

    def register(self, instance_id: str, reach: Access, tokens_required: bool) -> None:
        with self._lock:
            self._instances[instance_id] = _Instance(reach, tokens_required)

    def forget(self, instance_id: str) -> None:
        with self._lock:
            self._instances.pop(instance_id, None)

    def interrupt(self, instance_id: str, action: str, at: str) -> None:
        """Serve the Spot interruption notice: EC2 will `action` the instance at `at`."""
        with self._lock:
            self._instances[instance_id].notice = {"action": action, "time": at}

    def answer(self, method: str, path: str, headers: Any) -> tuple[int, str]:
        """(HTTP status, body) for a request to `path` (`/<instance-id>/latest/...`)."""
        instance_id, _, rest = path.lstrip("/").partition("/")
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None:
                return 404, "no such instance"
            if not instance.reach.granted:
                return 403, instance.reach.reason
            if method == "PUT" and rest == "latest/api/token":
                return self._token(instance, headers.get("X-aws-ec2-metadata-token-ttl-seconds"))
            if method != "GET" or not rest.startswith("latest/meta-data/"):
                return 404, "Not Found"
            token = headers.get("X-aws-ec2-metadata-token")
            valid = token is not None and instance.tokens.get(token, 0.0) > time.monotonic()
            if (token is not None or instance.tokens_required) and not valid:
                return 401, "Unauthorized"
            item = rest.removeprefix("latest/meta-data/")
            if item == "instance-id":
                return 200, instance_id
            if item == "spot/instance-action" and instance.notice:
                return 200, json.dumps(instance.notice)
            return 404, "Not Found"

    @staticmethod
    def _token(instance: _Instance, ttl: str | None) -> tuple[int, str]:
        try:
            seconds = int(ttl or "")
        except ValueError:
            seconds = 0
        if not TOKEN_TTL_RANGE[0] <= seconds <= TOKEN_TTL_RANGE[1]:
            return 400, "Bad Request"
        token = secrets.token_urlsafe(32)
        instance.tokens[token] = time.monotonic() + seconds
        return 200, token

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _respond(self) -> None:
                status, body = service.answer(self.command, self.path, self.headers)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = _respond

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the task's own log says what it read

        return Handler
