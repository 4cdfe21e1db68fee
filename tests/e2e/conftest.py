"""Shared fixtures of the end-to-end compatibility suite.

The suite drives a real `apigw` binary with the real AWS clients (boto3 and the AWS CLI), the
way a tenant would, in two configurations: `standalone` (SQLite in a data dir) and
`control-plane` on a fresh Postgres database. Every test that takes the `gw` fixture runs
against both; the processes are session-scoped so the whole suite stays fast.

Environment:
  APIGW_BIN            the binary (default ~/.cache/apigw-target/debug/apigw)
  APIGW_E2E_BACKENDS   comma list of backends to run: standalone,postgres (default both)
  APIGW_E2E_PG_HOST / APIGW_E2E_PG_PORT / APIGW_E2E_PG_USER   where Postgres is (127.0.0.1:5432, postgres)
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from unittest import mock
from urllib.parse import quote, urlencode

import boto3
import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

# The clients must never read the developer's own AWS configuration.
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_API_GATEWAY"):
    os.environ.pop(_var, None)

APIGW_BIN = os.environ.get("APIGW_BIN") or os.path.expanduser("~/.cache/apigw-target/debug/apigw")
BACKENDS = [b.strip() for b in os.environ.get("APIGW_E2E_BACKENDS", "standalone,postgres").split(",") if b.strip()]
PG_HOST = os.environ.get("APIGW_E2E_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("APIGW_E2E_PG_PORT", "5432")
PG_USER = os.environ.get("APIGW_E2E_PG_USER", "postgres")

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
DEV_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"
REST_API_ID = re.compile(r"^[a-z0-9]{10}$")


def uid(prefix: str = "e2e") -> str:
    """A unique, readable name for things a test creates."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def fake_id(length: int) -> str:
    """An id of the right shape that no server has handed out (lowercase alnum)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def _server_env() -> dict:
    """The environment for apigw: ours, minus anything that could override the flags we pass."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("APIGW_") and k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("AWS_")
    }
    env.setdefault("RUST_BACKTRACE", "1")
    env["NO_COLOR"] = "1"  # plain captured logs
    return env


