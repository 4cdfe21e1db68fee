"""The data plane end to end: one control plane on Postgres, two `apigw data-plane` nodes fed over
gRPC, and a real HTTP backend. APIs are created with boto3 and called through both nodes.

The destructive cases (control plane killed, node restarted without it, a bad snapshot) run last,
on the same cluster, in the order written.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests

from conftest import (
    APIGW_BIN,
    ServerProcess,
    add_mock_method,
    free_port,
    launch_control_plane,
    make_client,
    provision_tenant,
    psql,
    shutdown,
    uid,
)

PROPAGATION_TIMEOUT = 15.0


class EchoHandler(BaseHTTPRequestHandler):
    """Answers with what it received; `/sleep/N...` sleeps N seconds first; a path with
    `/chunked` answers chunked, in small pieces written a moment apart."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        parts = urlsplit(self.path)
        if parts.path.startswith("/sleep/"):
            time.sleep(float(parts.path.split("/")[2]))
        payload = json.dumps(
            {
                "method": self.command,
                "path": parts.path,
                "query": parts.query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        ).encode()
        if "/chunked" in parts.path:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for at in range(0, len(payload), 64):
                piece = payload[at : at + 64]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.002)
            self.wfile.write(b"0\r\n\r\n")
            return
        status = 200
        if parts.path.startswith("/status/"):
            status = int(parts.path.split("/")[2])
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Backend", "echo")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, *args):
        pass


