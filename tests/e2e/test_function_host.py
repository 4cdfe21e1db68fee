"""The built-in function host behind the `lambda` management API.

Functions are zipped at test time from `functions/` (a stdlib custom runtime used as
`bootstrap`, and a Python handler for awslambdaric), created and driven with the AWS CLI
and boto3 against a real `apigw`, on both backends (`gw`), and on a dedicated standalone
with a concurrency limit of 2 and the test venv's Python (`fh`).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
import threading
import time
import zipfile
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import (
    DEFAULT_REGION,
    Launch,
    ServerProcess,
    Tenant,
    aws_error,
    free_port,
    make_client,
    read_admin_token,
    signed_request,
    uid,
)

HERE = Path(__file__).parent / "functions"
ROLE = "arn:aws:iam::123456789012:role/lambda-role"


def make_zip(files: dict[str, tuple[str, int]]) -> bytes:
    """A zip of {name: (text, mode)}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (text, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
    return buf.getvalue()


def runtime_zip(version: str = "v1") -> bytes:
    text = (HERE / "runtime.py").read_text().replace('VERSION = "v1"', f'VERSION = "{version}"')
    return make_zip({"bootstrap": (text, 0o755)})


def lambda_client(endpoint: str, tenant: Tenant, **kw):
    return boto3.session.Session().client(
        "lambda",
        endpoint_url=endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=tenant.access_key,
        aws_secret_access_key=tenant.secret_key,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=60, **kw),
    )


def lambda_cli(endpoint: str, tenant: Tenant, *args: str, cwd: Path | None = None):
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=tenant.access_key,
        AWS_SECRET_ACCESS_KEY=tenant.secret_key,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_MAX_ATTEMPTS="1",
        AWS_PAGER="",
    )
    argv = [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--region", DEFAULT_REGION,
            "lambda", *args, "--output", "json"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd=cwd)


def cli_json(gw_url, tenant, *args, cwd=None):
    r = lambda_cli(gw_url, tenant, *args, cwd=cwd)
    assert r.returncode == 0, f"aws lambda {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return json.loads(r.stdout) if r.stdout.strip() else None


def create(client, name: str, zip_bytes: bytes | None = None, **kw):
    args = dict(FunctionName=name, Runtime="provided.al2023", Handler="bootstrap", Role=ROLE,
                Code={"ZipFile": zip_bytes or runtime_zip()})  # fmt: skip
    args.update(kw)
    return client.create_function(**args)


def invoke_json(client, name: str, event, **kw):
    r = client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kw)
    return r, json.loads(r["Payload"].read())


def arn(account: str, name: str) -> str:
    return f"arn:aws:lambda:{DEFAULT_REGION}:{account}:function:{name}"


@pytest.fixture
def lam(gw):
    return lambda_client(gw.mgmt_url, gw.tenant_a)


@pytest.fixture
def fn(lam):
    """A fresh custom-runtime function of tenant A, deleted afterwards."""
    name = uid("fn")
    create(lam, name)
    yield name
    try:
        lam.delete_function(FunctionName=name)
    except ClientError:
        pass


# --------------------------------------------------------------------------------------------
# The AWS CLI, end to end
# --------------------------------------------------------------------------------------------