class ServerProcess:
    """One apigw process with its output captured to files; restartable with the same argv."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, mgmt_port: int, cwd: Path):
        self.name = name
        self.argv = argv
        self.log_dir = log_dir
        self.mgmt_port = mgmt_port
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None
        self.starts = 0
        self.stdout_path: Path | None = None
        self.stderr_path: Path | None = None
        self.last_returncode: int | None = None

    @property
    def healthz_url(self) -> str:
        return f"http://127.0.0.1:{self.mgmt_port}/healthz"

    def start(self) -> None:
        if not os.path.exists(APIGW_BIN):
            raise RuntimeError(f"apigw binary not found at {APIGW_BIN} (set APIGW_BIN)")
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.log_dir / f"{self.name}.{self.starts}.stdout"
        self.stderr_path = self.log_dir / f"{self.name}.{self.starts}.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env=_server_env(),
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"apigw {self.name} exited with {self.popen.returncode} before it was ready\n"
                    f"argv: {self.argv}\n{self.logs()}"
                )
            try:
                r = requests.get(self.healthz_url, timeout=1)
                if r.status_code == 200:
                    return
                last_error = f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                last_error = repr(e)
            time.sleep(0.1)  # readiness polling
        raise RuntimeError(
            f"apigw {self.name} not ready after {timeout:.0f}s ({last_error})\nargv: {self.argv}\n{self.logs()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the process we started, wait; SIGKILL it if it does not go. Returns its exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
                self.last_returncode = None
                return None
        self.last_returncode = self.popen.returncode
        return self.last_returncode

    def logs(self, limit: int = 6000) -> str:
        parts = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            if path is None or not path.exists():
                continue
            data = path.read_bytes()
            text = data[-limit:].decode("utf-8", "replace")
            cut = " (tail)" if len(data) > limit else ""
            parts.append(f"----- apigw {self.name} {label}{cut}: {path}\n{text}")
        return "\n".join(parts) or f"(no output captured for {self.name})"


# --------------------------------------------------------------------------------------------
# Postgres
# --------------------------------------------------------------------------------------------


def psql(sql: str, database: str = "postgres") -> None:
    r = subprocess.run(
        ["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if r.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {r.stderr.strip()}")


def create_database() -> tuple[str, str]:
    name = f"apigw_e2e_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE DATABASE {name}")
    return name, f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_database(name: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --------------------------------------------------------------------------------------------
# Operator CLI (apigw admin)
# --------------------------------------------------------------------------------------------


def run_admin(grpc_url: str, token: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [APIGW_BIN, "admin", "--control-plane", grpc_url, "--admin-token", token, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_server_env(),
    )


def admin_json(grpc_url: str, token: str, *args: str) -> dict:
    r = run_admin(grpc_url, token, *args)
    assert r.returncode == 0, f"apigw admin {' '.join(args)} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"apigw admin {' '.join(args)} did not print one JSON object: {e}\nstdout: {r.stdout!r}")


@dataclass
class Tenant:
    name: str
    account_id: str
    access_key: str
    secret_key: str


def provision_tenant(grpc_url: str, token: str, name: str) -> Tenant:
    t = admin_json(grpc_url, token, "tenant", "create", "--name", name)
    assert t.get("name") == name, t
    k = admin_json(grpc_url, token, "key", "create", "--tenant", t["accountId"])
    assert k.get("accountId") == t["accountId"], k
    return Tenant(name=name, account_id=t["accountId"], access_key=k["accessKeyId"], secret_key=k["secretAccessKey"])


# --------------------------------------------------------------------------------------------
# Starting a gateway
# --------------------------------------------------------------------------------------------


@dataclass
class Launch:
    """A started (or startable) apigw with everything needed to talk to it."""

    backend: str
    proc: ServerProcess
    mgmt_port: int
    grpc_port: int
    admin_token: str | None
    data_dir: Path | None = None
    database: str | None = None

    @property
    def mgmt_url(self) -> str:
        return f"http://127.0.0.1:{self.mgmt_port}"

    @property
    def grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"


def read_admin_token(data_dir: Path, proc: ServerProcess, timeout: float = 10.0) -> str:
    path = data_dir / "admin-token"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            token = path.read_text().strip()
            if token:
                return token
        time.sleep(0.05)  # readiness polling: the file may land just after /healthz answers
    raise RuntimeError(f"{path} was not written by standalone\n{proc.logs()}")


def launch_standalone(base: Path, name: str) -> Launch:
    data_dir = base / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    data_port, mgmt_port, grpc_port = free_port(), free_port(), free_port()
    argv = [
        APIGW_BIN, "standalone",
        "--data-dir", str(data_dir),
        "--host", "127.0.0.1",
        "--data-plane-port", str(data_port),
        "--management-port", str(mgmt_port),
        "--grpc-port", str(grpc_port),
        "--metrics-port", str(free_port()),
    ]  # fmt: skip
    proc = ServerProcess(name, argv, base / "logs", mgmt_port, cwd=base)
    proc.start()
    proc.wait_ready()
    token = read_admin_token(data_dir, proc)
    return Launch("standalone", proc, mgmt_port, grpc_port, token, data_dir=data_dir)


def launch_control_plane(base: Path, name: str, extra_args: tuple[str, ...] = ()) -> Launch:
    database, url = create_database()
    try:
        mgmt_port, grpc_port = free_port(), free_port()
        master_key = base64.b64encode(secrets.token_bytes(32)).decode()
        admin_token = secrets.token_hex(32)
        argv = [
            APIGW_BIN, "control-plane",
            "--database-url", url,
            "--master-key", master_key,
            "--bootstrap-admin-token", admin_token,
            "--host", "127.0.0.1",
            "--management-port", str(mgmt_port),
            "--grpc-port", str(grpc_port),
            *extra_args,
        ]  # fmt: skip
        base.mkdir(parents=True, exist_ok=True)
        proc = ServerProcess(name, argv, base / "logs", mgmt_port, cwd=base)
        proc.start()
        proc.wait_ready()
    except BaseException:
        if "proc" in locals():
            proc.stop()
        drop_database(database)
        raise
    return Launch("postgres", proc, mgmt_port, grpc_port, admin_token, database=database)


def launch(backend: str, base: Path, name: str) -> Launch:
    if backend == "standalone":
        return launch_standalone(base, name)
    if backend == "postgres":
        return launch_control_plane(base, name)
    raise ValueError(f"unknown backend {backend!r}")


def shutdown(l: Launch) -> None:
    try:
        l.proc.stop()
    finally:
        if l.database:
            drop_database(l.database)


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


def make_client(endpoint: str, tenant: Tenant, region: str = DEFAULT_REGION):
    return boto3.session.Session().client(
        "apigateway",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=tenant.access_key,
        aws_secret_access_key=tenant.secret_key,
        # One attempt: an error must surface at once, never be retried away.
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60),
    )


@dataclass
class CliResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None

    def error_code(self) -> str | None:
        m = re.search(r"An error occurred \(([A-Za-z]+)\)", self.stderr)
        return m.group(1) if m else None

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\nrc={self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def run_aws_cli(endpoint: str, tenant: Tenant, *args: str, region: str = DEFAULT_REGION) -> CliResult:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=tenant.access_key,
        AWS_SECRET_ACCESS_KEY=tenant.secret_key,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
        AWS_PAGER="",
    )
    # `python -m awscli` runs the CLI of the interpreter that runs pytest (the venv's).
    argv = [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--region", region,
            "apigateway", *args, "--output", "json"]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    return CliResult(argv, r.returncode, r.stdout, r.stderr)


@dataclass
class Gateway:
    """What a test gets from the `gw` fixture."""

    launch: Launch
    tenant_a: Tenant
    tenant_b: Tenant
    _clients: dict = field(default_factory=dict, repr=False)

    @property
    def backend(self) -> str:
        return self.launch.backend

    @property
    def proc(self) -> ServerProcess:
        return self.launch.proc

    @property
    def mgmt_url(self) -> str:
        return self.launch.mgmt_url

    @property
    def grpc_url(self) -> str:
        return self.launch.grpc_url

    @property
    def admin_token(self) -> str:
        return self.launch.admin_token

    def tenant(self, which) -> Tenant:
        if isinstance(which, Tenant):
            return which
        return {"a": self.tenant_a, "b": self.tenant_b}[which]

    def client(self, tenant="a", region: str = DEFAULT_REGION):
        t = self.tenant(tenant)
        key = (t.access_key, t.secret_key, region)
        if key not in self._clients:
            self._clients[key] = make_client(self.mgmt_url, t, region)
        return self._clients[key]

    def cli(self, *args: str, tenant="a", region: str = DEFAULT_REGION) -> CliResult:
        return run_aws_cli(self.mgmt_url, self.tenant(tenant), *args, region=region)

    def cli_ok(self, *args: str, tenant="a", region: str = DEFAULT_REGION):
        r = self.cli(*args, tenant=tenant, region=region)
        assert r.returncode == 0, str(r)
        return r.json

    def admin(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
        return run_admin(self.grpc_url, token if token is not None else self.admin_token, *args)

    def admin_json(self, *args: str) -> dict:
        return admin_json(self.grpc_url, self.admin_token, *args)


def tenants_for(l: Launch) -> tuple[Tenant, Tenant]:
    if l.backend == "standalone":
        a = Tenant("dev", DEV_ACCOUNT, "test", "test")
    else:
        a = provision_tenant(l.grpc_url, l.admin_token, uid("tenant-a"))
    b = provision_tenant(l.grpc_url, l.admin_token, uid("tenant-b"))
    return a, b


@pytest.fixture(scope="session", params=BACKENDS)
def gw(request, tmp_path_factory):
    """A running apigw per backend, shared by every test of the session, with tenants A and B."""
    backend = request.param
    l = launch(backend, tmp_path_factory.mktemp(f"gw-{backend}"), f"shared-{backend}")
    try:
        a, b = tenants_for(l)
    except BaseException as e:
        logs = l.proc.logs()
        shutdown(l)
        raise RuntimeError(f"provisioning tenants on {backend} failed: {e}\n{logs}") from e
    g = Gateway(l, a, b)
    yield g
    shutdown(l)


@pytest.fixture
def api(gw):
    """A fresh REST API of tenant A, deleted afterwards."""
    client = gw.client()
    created = client.create_rest_api(name=uid("api"), description="e2e fixture api")
    yield created
    try:
        client.delete_rest_api(restApiId=created["id"])
    except ClientError as e:
        if e.response["Error"]["Code"] != "NotFoundException":
            raise


@pytest.fixture
def server_factory(tmp_path):
    """Starts dedicated apigw processes for one test (restart tests); stops them afterwards."""

    class Factory:
        def __init__(self):
            self.launches: list[Launch] = []

        def launch(self, backend: str) -> Launch:
            l = launch(backend, tmp_path / f"{backend}-{len(self.launches)}", f"dedicated-{backend}")
            self.launches.append(l)
            return l

        @property
        def processes(self):
            return [l.proc for l in self.launches]

    f = Factory()
    yield f
    for l in f.launches:
        shutdown(l)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the tail of the server's output to the report."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    procs = []
    if isinstance(funcargs.get("gw"), Gateway):
        procs.append(funcargs["gw"].proc)
    if "server_factory" in funcargs:
        procs.extend(funcargs["server_factory"].processes)
    for p in procs:
        rep.sections.append((f"apigw {p.name} output", p.logs()))


# --------------------------------------------------------------------------------------------
# Raw signed requests
# --------------------------------------------------------------------------------------------


def signed_request(
    gw: Gateway,
    method: str,
    path: str,
    body=None,
    *,
    tenant="a",
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str = DEFAULT_REGION,
    service: str = "apigateway",
    headers: dict | None = None,
    query: dict | None = None,
    at: datetime | None = None,
    sign: bool = True,
    send_body=None,
    timeout: float = 60,
) -> requests.Response:
    """Send one request to the management API, SigV4-signed like botocore signs it.

    body: dict/list (sent as JSON), str or bytes (sent as is), or None.
    access_key/secret_key override the tenant's credentials; `at` signs at another time;
    `send_body` sends other bytes than those signed (a tampered body).
    """
    url = gw.mgmt_url + path
    if query:
        url += "?" + urlencode(query, doseq=True)
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = body
    hdrs = {}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    req = AWSRequest(method=method, url=url, data=data, headers=hdrs)
    if sign:
        t = gw.tenant(tenant)
        creds = Credentials(access_key or t.access_key, secret_key or t.secret_key)
        signer = SigV4Auth(creds, service, region)
        if at is None:
            signer.add_auth(req)
        else:
            with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
                signer.add_auth(req)
    out_headers = {k: v for k, v in req.headers.items()}
    payload = send_body if send_body is not None else data
    return requests.request(method, url, headers=out_headers, data=payload, timeout=timeout)


def arn_path(arn: str) -> str:
    return "/tags/" + quote(arn, safe="")


def rest_api_arn(api_id: str, region: str = DEFAULT_REGION) -> str:
    return f"arn:aws:apigateway:{region}::/restapis/{api_id}"


def stage_arn(api_id: str, stage: str, region: str = DEFAULT_REGION) -> str:
    return f"arn:aws:apigateway:{region}::/restapis/{api_id}/stages/{stage}"


# --------------------------------------------------------------------------------------------
# Assertions
# --------------------------------------------------------------------------------------------


def error_of(e: ClientError) -> tuple[str, int, str]:
    err = e.response.get("Error", {})
    return err.get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"], err.get("Message") or ""


def check_error(
    err: tuple[str, int, str],
    code,
    status,
    *,
    message: str | None = None,
    prefix: str | None = None,
    mentions: str | None = None,
    where: str = "",
) -> None:
    got_code, got_status, msg = err
    codes = (code,) if isinstance(code, str) else tuple(code)
    statuses = (status,) if isinstance(status, int) else tuple(status)
    ctx = f"{where} -> {got_status} {got_code}: {msg!r}"
    assert got_code in codes, f"error code {got_code!r} not in {codes}; {ctx}"
    assert got_status in statuses, f"HTTP status {got_status} not in {statuses}; {ctx}"
    assert msg.strip(), f"empty error message; {ctx}"
    if message is not None:
        assert msg == message, f"message {msg!r} != {message!r}"
    if prefix is not None:
        assert msg.startswith(prefix), f"message {msg!r} does not start with {prefix!r}"
    if mentions is not None:
        assert re.search(mentions, msg, re.IGNORECASE), f"message {msg!r} does not mention /{mentions}/"


@contextmanager
def aws_error(code, status, **kw):
    """`with aws_error('NotFoundException', 404): client.get_rest_api(...)`: the call must fail so."""
    with pytest.raises(ClientError) as ei:
        yield ei
    check_error(error_of(ei.value), code, status, where=ei.value.operation_name, **kw)


def raw_error(resp: requests.Response) -> tuple[str, int, str]:
    """(code, status, message) of a raw error response, read the way botocore reads it."""
    code = resp.headers.get("x-amzn-ErrorType", "")
    code = code.split(":")[0].split("#")[-1]
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not code and isinstance(body, dict):
        code = (body.get("__type") or body.get("code") or "").split("#")[-1]
    msg = (body.get("message") or body.get("Message") or "") if isinstance(body, dict) else ""
    return code, resp.status_code, msg


def check_raw_error(resp: requests.Response, code, status, **kw) -> None:
    check_error(raw_error(resp), code, status, where=f"{resp.request.method} {resp.request.url}", **kw)


def strip_meta(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "ResponseMetadata"}


def assert_recent(ts, slack: float = 600) -> None:
    assert isinstance(ts, datetime), f"not a datetime: {ts!r}"
    assert abs(ts.timestamp() - time.time()) < slack, f"{ts} is not close to now"


# --------------------------------------------------------------------------------------------
# Building blocks for tests that need a deployable API
# --------------------------------------------------------------------------------------------


def resource_by_path(client, api_id: str) -> dict:
    items = client.get_resources(restApiId=api_id, limit=500)["items"]
    return {r["path"]: r for r in items}


def add_mock_method(client, api_id: str, resource_id: str, http_method: str = "GET", **method_kw) -> None:
    client.put_method(
        restApiId=api_id, resourceId=resource_id, httpMethod=http_method, authorizationType="NONE", **method_kw
    )
    client.put_integration(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod=http_method,
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    client.put_method_response(restApiId=api_id, resourceId=resource_id, httpMethod=http_method, statusCode="200")
    client.put_integration_response(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod=http_method,
        statusCode="200",
        responseTemplates={"application/json": '{"ok": true}'},
    )


def deployable_api(client, api: dict) -> dict:
    """Adds /pets with a MOCK GET to `api`; returns {'pets': resource_id}."""
    pets = client.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="pets")
    add_mock_method(client, api["id"], pets["id"], "GET")
    return {"pets": pets["id"]}