class Node:
    """One `apigw data-plane` process."""

    def __init__(self, name: str, base, grpc_url: str):
        self.name = name
        self.port = free_port()
        self.metrics_port = free_port()
        self.state_dir = base / name
        self.grpc_url = grpc_url
        self.proc = ServerProcess(name, self.argv(grpc_url), base / "logs", self.metrics_port, cwd=base)

    def argv(self, grpc_url: str) -> list[str]:
        return [
            APIGW_BIN, "data-plane",
            "--control-plane", grpc_url,
            "--node-id", self.name,
            "--region", "us-east-1",
            "--endpoint-class", "public",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--metrics-port", str(self.metrics_port),
            "--state-dir", str(self.state_dir),
        ]  # fmt: skip

    def url(self, api_id: str, stage: str, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/restapis/{api_id}/{stage}/_user_request_{path}"

    def call(self, api_id: str, stage: str, path: str, method: str = "GET", **kw) -> requests.Response:
        return requests.request(method, self.url(api_id, stage, path), timeout=30, **kw)

    def call_host_form(self, api_id: str, stage: str, path: str, **kw) -> requests.Response:
        headers = {"Host": f"{api_id}.execute-api.localhost:{self.port}", **kw.pop("headers", {})}
        return requests.get(f"http://127.0.0.1:{self.port}/{stage}{path}", headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("data-plane")
    backend = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    cp = launch_control_plane(base / "cp", "control-plane")
    nodes = [Node(f"node-{i}", base, cp.grpc_url) for i in (1, 2)]
    try:
        for n in nodes:
            n.proc.start()
        for n in nodes:
            n.proc.wait_ready()
        tenant = provision_tenant(cp.grpc_url, cp.admin_token, "dataplane")
        yield {
            "cp": cp,
            "nodes": nodes,
            "client": make_client(cp.mgmt_url, tenant),
            "backend": f"http://127.0.0.1:{backend.server_address[1]}",
        }
    finally:
        for n in nodes:
            n.proc.stop()
        shutdown(cp)
        backend.shutdown()


def wait_for(check, what: str, timeout: float = PROPAGATION_TIMEOUT):
    """Polls `check` until it returns something other than None/False (config reaches nodes
    asynchronously). A `requests.Response` counts as an answer even when it is a 4xx/5xx."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last is not None and last is not False:
                return last
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)  # propagation polling
    raise AssertionError(f"{what}: not true after {timeout}s (last: {last!r})")


def on_every_node(cluster, check, what: str):
    for n in cluster["nodes"]:
        wait_for(lambda: check(n), f"{what} on {n.name}")


def proxy_resource(client, api_id: str, parent: str, part: str, uri: str, **integration_kw):
    r = client.create_resource(restApiId=api_id, parentId=parent, pathPart=part)
    client.put_method(restApiId=api_id, resourceId=r["id"], httpMethod="ANY", authorizationType="NONE")
    client.put_integration(
        restApiId=api_id,
        resourceId=r["id"],
        httpMethod="ANY",
        type="HTTP_PROXY",
        integrationHttpMethod="ANY",
        uri=uri,
        **integration_kw,
    )
    return r


@pytest.fixture(scope="module")
def routed_api(cluster):
    """/pets (ANY), /pets/dog (ANY), /pets/{petId} (ANY), /{proxy+} (ANY), deployed to `prod`."""
    c, be = cluster["client"], cluster["backend"]
    api = c.create_rest_api(name=uid("routing"))
    root = api["rootResourceId"]
    pets = proxy_resource(c, api["id"], root, "pets", f"{be}/lit/pets")
    proxy_resource(c, api["id"], pets["id"], "dog", f"{be}/lit/dog")
    proxy_resource(
        c, api["id"], pets["id"], "{petId}", f"{be}/param/{{petId}}",
        requestParameters={"integration.request.path.petId": "method.request.path.petId"},
    )  # fmt: skip
    proxy_resource(c, api["id"], root, "{proxy+}", f"{be}/greedy/{{proxy}}")
    c.create_deployment(restApiId=api["id"], stageName="prod")
    on_every_node(cluster, lambda n: n.call(api["id"], "prod", "/pets").status_code == 200, "routed API deployed")
    return api


def echoed(resp: requests.Response) -> dict:
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    return resp.json()


def test_routing_precedence_on_both_nodes(cluster, routed_api):
    api_id = routed_api["id"]
    for n in cluster["nodes"]:
        assert echoed(n.call(api_id, "prod", "/pets/dog"))["path"] == "/lit/dog"
        assert echoed(n.call(api_id, "prod", "/pets/cat"))["path"] == "/param/cat"
        assert echoed(n.call(api_id, "prod", "/pets"))["path"] == "/lit/pets"
        assert echoed(n.call(api_id, "prod", "/a/b/c"))["path"] == "/greedy/a/b/c"
        assert echoed(n.call_host_form(api_id, "prod", "/pets/dog"))["path"] == "/lit/dog"


def test_proxy_passes_method_query_headers_and_body(cluster, routed_api):
    n = cluster["nodes"][0]
    got = echoed(n.call(routed_api["id"], "prod", "/pets/cat?color=black&n=1", "POST",
                        headers={"X-Custom": "v", "Connection": "keep-alive"}, data="hello"))  # fmt: skip
    assert got["method"] == "POST"
    assert got["query"] == "color=black&n=1"
    assert got["headers"]["x-custom"] == "v"
    assert got["body"] == "hello"
    assert "127.0.0.1" in got["headers"]["x-forwarded-for"]


def test_chunked_backend_answers_come_through_whole(cluster, routed_api):
    # The backend's chunks arrive across many reads; the gateway must pass the whole body on,
    # and keep using its backend connection afterwards.
    n = cluster["nodes"][0]
    for i in range(3):
        r = n.call(routed_api["id"], "prod", f"/chunked/{i}?q={i}")
        got = echoed(r)
        assert (got["path"], got["query"]) == (f"/greedy/chunked/{i}", f"q={i}")
        # Streamed on (the length was not known when the head went out).
        assert r.headers.get("Transfer-Encoding") == "chunked"


def test_large_upload_with_expect_continue(cluster, routed_api):
    # A client that asks for 100-continue gets it from the gateway; the backend gets the whole
    # body and no Expect of its own.
    n = cluster["nodes"][1]
    body = b"x" * (3 * 1024 * 1024)
    conn = http.client.HTTPConnection("127.0.0.1", n.port, timeout=30)
    try:
        conn.request(
            "POST",
            f"/restapis/{routed_api['id']}/prod/_user_request_/upload",
            body=body,
            headers={"Expect": "100-continue", "Content-Type": "text/plain"},
        )
        r = conn.getresponse()
        got = json.loads(r.read())
    finally:
        conn.close()
    assert r.status == 200
    assert got["path"] == "/greedy/upload"
    assert len(got["body"]) == len(body)
    assert "expect" not in got["headers"]


def read_answer(reader) -> tuple[str, dict, bytes]:
    """One HTTP/1.x answer off a socket's reader: status line, fields (lower-case), body."""
    status = reader.readline().decode().rstrip("\r\n")
    fields = {}
    while (line := reader.readline().decode().rstrip("\r\n")) != "":
        name, value = line.split(":", 1)
        fields[name.strip().lower()] = value.strip()
    if "content-length" in fields:
        return status, fields, reader.read(int(fields["content-length"]))
    if fields.get("transfer-encoding") == "chunked":
        body = b""
        while (size := int(reader.readline().strip(), 16)) > 0:
            body += reader.read(size)
            reader.readline()
        reader.readline()
        return status, fields, body
    return status, fields, reader.read()


def test_requests_the_lean_server_hands_over_are_served_by_hyper(cluster, routed_api):
    # The proxy's own HTTP/1.1 server answers common requests and hands the connection to hyper
    # at the first it does not serve (a chunked upload here): three pipelined requests on one
    # connection, answered in order, the last by hyper.
    n = cluster["nodes"][0]
    path = f"/restapis/{routed_api['id']}/prod/_user_request_"
    with socket.create_connection(("127.0.0.1", n.port), timeout=10) as s:
        s.sendall((f"GET {path}/one?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   f"POST {path}/two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                   f"PUT {path}/three HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").encode())  # fmt: skip
        reader = s.makefile("rb")
        answers = [read_answer(reader) for _ in range(3)]
    expected = [("GET", "/greedy/one", ""), ("POST", "/greedy/two", "hello world"), ("PUT", "/greedy/three", "abc")]
    for (status, fields, raw), (method, where, body) in zip(answers, expected):
        assert status == "HTTP/1.1 200 OK", (status, answers)
        assert "x-amzn-requestid" in fields and "date" in fields, fields
        got = json.loads(raw)
        assert (got["method"], got["path"], got["body"]) == (method, where, body), got

    # HTTP/1.0 (hyper's from the first byte): answered in 1.0, then closed.
    with socket.create_connection(("127.0.0.1", n.port), timeout=10) as s:
        s.sendall(f"GET {path}/old HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        status, fields, raw = read_answer(s.makefile("rb"))
    assert status == "HTTP/1.0 200 OK", status
    assert json.loads(raw)["path"] == "/greedy/old"

    # h2c with prior knowledge (the HTTP/2 preface goes to hyper too).
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-w", "\n%{http_version}", f"http://127.0.0.1:{n.port}{path}/h2"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    raw, version = out.stdout.rsplit("\n", 1)
    assert version == "2", out
    assert json.loads(raw)["path"] == "/greedy/h2"


def test_answers_carry_request_ids(cluster, routed_api):
    r = cluster["nodes"][1].call(routed_api["id"], "prod", "/pets")
    assert r.headers.get("x-amzn-RequestId")
    assert r.headers.get("x-amz-apigw-id")


def test_routing_misses(cluster, routed_api):
    n = cluster["nodes"][0]
    r = n.call(routed_api["id"], "nostage", "/pets")
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    r = n.call("zzzzzzzzzz", "prod", "/pets")
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    # The greedy route takes everything under / except / itself.
    r = n.call(routed_api["id"], "prod", "/")
    assert r.status_code == 403
    assert r.json() == {"message": "Missing Authentication Token"}
    assert r.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert r.headers.get("x-amzn-RequestId")


def test_stage_variables_and_their_update(cluster):
    c, be = cluster["client"], cluster["backend"]
    api = c.create_rest_api(name=uid("stagevars"))
    proxy_resource(c, api["id"], api["rootResourceId"], "v", be + "/${stageVariables.prefix}/x")
    c.create_deployment(restApiId=api["id"], stageName="dev", variables={"prefix": "one"})
    on_every_node(cluster, lambda n: n.call(api["id"], "dev", "/v").json().get("path") == "/one/x", "variable one")
    c.update_stage(restApiId=api["id"], stageName="dev",
                   patchOperations=[{"op": "replace", "path": "/variables/prefix", "value": "two"}])  # fmt: skip
    on_every_node(cluster, lambda n: n.call(api["id"], "dev", "/v").json().get("path") == "/two/x", "variable two")


def mock_api(c, body: str) -> tuple[dict, str]:
    api = c.create_rest_api(name=uid("mock"))
    r = c.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="m")
    add_mock_method(c, api["id"], r["id"])
    c.put_integration_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode="200",
                               responseTemplates={"application/json": body})  # fmt: skip
    return api, r["id"]


def test_rollback_by_stage_update(cluster):
    c = cluster["client"]
    api, rid = mock_api(c, '{"version": "one"}')
    first = c.create_deployment(restApiId=api["id"], stageName="live")["id"]
    on_every_node(cluster, lambda n: n.call(api["id"], "live", "/m").text == '{"version": "one"}', "first")
    c.put_integration_response(restApiId=api["id"], resourceId=rid, httpMethod="GET", statusCode="200",
                               responseTemplates={"application/json": '{"version": "two"}'})  # fmt: skip
    c.create_deployment(restApiId=api["id"], stageName="live")
    on_every_node(cluster, lambda n: n.call(api["id"], "live", "/m").text == '{"version": "two"}', "second")
    c.update_stage(restApiId=api["id"], stageName="live",
                   patchOperations=[{"op": "replace", "path": "/deploymentId", "value": first}])  # fmt: skip
    on_every_node(cluster, lambda n: n.call(api["id"], "live", "/m").text == '{"version": "one"}', "rolled back")


def test_deleting_a_stage_stops_serving_it(cluster):
    c = cluster["client"]
    api, _ = mock_api(c, "{}")
    c.create_deployment(restApiId=api["id"], stageName="temp")
    on_every_node(cluster, lambda n: n.call(api["id"], "temp", "/m").status_code == 200, "served")
    c.delete_stage(restApiId=api["id"], stageName="temp")
    on_every_node(cluster, lambda n: n.call(api["id"], "temp", "/m").status_code == 403, "gone")


def test_mock_status_from_the_request_template(cluster):
    c = cluster["client"]
    api = c.create_rest_api(name=uid("mockstatus"))
    r = c.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="missing")
    c.put_method(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", authorizationType="NONE")
    c.put_integration(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", type="MOCK",
                      requestTemplates={"application/json": '{"statusCode": 404}'})  # fmt: skip
    for status in ("200", "404"):
        c.put_method_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode=status)
    c.put_integration_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode="200",
                               responseTemplates={"application/json": '{"found": true}'})  # fmt: skip
    c.put_integration_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode="404",
                               selectionPattern="404", responseTemplates={"application/json": '{"found": false}'},
                               responseParameters={"method.response.header.X-Mock": "'yes'"})  # fmt: skip
    c.create_deployment(restApiId=api["id"], stageName="s")
    n = cluster["nodes"][1]
    resp = wait_for(lambda: (lambda r: r if r.status_code == 404 else None)(n.call(api["id"], "s", "/missing")), "mock")
    assert resp.text == '{"found": false}'
    assert resp.headers["X-Mock"] == "yes"