def test_cli_lifecycle(gw, tmp_path):
    t = gw.tenant_a
    name = uid("cli")
    (tmp_path / "f.zip").write_bytes(runtime_zip("v1"))
    created = cli_json(gw.mgmt_url, t, "create-function", "--function-name", name, "--runtime", "provided.al2023",
                       "--handler", "bootstrap", "--role", ROLE, "--zip-file", "fileb://f.zip",
                       "--environment", "Variables={GREETING=hello}", cwd=tmp_path)  # fmt: skip
    zip_bytes = (tmp_path / "f.zip").read_bytes()
    import hashlib

    assert created["FunctionName"] == name
    assert created["FunctionArn"] == arn(t.account_id, name)
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert created["CodeSize"] == len(zip_bytes)
    assert (created["Timeout"], created["MemorySize"], created["Version"]) == (3, 128, "$LATEST")
    assert (created["State"], created["LastUpdateStatus"], created["PackageType"]) == ("Active", "Successful", "Zip")
    assert created["Environment"] == {"Variables": {"GREETING": "hello"}}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", created["LastModified"]), created

    got = cli_json(gw.mgmt_url, t, "get-function", "--function-name", name)
    assert got["Configuration"] == created
    assert cli_json(gw.mgmt_url, t, "get-function-configuration", "--function-name", arn(t.account_id, name)) == created
    listed = cli_json(gw.mgmt_url, t, "list-functions")
    assert name in [f["FunctionName"] for f in listed["Functions"]]

    # invoke with the log tail
    out = tmp_path / "out.json"
    r = cli_json(gw.mgmt_url, t, "invoke", "--function-name", name, "--payload", '{"hello": "world"}',
                 "--log-type", "Tail", str(out))  # fmt: skip
    assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "$LATEST" and "FunctionError" not in r, r
    body = json.loads(out.read_text())
    assert body["event"] == {"hello": "world"} and body["version"] == "v1"
    assert body["env"]["GREETING"] == "hello" and body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert body["functionArn"] == arn(t.account_id, name)
    log = base64.b64decode(r["LogResult"]).decode()
    assert f"START RequestId: {body['requestId']} Version: $LATEST" in log, log
    assert f"handling {body['requestId']} action=None" in log, log
    assert f"REPORT RequestId: {body['requestId']}" in log, log

    # configuration update reaches the next invocation
    upd = cli_json(gw.mgmt_url, t, "update-function-configuration", "--function-name", name, "--timeout", "10",
                   "--memory-size", "256", "--description", "changed",
                   "--environment", "Variables={GREETING=bonjour}")  # fmt: skip
    assert (upd["Timeout"], upd["MemorySize"], upd["Description"]) == (10, 256, "changed")
    assert upd["RevisionId"] != created["RevisionId"]
    cli_json(gw.mgmt_url, t, "invoke", "--function-name", name, "--payload", "{}", str(out))
    body = json.loads(out.read_text())
    assert body["env"]["GREETING"] == "bonjour" and body["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"

    # new code
    (tmp_path / "g.zip").write_bytes(runtime_zip("v2"))
    code = cli_json(gw.mgmt_url, t, "update-function-code", "--function-name", name, "--zip-file", "fileb://g.zip",
                    cwd=tmp_path)  # fmt: skip
    assert code["CodeSha256"] != created["CodeSha256"]
    cli_json(gw.mgmt_url, t, "invoke", "--function-name", name, "--payload", "{}", str(out))
    assert json.loads(out.read_text())["version"] == "v2"

    # an Event invocation runs in the background
    marker = tmp_path / "event-ran"
    r = cli_json(gw.mgmt_url, t, "invoke", "--function-name", name, "--invocation-type", "Event", "--payload",
                 json.dumps({"action": "touch", "path": str(marker)}), str(out))  # fmt: skip
    assert r["StatusCode"] == 202, r
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline, "the Event invocation never ran"
        time.sleep(0.1)  # polling for the background invocation's side effect

    cli_json(gw.mgmt_url, t, "delete-function", "--function-name", name)
    r = lambda_cli(gw.mgmt_url, t, "get-function", "--function-name", name)
    assert r.returncode != 0
    expected = (f"An error occurred (ResourceNotFoundException) when calling the GetFunction operation: "
                f"Function not found: {arn(t.account_id, name)}")  # fmt: skip
    assert expected in r.stderr, r.stderr


def test_list_functions_pages(gw, lam):
    names = sorted(uid("page") for _ in range(3))
    for n in names:
        create(lam, n)
    try:
        seen, marker = [], None
        while True:
            kw = {"MaxItems": 1}
            if marker:
                kw["Marker"] = marker
            page = lam.list_functions(**kw)
            assert len(page["Functions"]) <= 1
            seen += [f["FunctionName"] for f in page["Functions"]]
            marker = page.get("NextMarker")
            if not marker:
                break
        assert [n for n in seen if n in names] == names
        assert seen == sorted(seen)
        paginated = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate() for f in p["Functions"]]
        assert set(names) <= set(paginated)
    finally:
        for n in names:
            lam.delete_function(FunctionName=n)


