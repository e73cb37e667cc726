"""The local Lambda worker honours a function's Layers as Lambda does (moto stores, we serve)."""

from __future__ import annotations

import inspect
import io
import json
import sys
import uuid
import zipfile

from moto.awslambda.models import LambdaFunction, LayerVersion, lambda_backends
from moto.core import DEFAULT_ACCOUNT_ID

from bisonflow.local import lambda_worker
from bisonflow.local.runtime import LocalRuntime
from bisonflow.packaging import LAMBDA_RUNTIME, function_zip, handler_of, layer_zip

PROBE = """
import importlib.util, sys
def handler(event, context):
    import shared
    return {
        "shared": shared.WHO,
        "boto3": importlib.util.find_spec("boto3") is not None,
        "numpy": importlib.util.find_spec("numpy") is not None,
        "path": sys.path[:4],
    }
"""


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


def _publish(runtime: LocalRuntime, name: str, files: dict[str, str]) -> str:
    return runtime.clients["lambda"].publish_layer_version(
        LayerName=name, Content={"ZipFile": _zip(files)}, CompatibleRuntimes=[LAMBDA_RUNTIME]
    )["LayerVersionArn"]


def _create(runtime: LocalRuntime, code: bytes, handler: str, layers: list[str]) -> str:
    name = f"layercheck-{uuid.uuid4().hex[:8]}"
    role = runtime.clients["lambda"].get_function_configuration(
        FunctionName="bisonflow-check_gbif"
    )["Role"]
    runtime.clients["lambda"].create_function(
        FunctionName=name,
        Runtime=LAMBDA_RUNTIME,
        Role=role,
        Handler=handler,
        Code={"ZipFile": code},
        Timeout=30,
        Layers=layers,
    )
    return name


def _invoke(runtime: LocalRuntime, name: str, event: object) -> tuple[dict, str | None]:
    response = runtime.clients["lambda"].invoke(
        FunctionName=name, Payload=json.dumps(event).encode()
    )
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def test_layer_targets_exist(runtime: LocalRuntime) -> None:
    """What the worker reads of moto's layers; fails here if a moto upgrade moves it."""
    owner, name = lambda_worker.LAYER_LOOKUP
    assert list(inspect.signature(getattr(owner, name)).parameters) == ["self", "layer_version_arn"]
    arn = _publish(runtime, "seamcheck-layer", {"python/shared.py": "WHO = 1\n"})
    function = _create(runtime, _zip({"probe.py": PROBE}), "probe.handler", [arn])
    backend = lambda_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    fn: LambdaFunction = backend.get_function(function)
    assert [layer["Arn"] for layer in fn.layers] == [arn]
    version = getattr(backend, name)(arn)
    assert isinstance(version, LayerVersion)
    for attribute in lambda_worker.LAYER_ATTRIBUTES:
        assert getattr(version, attribute), attribute
    assert zipfile.ZipFile(io.BytesIO(version.code_bytes)).namelist() == ["python/shared.py"]


def test_layers_merge_in_order_after_the_function_code(runtime: LocalRuntime) -> None:
    first = _publish(runtime, "first", {"python/shared.py": "WHO = 'first'\n"})
    second = _publish(runtime, "second", {"python/shared.py": "WHO = 'second'\n"})
    code = _zip({"probe.py": PROBE})
    layered, error = _invoke(runtime, _create(runtime, code, "probe.handler", [first, second]), {})
    assert error is None, layered
    # Later layers overwrite earlier ones in /opt, as on Lambda.
    assert layered["shared"] == "second"
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    task_root, site, opt_python, runtime_site = layered["path"]
    assert "/lambda/layercheck-" in task_root
    assert site.endswith(f"/python/lib/{python}/site-packages") and opt_python.endswith("/python")
    assert runtime_site.endswith("/lambda-runtime")
    # Beside the standard library only the runtime's boto3 family: not this venv's numpy.
    assert layered["boto3"] is True and layered["numpy"] is False

    own = _zip({"probe.py": PROBE, "shared.py": "WHO = 'own code'\n"})
    shadowed, _ = _invoke(runtime, _create(runtime, own, "probe.handler", [second]), {})
    assert shadowed["shared"] == "own code", "the deployment package comes before the layers"


def test_a_missing_layer_module_fails_as_on_lambda(runtime: LocalRuntime) -> None:
    empty = _publish(runtime, "empty", {"python/other.py": ""})
    payload, error = _invoke(
        runtime, _create(runtime, _zip({"probe.py": PROBE}), "probe.handler", [empty]), {}
    )
    assert error == "Handled"
    assert payload["errorType"] == "ModuleNotFoundError"
    assert payload["errorMessage"] == "No module named 'shared'"


def test_a_function_zip_runs_on_the_library_layer(runtime: LocalRuntime) -> None:
    """The real artefacts: check_gbif's zip on the layer built for this interpreter, with the
    deployed function's configuration, reaching S3 through the runtime's boto3."""
    awslambda = runtime.clients["lambda"]
    arn = awslambda.publish_layer_version(
        LayerName="bisonflow-library", Content={"ZipFile": layer_zip()}
    )["LayerVersionArn"]
    deployed = awslambda.get_function_configuration(FunctionName="bisonflow-check_gbif")
    name = _create(runtime, function_zip("check_gbif"), handler_of("check_gbif"), [arn])
    awslambda.update_function_configuration(FunctionName=name, Environment=deployed["Environment"])
    payload, error = _invoke(runtime, name, {"month": "2026-13"})
    assert error == "Handled"
    assert payload["errorType"] == "SchemaViolation"
    assert payload["errorMessage"].startswith('check_gbif.input: field $.month = "2026-13"')
    payload, error = _invoke(runtime, name, {"month": "2001-01"})
    assert error is None, payload
    assert payload["snapshot_exists"] is False and payload["already_processed"] is False