def test_http_integration_selects_responses_by_status(cluster):
    c, be = cluster["client"], cluster["backend"]
    api = c.create_rest_api(name=uid("http"))
    r = c.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="{code}")
    c.put_method(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", authorizationType="NONE",
                 requestParameters={"method.request.path.code": True, "method.request.header.X-In": False})  # fmt: skip
    c.put_integration(
        restApiId=api["id"], resourceId=r["id"], httpMethod="GET", type="HTTP", integrationHttpMethod="GET",
        uri=f"{be}/status/{{code}}",
        requestParameters={"integration.request.path.code": "method.request.path.code",
                           "integration.request.header.X-Mapped": "method.request.header.X-In",
                           "integration.request.querystring.stage": "context.stage"},
    )  # fmt: skip
    for status in ("200", "400"):
        c.put_method_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode=status)
    c.put_integration_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode="200",
                               selectionPattern="2\\d\\d",
                               responseParameters={"method.response.header.X-From": "integration.response.header.X-Backend"})  # fmt: skip
    c.put_integration_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode="400",
                               selectionPattern="4\\d\\d")  # fmt: skip
    c.create_deployment(restApiId=api["id"], stageName="s")
    n = cluster["nodes"][0]
    ok = wait_for(lambda: (lambda r: r if r.status_code == 200 else None)(n.call(api["id"], "s", "/200", headers={"X-In": "hi"})), "http")
    got = ok.json()
    assert got["path"] == "/status/200"
    assert got["headers"]["x-mapped"] == "hi"
    assert got["query"] == "stage=s"
    assert ok.headers["X-From"] == "echo"
    assert n.call(api["id"], "s", "/404").status_code == 400
    # No integration response matches a 500 and there is no default: AWS's configuration error.
    bad = n.call(api["id"], "s", "/500")
    assert bad.status_code == 500 and bad.json() == {"message": "Internal server error"}


