"""Lambda integrations end to end: real functions (the Rust example built with `lambda_runtime` and
`aws_lambda_events`, and the Python one run by `awslambdaric`) created with the AWS CLI from a zip on
apigw's function host, wired to REST APIs with boto3, deployed, and called through the data plane —
in `apigw standalone` and on a control plane with a separate `apigw data-plane` node.

The Rust function deserialises our payload 1.0 event into the upstream `ApiGatewayProxyRequest`
and echoes both the parsed and the raw event, so each test compares what it sent with what a real
function saw, field by field.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import (
    APIGW_BIN,
    DEV_ACCOUNT,
    ServerProcess,
    Tenant,
    admin_json,
    free_port,
    launch_control_plane,
    launch_standalone,
    make_client,
    provision_tenant,
    shutdown,
    uid,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
REGION = "us-east-1"
INTERNAL_ERROR = b'{"message": "Internal server error"}'
CONCURRENCY = 2
PROPAGATION_TIMEOUT = 15.0


# --------------------------------------------------------------------------------------------
# Function code
# --------------------------------------------------------------------------------------------


def _examples_target_dir() -> Path:
    """The example's build is cached beside the gateway's (CARGO_TARGET_DIR, else the suite's)."""
    base = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/apigw-target")
    return Path(base) / "examples"


@pytest.fixture(scope="module")
def rust_zip(tmp_path_factory) -> bytes:
    """`examples/rust-echo` built (release) and zipped as a `provided.al2023` function."""
    target = _examples_target_dir()
    env = {**os.environ, "CARGO_TARGET_DIR": str(target)}
    r = subprocess.run(
        ["cargo", "build", "--release", "--manifest-path", str(EXAMPLES / "rust-echo" / "Cargo.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert r.returncode == 0, f"building the Rust example failed:\n{r.stderr[-4000:]}"
    path = tmp_path_factory.mktemp("rust-zip") / "echo.zip"
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16  # executable, as Lambda requires
        z.writestr(info, (target / "release" / "bootstrap").read_bytes())
    return path


@pytest.fixture(scope="module")
def python_zip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("python-zip") / "app.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.write(EXAMPLES / "python-echo" / "app.py", "app.py")
    return path


# --------------------------------------------------------------------------------------------
# A gateway with a function host
# --------------------------------------------------------------------------------------------


class Deployment:
    """A running apigw with a data plane to call and the tenant that owns the functions."""

    def __init__(self, mgmt_url: str, data_url: str, tenant: Tenant, procs: list[ServerProcess]):
        self.mgmt_url = mgmt_url
        self.data_url = data_url
        self.tenant = tenant
        self.procs = procs
        self.client = make_client(mgmt_url, tenant)

    def lambda_cli(self, *args: str, tenant: Tenant | None = None) -> dict:
        t = tenant or self.tenant
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=t.access_key,
            AWS_SECRET_ACCESS_KEY=t.secret_key,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )
        argv = [sys.executable, "-m", "awscli", "--endpoint-url", self.mgmt_url, "--region", REGION,
                "lambda", *args, "--output", "json"]  # fmt: skip
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, f"$ {' '.join(argv)}\nstdout: {r.stdout}\nstderr: {r.stderr}\n{self.logs()}"
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def create_function(self, zip_path: Path, runtime: str, handler: str, timeout: int = 3,
                        tenant: Tenant | None = None) -> str:  # fmt: skip
        name = uid("fn")
        t = tenant or self.tenant
        out = self.lambda_cli(
            "create-function",
            "--function-name", name,
            "--runtime", runtime,
            "--handler", handler,
            "--role", f"arn:aws:iam::{t.account_id}:role/e2e",
            "--timeout", str(timeout),
            "--zip-file", f"fileb://{zip_path}",
            tenant=t,
        )  # fmt: skip
        assert out["FunctionName"] == name, out
        assert out["FunctionArn"] == f"arn:aws:lambda:{REGION}:{t.account_id}:function:{name}", out
        return out["FunctionArn"]

    def call(self, api_id: str, path: str, method: str = "GET", stage: str = "prod", **kw) -> requests.Response:
        url = f"{self.data_url}/restapis/{api_id}/{stage}/_user_request_{path}"
        return requests.request(method, url, timeout=60, **kw)

    def logs(self) -> str:
        return "\n".join(p.logs() for p in self.procs)


def invocation_uri(function_arn: str) -> str:
    return f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def proxy_api(d: Deployment, function_arn: str, *, variables: dict | None = None,
              timeout_ms: int | None = None, client=None) -> str:  # fmt: skip
    """A REST API whose `ANY /{proxy+}` and `ANY /` are AWS_PROXY to `function_arn`, deployed to `prod`."""
    c = client or d.client
    api = c.create_rest_api(name=uid("lambda-api"), binaryMediaTypes=["image/png"])
    root = next(r for r in c.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
    greedy = c.create_resource(restApiId=api["id"], parentId=root["id"], pathPart="{proxy+}")
    extra = {"timeoutInMillis": timeout_ms} if timeout_ms else {}
    for resource in (root["id"], greedy["id"]):
        c.put_method(restApiId=api["id"], resourceId=resource, httpMethod="ANY", authorizationType="NONE")
        c.put_integration(
            restApiId=api["id"],
            resourceId=resource,
            httpMethod="ANY",
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=invocation_uri(function_arn),
            **extra,
        )
    c.create_deployment(restApiId=api["id"], stageName="prod", variables=variables or {})
    return api["id"]


def wait_served(d: Deployment, api_id: str, path: str = "/", method: str = "GET") -> None:
    """Config reaches the data plane asynchronously: wait until the API is routed."""
    deadline = time.monotonic() + PROPAGATION_TIMEOUT
    while time.monotonic() < deadline:
        r = d.call(api_id, path, method=method)
        if r.status_code != 403:
            return
        time.sleep(0.1)  # propagation polling
    raise AssertionError(f"API {api_id} not served after {PROPAGATION_TIMEOUT}s\n{d.logs()}")


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    base = tmp_path_factory.mktemp("lambda-standalone")
    l = launch_standalone(base, "lambda-standalone")
    # launch_standalone picks its ports; the data plane's is in the argv.
    data_port = l.proc.argv[l.proc.argv.index("--data-plane-port") + 1]
    # A dedicated process for the concurrency limit and the Python interpreter.
    l.proc.stop()
    l.proc.argv += ["--function-concurrency", str(CONCURRENCY), "--function-python", sys.executable]
    l.proc.start()
    l.proc.wait_ready()
    tenant = Tenant("dev", DEV_ACCOUNT, "test", "test")
    d = Deployment(l.mgmt_url, f"http://127.0.0.1:{data_port}", tenant, [l.proc])
    d.launch = l
    yield d
    shutdown(l)


@pytest.fixture(scope="module")
def echo_fn(standalone, rust_zip) -> str:
    return standalone.create_function(rust_zip, "provided.al2023", "bootstrap", timeout=2)


@pytest.fixture(scope="module")
def echo_api(standalone, echo_fn) -> str:
    # The function name comes from a stage variable.
    arn = echo_fn.rsplit(":", 1)[0] + ":${stageVariables.fn}"
    api_id = proxy_api(standalone, arn, variables={"fn": echo_fn.rsplit(":", 1)[1], "env": "e2e"})
    wait_served(standalone, api_id)
    return api_id


# --------------------------------------------------------------------------------------------
# The event, field by field
# --------------------------------------------------------------------------------------------

REQUEST_TIME = re.compile(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")


def echoed(r: requests.Response) -> tuple[dict, dict]:
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    body = r.json()
    return body["parsed"], body["raw"]


def test_rust_function_sees_the_event_we_sent(standalone, echo_api, echo_fn):
    before = int(time.time() * 1000)
    r = standalone.call(
        echo_api,
        "/hello/w%C3%B6rld?name=me&multi=1&multi=2&empty=",
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "e2e-agent/1", "X-Custom": "v"},
        data=b'{"a": 1}',
    )
    after = int(time.time() * 1000)
    parsed, raw = echoed(r)
    assert r.headers["x-amzn-RequestId"] == raw["requestContext"]["requestId"]
    assert r.headers["X-Amzn-Trace-Id"].startswith("Root=1-")
    # What the upstream type parsed, and what was on the wire, both match what we sent.
    for event in (parsed, raw):
        assert event["resource"] == "/{proxy+}"
        assert event["path"] == "/hello/w%C3%B6rld"
        assert event["httpMethod"] == "POST"
        assert event["headers"]["x-custom"] == "v"
        assert event["headers"]["user-agent"] == "e2e-agent/1"
        assert event["headers"]["content-type"] == "application/json"
        assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert event["headers"]["x-forwarded-proto"] == "http"
        assert event["multiValueHeaders"]["x-custom"] == ["v"]
        assert event["queryStringParameters"] == {"name": "me", "multi": "2", "empty": ""}
        assert event["multiValueQueryStringParameters"] == {"name": ["me"], "multi": ["1", "2"], "empty": [""]}
        assert event["pathParameters"] == {"proxy": "hello/wörld"}
        assert event["stageVariables"] == {"fn": echo_fn.rsplit(":", 1)[1], "env": "e2e"}
        assert event["body"] == '{"a": 1}'
        assert event["isBase64Encoded"] is False
        rc = event["requestContext"]
        assert rc["accountId"] == DEV_ACCOUNT
        assert rc["apiId"] == echo_api
        assert rc["stage"] == "prod"
        assert rc["resourcePath"] == "/{proxy+}"
        assert rc["httpMethod"] == "POST"
        assert rc["path"] == "/prod/hello/w%C3%B6rld"
        assert rc["protocol"] == "HTTP/1.1"
        assert REQUEST_TIME.match(rc["requestTime"]), rc["requestTime"]
        assert before <= rc["requestTimeEpoch"] <= after
        assert rc["identity"]["sourceIp"] == "127.0.0.1"
        assert rc["identity"]["userAgent"] == "e2e-agent/1"
        assert len(rc["resourceId"]) == 10
    # Members the upstream type does not model, on the wire.
    assert raw["requestContext"]["extendedRequestId"] == r.headers["x-amz-apigw-id"]
    assert raw["requestContext"]["domainPrefix"] == "127"
    assert raw["requestContext"]["domainName"] == "127.0.0.1"
    assert raw["requestContext"]["deploymentId"]
    # AWS sends the unknown identity members as nulls.
    for member in ("accessKey", "accountId", "caller", "cognitoIdentityId", "user", "userArn"):
        assert raw["requestContext"]["identity"][member] is None, member


def test_absent_parts_are_null_and_binary_bodies_base64(standalone, echo_api):
    parsed, raw = echoed(standalone.call(echo_api, "/"))
    assert raw["resource"] == "/"
    assert raw["path"] == "/"
    for field in ("queryStringParameters", "multiValueQueryStringParameters", "pathParameters", "body"):
        assert raw[field] is None, field
    assert raw["requestContext"]["path"] == "/prod/"

    parsed, raw = echoed(
        standalone.call(echo_api, "/img", method="PUT", headers={"Content-Type": "image/png"}, data=bytes([0, 1, 2, 255]))
    )
    assert raw["isBase64Encoded"] is True
    assert raw["body"] == "AAEC/w=="
    assert parsed["isBase64Encoded"] is True


def test_answers_status_headers_and_binary(standalone, echo_api):
    r = standalone.call(echo_api, "/x", params={"behaviour": "status", "code": "418"})
    assert (r.status_code, r.text) == (418, "status on request")
    assert r.headers["Content-Type"] == "application/json"

    r = standalone.call(echo_api, "/x", params={"behaviour": "headers"})
    assert r.status_code == 200
    assert r.headers["x-single"] == "solo"
    assert r.headers["x-bool"] == "true"
    assert r.headers["x-multi"] == "one, two"
    assert r.headers["x-both"] == "multi, single"

    # isBase64Encoded answers are decoded only for a caller that accepts a binary type.
    r = standalone.call(echo_api, "/x", params={"behaviour": "binary"}, headers={"Accept": "image/png"})
    assert (r.status_code, r.content) == (200, bytes([0, 1, 2, 3, 255]))
    r = standalone.call(echo_api, "/x", params={"behaviour": "binary"})
    assert (r.status_code, r.content) == (200, b"AAECA/8=")


# --------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------


def assert_internal_error(r: requests.Response, status: int) -> None:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.content == INTERNAL_ERROR
    assert r.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    assert r.headers["Content-Type"] == "application/json"


def test_malformed_answers_and_function_errors_are_502(standalone, echo_api):
    assert_internal_error(standalone.call(echo_api, "/x", params={"behaviour": "malformed"}), 502)
    assert_internal_error(standalone.call(echo_api, "/x", params={"behaviour": "error"}), 502)
    # The function's own timeout (2 s) is a function error too (decisions.md).
    assert_internal_error(standalone.call(echo_api, "/x", params={"behaviour": "sleep", "ms": "4000"}), 502)
    # And the function still serves afterwards.
    echoed(standalone.call(echo_api, "/after-errors"))


def test_a_crashing_function_is_502_and_recovers(standalone, echo_api):
    assert_internal_error(standalone.call(echo_api, "/x", params={"behaviour": "exit"}), 502)
    echoed(standalone.call(echo_api, "/after-crash"))


def test_integration_timeout_is_504(standalone, rust_zip):
    arn = standalone.create_function(rust_zip, "provided.al2023", "bootstrap", timeout=10)
    api_id = proxy_api(standalone, arn, timeout_ms=1000)
    wait_served(standalone, api_id)
    started = time.monotonic()
    r = standalone.call(api_id, "/x", params={"behaviour": "sleep", "ms": "3000"})
    elapsed = time.monotonic() - started
    assert r.status_code == 504, r.text
    assert r.json() == {"message": "Endpoint request timed out"}
    assert elapsed < 2.5, elapsed


def test_concurrency_limit_answers_500(standalone, echo_api):
    calls = 2 * CONCURRENCY + 1

    def slow(_):
        return standalone.call(echo_api, "/x", params={"behaviour": "sleep", "ms": "1200"})

    with ThreadPoolExecutor(max_workers=calls) as pool:
        results = list(pool.map(slow, range(calls)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) >= 1, statuses
    assert statuses.count(200) <= CONCURRENCY, statuses
    throttled = [r for r in results if r.status_code != 200]
    assert throttled, statuses
    for r in throttled:
        # Lambda's 429 is an invocation failure: 500 (reference §2.4).
        assert_internal_error(r, 500)


def test_another_accounts_function_is_never_invoked(standalone, echo_fn):
    launch = standalone.launch
    other = provision_tenant(launch.grpc_url, launch.admin_token, uid("lambda-other"))
    client = make_client(standalone.mgmt_url, other)
    api_id = proxy_api(standalone, echo_fn, client=client)
    wait_served(standalone, api_id)
    r = standalone.call(api_id, "/x")
    assert r.status_code == 500, r.text
    assert r.json() == {"message": "Internal server error"}
    # Refused when the stage loaded, so no Invoke was ever sent.
    assert "is not in the API's account" in launch.proc.logs(limit=200_000)


# --------------------------------------------------------------------------------------------
# Non-proxy (AWS) integrations
# --------------------------------------------------------------------------------------------


def test_non_proxy_selects_responses_by_error_message(standalone, echo_fn):
    c = standalone.client
    api = c.create_rest_api(name=uid("lambda-custom"))
    root = next(r for r in c.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
    res = c.create_resource(restApiId=api["id"], parentId=root["id"], pathPart="custom")
    kw = {"restApiId": api["id"], "resourceId": res["id"], "httpMethod": "POST"}
    c.put_method(authorizationType="NONE", **kw)
    c.put_integration(type="AWS", integrationHttpMethod="POST", uri=invocation_uri(echo_fn), **kw)
    for status in ("200", "400", "500"):
        c.put_method_response(
            statusCode=status, responseParameters={"method.response.header.x-selected": False}, **kw
        )
    c.put_integration_response(
        statusCode="200", responseParameters={"method.response.header.x-selected": "'default'"}, **kw
    )
    c.put_integration_response(
        statusCode="400",
        selectionPattern="Bad:.*",
        responseParameters={"method.response.header.x-selected": "'bad'"},
        **kw,
    )
    c.put_integration_response(statusCode="500", selectionPattern=".*[Ee]xploded.*", **kw)
    c.create_deployment(restApiId=api["id"], stageName="prod")
    wait_served(standalone, api["id"], "/custom", method="POST")

    r = standalone.call(api["id"], "/custom", method="POST", json={"n": 1})
    assert (r.status_code, r.json(), r.headers["x-selected"]) == (200, {"n": 1}, "default")

    r = standalone.call(api["id"], "/custom", method="POST", json={"fail": "Bad: no such pet"})
    assert (r.status_code, r.headers["x-selected"]) == (400, "bad")
    assert r.json()["errorMessage"] == "Bad: no such pet"

    r = standalone.call(api["id"], "/custom", method="POST", json={"fail": "it Exploded"})
    assert r.status_code == 500
    assert r.json()["errorMessage"] == "it Exploded"

    # An error no pattern matches takes the default response, error body and all (reference §4.2).
    r = standalone.call(api["id"], "/custom", method="POST", json={"fail": "unexpected"})
    assert (r.status_code, r.headers["x-selected"]) == (200, "default")
    assert r.json()["errorMessage"] == "unexpected"


# --------------------------------------------------------------------------------------------
# Python (awslambdaric)
# --------------------------------------------------------------------------------------------


def test_python_function_through_awslambdaric(standalone, python_zip):
    arn = standalone.create_function(python_zip, "python3.12", "app.handler", timeout=5)
    api_id = proxy_api(standalone, arn)
    wait_served(standalone, api_id)
    r = standalone.call(api_id, "/py/path", params={"q": "1"}, headers={"X-Py": "yes"})
    assert r.status_code == 200, r.text
    body = r.json()
    event = body["event"]
    assert body["version"] == "1.0"
    assert event["path"] == "/py/path"
    assert event["pathParameters"] == {"proxy": "py/path"}
    assert event["queryStringParameters"] == {"q": "1"}
    assert event["headers"]["x-py"] == "yes"
    assert event["requestContext"]["requestId"] == r.headers["x-amzn-RequestId"]
    assert_internal_error(standalone.call(api_id, "/py", params={"behaviour": "error"}), 502)
    assert_internal_error(standalone.call(api_id, "/py", params={"behaviour": "malformed"}), 502)


# --------------------------------------------------------------------------------------------
# Control plane + a separate data-plane node
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A control plane on Postgres (hosting functions) and one `apigw data-plane` node that invokes
    them with an operator-created service key."""
    base = tmp_path_factory.mktemp("lambda-cluster")
    cp = launch_control_plane(base / "cp", "lambda-cp")
    node = None
    try:
        key = admin_json(cp.grpc_url, cp.admin_token, "service-key", "create", "--description", "e2e node")
        port, metrics_port = free_port(), free_port()
        argv = [
            APIGW_BIN, "data-plane",
            "--control-plane", cp.grpc_url,
            "--node-id", "lambda-node",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--metrics-port", str(metrics_port),
            "--state-dir", str(base / "node"),
            "--lambda-endpoint", cp.mgmt_url,
            "--lambda-access-key-id", key["accessKeyId"],
            "--lambda-secret-access-key", key["secretAccessKey"],
        ]  # fmt: skip
        node = ServerProcess("lambda-node", argv, base / "logs", metrics_port, cwd=base)
        node.start()
        node.wait_ready()
        tenant = provision_tenant(cp.grpc_url, cp.admin_token, uid("lambda-tenant"))
        yield Deployment(cp.mgmt_url, f"http://127.0.0.1:{port}", tenant, [cp.proc, node])
    finally:
        if node is not None:
            node.stop()
        shutdown(cp)


def test_a_data_plane_node_invokes_with_a_service_key(cluster, rust_zip):
    arn = cluster.create_function(rust_zip, "provided.al2023", "bootstrap")
    api_id = proxy_api(cluster, arn)
    wait_served(cluster, api_id)
    parsed, raw = echoed(cluster.call(api_id, "/through/node", params={"k": "v"}))
    assert raw["requestContext"]["accountId"] == cluster.tenant.account_id
    assert parsed["path"] == "/through/node"
    assert parsed["queryStringParameters"] == {"k": "v"}
    assert_internal_error(cluster.call(api_id, "/x", params={"behaviour": "error"}), 502)