# --------------------------------------------------------------------------------------------
# Error shapes
# --------------------------------------------------------------------------------------------


def test_not_found_shape_on_the_wire(gw):
    resp = signed_request(gw, "GET", "/2015-03-31/functions/nope", service="lambda")
    assert resp.status_code == 404
    assert resp.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert resp.json() == {"Type": "User", "Message": f"Function not found: {arn(gw.tenant_a.account_id, 'nope')}"}


def test_management_errors(gw, lam, fn):
    with aws_error("ResourceConflictException", 409, message=f"Function already exist: {fn}"):
        create(lam, fn)
    with aws_error("InvalidParameterValueException", 400, mentions="Could not unzip uploaded file"):
        create(lam, uid("bad"), b"this is not a zip")
    with aws_error("ValidationException", 400, mentions="less than or equal to 900"):
        create(lam, uid("bad"), Timeout=901)
    with aws_error("InvalidParameterValueException", 400, mentions="less than or equal to 10240"):
        create(lam, uid("bad"), MemorySize=10241)
    with aws_error("InvalidParameterValueException", 400, mentions="Reserved keys used in this request: AWS_REGION"):
        create(lam, uid("bad"), Environment={"Variables": {"AWS_REGION": "x"}})
    with aws_error("InvalidParameterValueException", 400, mentions="nodejs20.x is not supported"):
        create(lam, uid("bad"), Runtime="nodejs20.x")
    with aws_error("ValidationException", 400, mentions="at 'role'"):
        create(lam, uid("bad"), Role="not-a-role")
    with aws_error("ResourceNotFoundException", 404, message=f"Function not found: {arn(gw.tenant_a.account_id, 'missing')}"):
        lam.update_function_configuration(FunctionName="missing", Timeout=5)
    with aws_error("ResourceNotFoundException", 404):
        lam.invoke(FunctionName="missing", Payload=b"{}")
    with aws_error("ResourceNotFoundException", 404):
        lam.get_function(FunctionName=fn, Qualifier="7")
    with aws_error("PreconditionFailedException", 412):
        lam.update_function_configuration(FunctionName=fn, Timeout=5, RevisionId="stale")
    with aws_error("InvalidRequestContentException", 400, prefix="Could not parse request body into json"):
        lam.invoke(FunctionName=fn, Payload=b"{not json")
    with aws_error("RequestTooLargeException", 413,
                   message="Request must be smaller than 6291456 bytes for the InvokeFunction operation"):
        lam.invoke(FunctionName=fn, Payload=json.dumps({"x": "y" * 6_300_000}).encode())
    assert lam.invoke(FunctionName=fn, InvocationType="DryRun")["StatusCode"] == 204


# --------------------------------------------------------------------------------------------
# Function errors: raised, timed out, crashed
# --------------------------------------------------------------------------------------------


def test_function_errors(gw, lam, fn):
    r, body = invoke_json(lam, fn, {"action": "error"})
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert body == {"errorMessage": "something broke", "errorType": "BrokenError", "stackTrace": []}

    r, body = invoke_json(lam, fn, {"action": "crash"})
    assert r["FunctionError"] == "Unhandled"
    rid = r["ResponseMetadata"]["HTTPHeaders"].get("x-amzn-requestid")
    assert body["errorType"] == "Runtime.ExitError"
    assert re.fullmatch(r"RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 3",
                        body["errorMessage"]), body  # fmt: skip
    assert rid

    # a crash does not break the function: the next call starts a new instance
    r, body = invoke_json(lam, fn, {"n": 1})
    assert "FunctionError" not in r and body["event"] == {"n": 1}