def test_oversized_headers_are_refused(cluster, routed_api):
    r = cluster["nodes"][0].call(routed_api["id"], "prod", "/pets", headers={"X-Big": "x" * 11_000})
    assert r.status_code == 431
    # The connection-level limit does not affect the next caller.
    assert cluster["nodes"][0].call(routed_api["id"], "prod", "/pets").status_code == 200


def test_payload_over_ten_megabytes_is_refused(cluster, routed_api):
    r = cluster["nodes"][0].call(routed_api["id"], "prod", "/pets", "POST", data=b"x" * (10 * 1024 * 1024 + 1))
    assert r.status_code == 413
    assert r.headers.get("x-amzn-RequestId")


def test_integration_timeout_and_unreachable_backend(cluster):
    c, be = cluster["client"], cluster["backend"]
    api = c.create_rest_api(name=uid("timeout"))
    proxy_resource(c, api["id"], api["rootResourceId"], "slow", f"{be}/sleep/3", timeoutInMillis=500)
    proxy_resource(c, api["id"], api["rootResourceId"], "down", f"http://127.0.0.1:{free_port()}/x")
    c.create_deployment(restApiId=api["id"], stageName="s")
    n = cluster["nodes"][1]
    slow = wait_for(lambda: (lambda r: r if r.status_code != 403 else None)(n.call(api["id"], "s", "/slow")), "slow")
    assert slow.status_code == 504
    assert slow.json() == {"message": "Endpoint request timed out"}
    # INTEGRATION_FAILURE: AWS's default status for it is 504.
    down = n.call(api["id"], "s", "/down")
    assert down.status_code == 504
    assert down.json() == {"message": "Internal server error"}
    assert down.headers["x-amzn-ErrorType"] == "InternalServerErrorException"


