"""The local Lambda worker honours a function's Layers as Lambda does (moto stores, we serve),
the deployment gives every function and its `live` version the template's layer, and a local
Lambda sees only its package, its layers and the runtime's boto3."""

from __future__ import annotations

import inspect
import io
import json
import sys
import types
import uuid
import zipfile

from moto.awslambda.models import LambdaFunction, LayerVersion, lambda_backends
from moto.core import DEFAULT_ACCOUNT_ID

from bisonflow.deploy.packaging import (
    FUNCTIONS,
    LAMBDA_ARCHITECTURE,
    LAMBDA_RUNTIME,
    function_zip,
    handler_of,
    layer_zip,
)
from bisonflow.local.lambdas import worker as lambda_worker
from bisonflow.local.runtime import LocalRuntime

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

IMPORTS = """
import importlib
def handler(event, context):
    found = {}
    for name in event["modules"]:
        try:
            importlib.import_module(name)
            found[name] = "imported"
        except ModuleNotFoundError as exc:
            found[name] = str(exc)
    return found
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


def _invoke(
    runtime: LocalRuntime, name: str, event: object, qualifier: str = "$LATEST"
) -> tuple[dict, str | None]:
    response = runtime.clients["lambda"].invoke(
        FunctionName=name, Qualifier=qualifier, Payload=json.dumps(event).encode()
    )
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def test_layer_targets_exist(runtime: LocalRuntime) -> None:
    """What the worker reads of moto's layers; fails here if a moto upgrade moves it."""
    owner, name = lambda_worker.LAYER_LOOKUP.owner(), lambda_worker.LAYER_LOOKUP.name
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
        LayerName="layercheck-library", Content={"ZipFile": layer_zip()}
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


def _deployed_layer(runtime: LocalRuntime) -> str:
    """The newest version of the deployed stack's library layer."""
    assert runtime.deployment
    versions = runtime.clients["lambda"].list_layer_versions(
        LayerName=f"{runtime.deployment.stack_name}-library"
    )["LayerVersions"]
    return max(versions, key=lambda v: v["Version"])["LayerVersionArn"]


def test_deployed_functions_and_their_live_versions_carry_the_library_layer(
    runtime: LocalRuntime,
) -> None:
    """The template's LayerName, runtimes and architecture, and every function's Layers and
    Architectures, in the function and in the version its `live` alias (what the state
    machine invokes) names."""
    assert runtime.deployment
    stack, awslambda = runtime.deployment.stack_name, runtime.clients["lambda"]
    layer = _deployed_layer(runtime)
    assert layer.startswith(f"arn:aws:lambda:us-east-1:{DEFAULT_ACCOUNT_ID}:layer:{stack}-library:")
    name, number = layer.rsplit(":", 2)[-2:]
    described = awslambda.get_layer_version(LayerName=name, VersionNumber=int(number))
    assert described["CompatibleRuntimes"] == [LAMBDA_RUNTIME]
    assert described["CompatibleArchitectures"] == [LAMBDA_ARCHITECTURE]
    assert described["Description"].startswith("bisonflow library")
    backend = lambda_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    for function in FUNCTIONS:
        name = f"{stack}-{function}"
        alias = awslambda.get_alias(FunctionName=name, Name="live")
        latest = awslambda.get_function_configuration(FunctionName=name)
        live = awslambda.get_function_configuration(FunctionName=name, Qualifier="live")
        assert live["Version"] == alias["FunctionVersion"] != "$LATEST"
        for config in (latest, live):
            assert [entry["Arn"] for entry in config["Layers"]] == [layer], name
            assert config["Architectures"] == [LAMBDA_ARCHITECTURE], name
        # What an invocation through the alias runs: moto's copy of that version.
        assert [entry["Arn"] for entry in backend.get_function(name, "live").layers] == [layer]


def test_a_handler_imports_only_its_package_its_layers_and_boto3(runtime: LocalRuntime) -> None:
    """Invoked through Lambda's Invoke (on a `live` alias, as the state machine does): the
    deployed layer gives the library and jsonschema but not numpy or duckdb, which this venv
    has; without layers, a function has only the standard library and boto3."""
    awslambda = runtime.clients["lambda"]
    modules = ["boto3", "bisonflow.schemas", "jsonschema", "numpy", "duckdb", "imports"]
    missing = {m: f"No module named '{m.split('.')[0]}'" for m in modules}
    code = _zip({"imports.py": IMPORTS})
    layered = _create(runtime, code, "imports.handler", [_deployed_layer(runtime)])
    version = awslambda.publish_version(FunctionName=layered)["Version"]
    awslambda.create_alias(FunctionName=layered, Name="live", FunctionVersion=version)
    found, error = _invoke(runtime, layered, {"modules": modules}, qualifier="live")
    assert error is None, found
    imported = {m: "imported" for m in ("boto3", "bisonflow.schemas", "jsonschema", "imports")}
    assert found == {**imported, "numpy": missing["numpy"], "duckdb": missing["duckdb"]}

    bare = _create(runtime, code, "imports.handler", [])
    found, error = _invoke(runtime, bare, {"modules": modules})
    assert error is None, found
    assert found == {**missing, "boto3": "imported", "imports": "imported"}


def test_a_code_hash_with_slashes_stays_one_directory_in_the_work_directory(
    runtime: LocalRuntime,
) -> None:
    """CodeSha256 is base64, which may hold "/" and begin with it (the suite once unpacked a
    function at /<hash>): the code directory is one entry under the work directory."""
    assert runtime.emulator and runtime.emulator.pool
    pool = runtime.emulator.pool
    fn = types.SimpleNamespace(
        function_name="slashes", code_sha_256="/ab+c/d=", code_bytes=_zip({"m.py": ""})
    )
    unpacked = pool._code_dir(fn)  # type: ignore[arg-type]
    assert unpacked.parent == pool.workdir / "lambda" / "slashes"
    assert unpacked.name == "_ab-c_d=" and (unpacked / "m.py").is_file()