def test_timeout(gw, lam, fn):
    lam.update_function_configuration(FunctionName=fn, Timeout=1)
    started = time.monotonic()
    r, body = invoke_json(lam, fn, {"action": "sleep", "seconds": 20})
    took = time.monotonic() - started
    assert took < 8, took
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(r"RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds", body["errorMessage"]), body


def test_missing_bootstrap_is_invalid_entrypoint(gw, lam):
    name = uid("noboot")
    create(lam, name, make_zip({"handler.sh": ("echo hi", 0o755)}))
    try:
        r, body = invoke_json(lam, name, {})
        assert r["FunctionError"] == "Unhandled"
        assert body["errorType"] == "Runtime.InvalidEntrypoint"
        assert "Couldn't find valid bootstrap(s)" in body["errorMessage"], body
    finally:
        lam.delete_function(FunctionName=name)


# --------------------------------------------------------------------------------------------
# Tenants and the service principal
# --------------------------------------------------------------------------------------------


def test_tenant_isolation(gw, lam, fn):
    a = gw.tenant_a
    b = lambda_client(gw.mgmt_url, gw.tenant_b)
    for ref in (fn, arn(a.account_id, fn), f"{a.account_id}:function:{fn}"):
        with aws_error("ResourceNotFoundException", 404):
            b.get_function(FunctionName=ref)
        with aws_error("ResourceNotFoundException", 404):
            b.invoke(FunctionName=ref, Payload=b"{}")
        with aws_error("ResourceNotFoundException", 404):
            b.update_function_configuration(FunctionName=ref, Timeout=9)
        with aws_error("ResourceNotFoundException", 404):
            b.delete_function(FunctionName=ref)
    assert fn not in [f["FunctionName"] for f in b.list_functions()["Functions"]]
    # B may use the same name: a separate function with its own code
    create(b, fn, runtime_zip("tenant-b"))
    try:
        _, mine = invoke_json(lam, fn, {})
        _, theirs = invoke_json(b, fn, {})
        assert (mine["version"], theirs["version"]) == ("v1", "tenant-b")
        assert theirs["functionArn"] == arn(gw.tenant_b.account_id, fn)
    finally:
        b.delete_function(FunctionName=fn)
    assert lam.get_function(FunctionName=fn)["Configuration"]["FunctionName"] == fn


def test_service_key(gw, lam, fn):
    key = gw.admin_json("service-key", "create", "--description", "e2e data plane")
    assert key["accessKeyId"] and key["secretAccessKey"] and key["description"] == "e2e data plane"
    listed = gw.admin_json("service-key", "list")["serviceKeys"]
    assert key["accessKeyId"] in [k["accessKeyId"] for k in listed]
    assert "secretAccessKey" not in json.dumps(listed)
    svc = Tenant("service", "", key["accessKeyId"], key["secretAccessKey"])
    s = lambda_client(gw.mgmt_url, svc)
    try:
        _, body = invoke_json(s, arn(gw.tenant_a.account_id, fn), {"via": "service"})
        assert body["event"] == {"via": "service"}
        # anything but Invoke by full ARN is refused
        with aws_error("AccessDeniedException", 403):
            s.invoke(FunctionName=fn, Payload=b"{}")
        with aws_error("AccessDeniedException", 403):
            s.invoke(FunctionName=f"{gw.tenant_a.account_id}:function:{fn}", Payload=b"{}")
        with aws_error("AccessDeniedException", 403):
            s.get_function(FunctionName=arn(gw.tenant_a.account_id, fn))
        with aws_error("AccessDeniedException", 403):
            s.list_functions()
        with aws_error("AccessDeniedException", 403):
            make_client(gw.mgmt_url, svc).get_rest_apis()
        # a tenant's ARN that does not exist answers as missing
        with aws_error("ResourceNotFoundException", 404):
            s.invoke(FunctionName=arn(gw.tenant_b.account_id, fn), Payload=b"{}")
    finally:
        gw.admin_json("service-key", "delete", "--access-key-id", key["accessKeyId"])
    with aws_error("UnrecognizedClientException", 403):
        s.invoke(FunctionName=arn(gw.tenant_a.account_id, fn), Payload=b"{}")