def test_gateway_response_override(cluster):
    c = cluster["client"]
    api, _ = mock_api(c, "{}")
    c.put_gateway_response(
        restApiId=api["id"], responseType="MISSING_AUTHENTICATION_TOKEN", statusCode="404",
        responseParameters={"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"},
        responseTemplates={"application/json": '{"error": $context.error.messageString, "type": "$context.error.responseType"}'},
    )  # fmt: skip
    c.put_gateway_response(restApiId=api["id"], responseType="DEFAULT_4XX",
                           responseParameters={"gatewayresponse.header.X-Default": "'4xx'"})  # fmt: skip
    c.create_deployment(restApiId=api["id"], stageName="s")
    n = cluster["nodes"][0]
    r = wait_for(lambda: (lambda r: r if r.status_code == 404 else None)(n.call(api["id"], "s", "/nothing")), "override")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.json() == {"error": "Missing Authentication Token", "type": "MISSING_AUTHENTICATION_TOKEN"}
    # REQUEST_TOO_LARGE cannot be customised: the DEFAULT_4XX header does not apply to it.
    big = n.call(api["id"], "s", "/m", "GET", data=b"x" * (10 * 1024 * 1024 + 1))
    assert big.status_code == 413
    assert "X-Default" not in big.headers


def test_nodes_report_their_applied_version(cluster):
    cp = cluster["cp"]
    out = run_admin_json(cp, "nodes", "list")
    names = {n["nodeId"]: n for n in out["nodes"]}
    assert {"node-1", "node-2"} <= set(names)
    assert all(int(names[k]["appliedVersion"]) > 0 for k in ("node-1", "node-2"))


def run_admin_json(cp, *args):
    from conftest import admin_json

    return admin_json(cp.grpc_url, cp.admin_token, *args)


# ---- destructive cases: keep them last, in this order ---------------------------------------


def test_a_bad_snapshot_is_refused_and_the_old_config_kept(cluster, routed_api):
    """A snapshot the nodes cannot load (written straight into the store) is NACKed; they keep serving."""
    cp = cluster["cp"]
    db = cp.database
    psql_db = lambda sql: psql(sql, database=db)  # noqa: E731
    psql_db(
        "UPDATE config_version SET version = version + 1;"
        "INSERT INTO config_resources (resource_key, version, account_id, endpoint_type, body) "
        "SELECT 'stage/999999999999/brokenapi1/x', version, '999999999999', 'EDGE', 'this is not a snapshot' "
        "FROM config_version;"
        "SELECT pg_notify('apigw_config', 'test');"
    )
    for n in cluster["nodes"]:
        wait_for(lambda: "config rejected" in n.proc.logs(limit=200_000), f"{n.name} NACKs the bad snapshot")
        assert echoed(n.call(routed_api["id"], "prod", "/pets/dog"))["path"] == "/lit/dog"
        assert n.proc.alive()
    psql_db("DELETE FROM config_resources WHERE resource_key = 'stage/999999999999/brokenapi1/x'")


def test_nodes_survive_the_control_plane_and_restart_from_last_known_good(cluster, routed_api):
    cp, nodes = cluster["cp"], cluster["nodes"]
    cp.proc.stop()
    for n in nodes:
        assert echoed(n.call(routed_api["id"], "prod", "/pets/cat"))["path"] == "/param/cat"
    # A node restarted while the control plane is down serves its last-known-good config.
    n = nodes[1]
    n.proc.stop()
    n.proc.start()
    n.proc.wait_ready()
    assert echoed(n.call(routed_api["id"], "prod", "/a/b"))["path"] == "/greedy/a/b"
    # The control plane comes back and the nodes resubscribe.
    cp.proc.start()
    cp.proc.wait_ready()
    c = cluster["client"]
    api, _ = mock_api(c, '{"after": "restart"}')
    c.create_deployment(restApiId=api["id"], stageName="s")
    on_every_node(cluster, lambda n: n.call(api["id"], "s", "/m").text == '{"after": "restart"}', "after restart")