# --------------------------------------------------------------------------------------------
# A dedicated standalone: concurrency limit 2, the venv's Python for awslambdaric
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fh(tmp_path_factory):
    base = tmp_path_factory.mktemp("fh")
    data_dir = base / "data"
    mgmt_port = free_port()
    grpc_port = free_port()
    argv = [
        os.environ.get("APIGW_BIN") or os.path.expanduser("~/.cache/apigw-target/debug/apigw"), "standalone",
        "--data-dir", str(data_dir), "--host", "127.0.0.1",
        "--data-plane-port", str(free_port()), "--management-port", str(mgmt_port),
        "--grpc-port", str(grpc_port), "--metrics-port", str(free_port()),
        "--function-concurrency", "2", "--function-python", sys.executable,
    ]  # fmt: skip
    proc = ServerProcess("fh", argv, base / "logs", mgmt_port, cwd=base)
    proc.start()
    try:
        proc.wait_ready()
        token = read_admin_token(data_dir, proc)
        yield Launch("standalone", proc, mgmt_port, grpc_port, token, data_dir=data_dir)
    finally:
        proc.stop()


def dev_client(fh):
    return lambda_client(fh.mgmt_url, Tenant("dev", "000000000000", "test", "test"))


def test_concurrency_limit(fh):
    lam = dev_client(fh)
    name = uid("busy")
    create(lam, name, Timeout=30)
    results = []

    def slow():
        results.append(invoke_json(lam, name, {"action": "sleep", "seconds": 3}))

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # both slow invocations are running (instances start in well under a second)
    resp = signed_request(
        type("G", (), {"mgmt_url": fh.mgmt_url, "tenant": lambda self, t: Tenant("dev", "000000000000", "test", "test")})(),
        "POST", f"/2015-03-31/functions/{name}/invocations", {}, service="lambda",
    )  # fmt: skip
    assert resp.status_code == 429, resp.text
    assert resp.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert resp.headers.get("Retry-After")
    assert resp.json() == {"Type": "User", "message": "Rate Exceeded.",
                           "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}  # fmt: skip
    with aws_error("TooManyRequestsException", 429):
        lam.invoke(FunctionName=name, Payload=b"{}")
    for t in threads:
        t.join()
    assert all("FunctionError" not in r for r, _ in results), results
    r, _ = invoke_json(lam, name, {})
    assert r["StatusCode"] == 200
    lam.delete_function(FunctionName=name)


def test_python_handler_through_awslambdaric(fh, tmp_path):
    import importlib.util

    # awslambdaric is in tests/requirements.txt: its absence is a failure, not a skip.

    assert importlib.util.find_spec("awslambdaric"), "awslambdaric must be installed in the test venv"
    lam = dev_client(fh)
    name = uid("py")
    zip_bytes = make_zip({"app.py": ((HERE / "handler.py").read_text(), 0o644)})
    create(lam, name, zip_bytes, Runtime="python3.11", Handler="app.handler", MemorySize=256)
    try:
        r, body = invoke_json(lam, name, {"hello": "python"}, LogType="Tail")
        assert "FunctionError" not in r, body
        assert body["event"] == {"hello": "python"}
        assert body["functionName"] == name and int(body["memory"]) == 256
        assert body["arn"] == arn("000000000000", name)
        log = base64.b64decode(r["LogResult"]).decode()
        assert "python handler got {'hello': 'python'}" in log, log

        r, body = invoke_json(lam, name, {"fail": "no"})
        assert r["FunctionError"] == "Unhandled"
        assert body["errorType"] == "ValueError" and body["errorMessage"] == "handler refused: no", body

        # a handler that cannot be imported is an init error, as on Lambda
        lam.update_function_configuration(FunctionName=name, Handler="nosuchmodule.handler")
        r, body = invoke_json(lam, name, {})
        assert r["FunctionError"] == "Unhandled"
        assert body["errorType"] == "Runtime.ImportModuleError", body
    finally:
        lam.delete_function(FunctionName=name)
