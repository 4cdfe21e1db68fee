"""IAM (SigV4) callers of AWS_IAM methods, end to end: principals created with `apigw admin
principal …`, requests signed by botocore's own SigV4 signer for `execute-api`, on `apigw
standalone` and on a control plane (Postgres) with a separate `apigw data-plane` node, which only
ever receives day-scoped signing keys derived for its region.

Every API here answers with a MOCK integration whose response template renders the caller's
`$context.identity`, so a test sees who the gateway believed was calling.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from unittest import mock

import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import (
    APIGW_BIN,
    DEFAULT_REGION,
    ServerProcess,
    Tenant,
    admin_json,
    free_port,
    launch_control_plane,
    launch_standalone,
    make_client,
    provision_tenant,
    run_admin,
    shutdown,
    tenants_for,
    uid,
)

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
IDENTITY_TEMPLATE = json.dumps({
    "accessKey": "$context.identity.accessKey",
    "accountId": "$context.identity.accountId",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "userArn": "$context.identity.userArn",
})  # fmt: skip


@dataclass
class Cluster:
    name: str
    mgmt_url: str
    data_url: str
    grpc_url: str
    admin_token: str
    a: Tenant
    b: Tenant
    procs: list

    def client(self, tenant: Tenant):
        return make_client(self.mgmt_url, tenant)

    def admin(self, *args: str) -> dict:
        return admin_json(self.grpc_url, self.admin_token, *args)

    def logs(self) -> str:
        return "\n".join(p.logs() for p in self.procs)


@pytest.fixture(scope="module", params=["standalone", "cluster"])
def gw(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"iam-{request.param}")
    if request.param == "standalone":
        l = launch_standalone(base, "iam-standalone")
        a, b = tenants_for(l)
        data_port = l.proc.argv[l.proc.argv.index("--data-plane-port") + 1]
        yield Cluster("standalone", l.mgmt_url, f"http://127.0.0.1:{data_port}", l.grpc_url, l.admin_token, a, b,
                      [l.proc])  # fmt: skip
        shutdown(l)
        return
    # The config stream carries signing keys: this control plane admits only nodes with its token.
    node_token = secrets.token_hex(24)
    cp = launch_control_plane(base / "cp", "iam-cp", ("--node-token", node_token))
    node = None
    try:
        port, metrics_port = free_port(), free_port()
        node = ServerProcess("iam-node", [
            APIGW_BIN, "data-plane",
            "--control-plane", cp.grpc_url,
            "--node-token", node_token,
            "--node-id", "iam-node",
            "--region", DEFAULT_REGION,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--metrics-port", str(metrics_port),
            "--state-dir", str(base / "node"),
        ], base / "logs", metrics_port, cwd=base)  # fmt: skip
        node.start()
        node.wait_ready()
        a, b = tenants_for(cp)
        yield Cluster("cluster", cp.mgmt_url, f"http://127.0.0.1:{port}", cp.grpc_url, cp.admin_token, a, b,
                      [cp.proc, node])  # fmt: skip
    finally:
        if node is not None:
            node.stop()
        shutdown(cp)


def principal(gw: Cluster, tenant: Tenant, statements: list[dict], *, kind: str = "user",
              known_at: str | None = None) -> dict:  # fmt: skip
    """A principal of `tenant` with an identity policy of `statements`; its secret included. With
    `known_at` (an AWS_IAM API's id), once the data plane that serves that API knows its key:
    principals reach nodes the way snapshots do, a moment after the call returns."""
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    p = gw.admin("principal", "create", "--tenant", tenant.account_id, "--name", uid("p"), "--kind", kind,
                 "--policy", policy)  # fmt: skip
    assert p["arn"] == f"arn:aws:iam::{tenant.account_id}:{kind}/{p['name']}", p
    assert p["uniqueId"].startswith("AIDA" if kind == "user" else "AROA"), p
    if known_at is not None:
        deadline = time.monotonic() + 15
        while "The security token included in the request is invalid." in call(gw, known_at, "/", sign=keys(p)).text:
            if time.monotonic() > deadline:
                raise AssertionError(f"principal {p['arn']} never reached the data plane\n{gw.logs()}")
            time.sleep(0.1)  # propagation polling
    return p


def allow(resource: str, effect: str = "Allow") -> dict:
    return {"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource}


def iam_api(gw: Cluster, tenant: Tenant, *, policy: str | None = None) -> str:
    """`GET /`, `GET /pets/{id}`, `POST /pets/{id}` and `GET /admin`, all AWS_IAM, MOCK answering the
    caller's identity; deployed to `prod` and served."""
    c = gw.client(tenant)
    api = c.create_rest_api(name=uid("iam-api"), **({"policy": policy} if policy else {}))
    api_id = api["id"]
    root = next(r for r in c.get_resources(restApiId=api_id)["items"] if r["path"] == "/")["id"]
    pets = c.create_resource(restApiId=api_id, parentId=root, pathPart="pets")["id"]
    pet = c.create_resource(restApiId=api_id, parentId=pets, pathPart="{id}")["id"]
    admin = c.create_resource(restApiId=api_id, parentId=root, pathPart="admin")["id"]
    for resource, method in ((root, "GET"), (pet, "GET"), (pet, "POST"), (admin, "GET")):
        c.put_method(restApiId=api_id, resourceId=resource, httpMethod=method, authorizationType="AWS_IAM")
        c.put_integration(restApiId=api_id, resourceId=resource, httpMethod=method, type="MOCK",
                          requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
        c.put_method_response(restApiId=api_id, resourceId=resource, httpMethod=method, statusCode="200")
        c.put_integration_response(restApiId=api_id, resourceId=resource, httpMethod=method, statusCode="200",
                                   responseTemplates={"application/json": IDENTITY_TEMPLATE})  # fmt: skip
    c.create_deployment(restApiId=api_id, stageName="prod")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if call(gw, api_id, "/", sign=None).json() == {"message": "Missing Authentication Token"}:
            return api_id
        time.sleep(0.1)  # propagation polling
    raise AssertionError(f"API {api_id} not served\n{gw.logs()}")


def call(gw: Cluster, api_id: str, path: str, *, sign: tuple[str, str] | None, method: str = "GET",
         body: bytes | None = None, at: datetime | None = None, region: str = DEFAULT_REGION,
         host_form: bool = False, send_body: bytes | None = None, send_path: str | None = None):  # fmt: skip
    """Calls the API through the data plane, signed by botocore with the key pair `sign`."""
    headers = {"Content-Type": "application/json"}
    if host_form:
        url = f"{gw.data_url}/prod{path}"
        headers["Host"] = f"{api_id}.execute-api.localhost:{gw.data_url.rsplit(':', 1)[1]}"
    else:
        url = f"{gw.data_url}/restapis/{api_id}/prod/_user_request_{path}"
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    if sign is not None:
        signer = SigV4Auth(Credentials(*sign), "execute-api", region)
        if at is None:
            signer.add_auth(req)
        else:
            with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
                signer.add_auth(req)
    if send_path is not None:
        url = url.replace(path, send_path)
    return requests.request(method, url, headers=dict(req.headers.items()),
                            data=send_body if send_body is not None else body, timeout=30)  # fmt: skip


def denied(r: requests.Response) -> str:
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.headers["x-amzn-ErrorType"] == "AccessDeniedException", r.headers
    return r.json()["message"]


def keys(p: dict) -> tuple[str, str]:
    return p["accessKeyId"], p["secretAccessKey"]


# --------------------------------------------------------------------------------------------


def test_the_tenants_own_key_is_the_account_administrator(gw):
    api_id = iam_api(gw, gw.a)
    for host_form in (False, True):
        r = call(gw, api_id, "/pets/1", sign=(gw.a.access_key, gw.a.secret_key), host_form=host_form)
        assert r.status_code == 200, (r.text, gw.logs()[-3000:])
        assert r.json()["userArn"] == f"arn:aws:iam::{gw.a.account_id}:root"
        assert r.json()["accountId"] == gw.a.account_id
        assert r.json()["accessKey"] == gw.a.access_key


def test_a_principal_is_held_to_its_identity_policy(gw):
    api_id = iam_api(gw, gw.a)
    arn = f"arn:aws:execute-api:{DEFAULT_REGION}:{gw.a.account_id}:{api_id}"
    p = principal(gw, gw.a, [allow(f"{arn}/prod/*/pets/*"), allow(f"{arn}/prod/GET/pets/secret", "Deny")],
                  known_at=api_id)  # fmt: skip
    ok = call(gw, api_id, "/pets/7", sign=keys(p))
    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "accessKey": p["accessKeyId"], "accountId": gw.a.account_id, "caller": p["uniqueId"],
        "user": p["uniqueId"], "userArn": p["arn"],
    }  # fmt: skip
    posted = call(gw, api_id, "/pets/7", sign=keys(p), method="POST", body=b'{"name": "Rex"}')
    assert posted.status_code == 200, posted.text

    assert denied(call(gw, api_id, "/admin", sign=keys(p))) == (
        f"User: {p['arn']} is not authorized to perform: execute-api:Invoke on resource: {arn}/prod/GET/admin "
        "because no identity-based policy allows the execute-api:Invoke action"
    )  # fmt: skip
    assert denied(call(gw, api_id, "/pets/secret", sign=keys(p))) == (
        f"User: {p['arn']} is not authorized to perform: execute-api:Invoke on resource: "
        f"{arn}/prod/GET/pets/secret with an explicit deny"
    )  # fmt: skip


def test_bad_signatures_are_refused_as_aws_does(gw):
    api_id = iam_api(gw, gw.a)
    p = principal(gw, gw.a, [allow("*")], known_at=api_id)
    body = b'{"a": 1}'
    r = call(gw, api_id, "/pets/1", sign=None)
    assert (r.status_code, r.json()) == (403, {"message": "Missing Authentication Token"})
    assert r.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"

    tampered = call(gw, api_id, "/pets/1", sign=keys(p), method="POST", body=body, send_body=b'{"a": 2}')
    assert (tampered.status_code, tampered.json()["message"]) == (403, SIGNATURE_MISMATCH)
    assert tampered.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    moved = call(gw, api_id, "/pets/1", sign=keys(p), send_path="/pets/2")
    assert (moved.status_code, moved.json()["message"]) == (403, SIGNATURE_MISMATCH)
    wrong_secret = call(gw, api_id, "/pets/1", sign=(p["accessKeyId"], "not-the-secret"))
    assert (wrong_secret.status_code, wrong_secret.json()["message"]) == (403, SIGNATURE_MISMATCH)

    unknown = call(gw, api_id, "/pets/1", sign=("AKIAUNKNOWNUNKNOWN00", "x"))
    assert denied(unknown) == "The security token included in the request is invalid."

    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    expired = call(gw, api_id, "/pets/1", sign=keys(p), at=old)
    assert expired.status_code == 403
    assert expired.json()["message"].startswith(f"Signature expired: {old.strftime('%Y%m%dT%H%M%SZ')} is now earlier than")

    other_region = call(gw, api_id, "/pets/1", sign=keys(p), region="eu-west-1")
    assert "Credential should be scoped to a valid region" in denied(other_region)
    # Still fine within AWS's five minutes of skew.
    skewed = call(gw, api_id, "/pets/1", sign=keys(p), at=datetime.now(timezone.utc) - timedelta(minutes=3))
    assert skewed.status_code == 200, skewed.text


def test_hopeless_signatures_are_refused_before_the_body_is_read(gw):
    """Unsigned or unknown-key requests are answered at once, while their (large) body is
    still unsent: nothing is read that no body could make valid."""
    api_id = iam_api(gw, gw.a)
    host, port = gw.data_url.rsplit("/", 1)[1].split(":")
    path = f"/restapis/{api_id}/prod/_user_request_/pets/1"
    for auth in ("", "Authorization: AWS4-HMAC-SHA256 Credential=AKIANOSUCHKEY0000000/"
                     f"{datetime.now(timezone.utc):%Y%m%d}/{DEFAULT_REGION}/execute-api/aws4_request, "
                     f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}\r\n"
                     f"X-Amz-Date: {datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}\r\n"):  # fmt: skip
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
                       "Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n").encode())  # fmt: skip
            s.settimeout(5)
            head = s.recv(4096).decode(errors="replace")
        assert head.startswith("HTTP/1.1 403"), head
        expected = "Missing Authentication Token" if not auth else "The security token included in the request is invalid."
        assert expected in head, head


def test_policy_changes_and_deletion_reach_the_data_plane(gw):
    api_id = iam_api(gw, gw.a)
    p = principal(gw, gw.a, [allow("*")], known_at=api_id)
    assert call(gw, api_id, "/pets/1", sign=keys(p)).status_code == 200
    narrowed = gw.admin("principal", "put-policy", "--access-key-id", p["accessKeyId"], "--policy",
                        json.dumps({"Statement": [allow("*/prod/GET/admin")]}))  # fmt: skip
    assert narrowed["arn"] == p["arn"] and "admin" in narrowed["policy"]

    def until(pred, what):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.1)  # propagation polling
        raise AssertionError(f"{what} did not reach the data plane\n{gw.logs()[-3000:]}")

    until(lambda: call(gw, api_id, "/pets/1", sign=keys(p)).status_code == 403, "the narrowed policy")
    assert call(gw, api_id, "/admin", sign=keys(p)).status_code == 200
    listed = gw.admin("principal", "list", "--tenant", gw.a.account_id)["principals"]
    assert p["accessKeyId"] in [x["accessKeyId"] for x in listed]
    assert all("secretAccessKey" not in x for x in listed)
    assert gw.admin("principal", "delete", "--access-key-id", p["accessKeyId"]) == {}
    until(lambda: call(gw, api_id, "/admin", sign=keys(p)).status_code == 403, "the deletion")
    assert denied(call(gw, api_id, "/admin", sign=keys(p))) == "The security token included in the request is invalid."


def test_cross_tenant_callers_need_the_owners_resource_policy(gw):
    mine = iam_api(gw, gw.a)
    b_user = principal(gw, gw.b, [allow("*")], known_at=mine)
    arn = f"arn:aws:execute-api:{DEFAULT_REGION}:{gw.a.account_id}:{mine}"
    # B's identity allows everything, but A never granted B anything.
    assert denied(call(gw, mine, "/pets/1", sign=keys(b_user))) == (
        f"User: {b_user['arn']} is not authorized to perform: execute-api:Invoke on resource: {arn}/prod/GET/pets/1 "
        "because no resource-based policy allows the execute-api:Invoke action"
    )  # fmt: skip
    # B's account administrator is no administrator of A's APIs either.
    assert call(gw, mine, "/pets/1", sign=(gw.b.access_key, gw.b.secret_key)).status_code == 403

    # A grants B's user (only) on its `pets` resources, through the API's resource policy.
    grant = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": b_user["arn"]}, "Action": "execute-api:Invoke",
         "Resource": "execute-api:/prod/*/pets/*"}]})  # fmt: skip
    shared = iam_api(gw, gw.a, policy=grant)
    r = call(gw, shared, "/pets/1", sign=keys(b_user))
    assert r.status_code == 200, r.text
    assert r.json()["userArn"] == b_user["arn"] and r.json()["accountId"] == gw.b.account_id
    assert call(gw, shared, "/admin", sign=keys(b_user)).status_code == 403
    # Both sides must allow across accounts: a B user without identity permission stays out.
    b_nothing = principal(gw, gw.b, [allow("arn:aws:execute-api:*:*:nothing/*")], known_at=shared)
    assert "no identity-based policy" in denied(call(gw, shared, "/pets/1", sign=keys(b_nothing)))


def test_within_an_account_the_resource_policy_alone_may_allow(gw):
    a_user = principal(gw, gw.a, [allow("arn:aws:execute-api:*:*:nothing/*")])
    grant = json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": a_user["arn"]}, "Action": "execute-api:Invoke",
         "Resource": "execute-api:/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*/GET/admin"},
    ]})  # fmt: skip
    api_id = iam_api(gw, gw.a, policy=grant)
    assert call(gw, api_id, "/pets/1", sign=keys(a_user)).status_code == 200
    assert denied(call(gw, api_id, "/admin", sign=keys(a_user))).endswith("with an explicit deny")
    # The deny names everyone, administrators included.
    assert call(gw, api_id, "/admin", sign=(gw.a.access_key, gw.a.secret_key)).status_code == 403


def test_principal_administration_validates_and_isolates(gw):
    good = json.dumps({"Statement": [allow("*")]})

    def refused(*args: str) -> str:
        r = run_admin(gw.grpc_url, gw.admin_token, "principal", *args)
        assert r.returncode != 0, r.stdout
        return r.stderr

    assert "InvalidArgument" in refused("create", "--tenant", gw.a.account_id, "--name", "x", "--policy", "{}")
    assert "InvalidArgument" in refused("create", "--tenant", gw.a.account_id, "--name", "x", "--policy",
                                        json.dumps({"Statement": [{**allow("*"), "Principal": "*"}]}))  # fmt: skip
    assert "InvalidArgument" in refused("create", "--tenant", gw.a.account_id, "--name", "bad name", "--policy", good)
    assert "InvalidArgument" in refused("create", "--tenant", gw.a.account_id, "--name", "x", "--kind", "group",
                                        "--policy", good)  # fmt: skip
    assert "NotFound" in refused("create", "--tenant", "999999999999", "--name", "x", "--policy", good)
    name = uid("dup")
    gw.admin("principal", "create", "--tenant", gw.a.account_id, "--name", name, "--policy", good)
    assert "AlreadyExists" in refused("create", "--tenant", gw.a.account_id, "--name", name, "--policy", good)
    # The same name is another principal in another tenant, and as a role.
    gw.admin("principal", "create", "--tenant", gw.b.account_id, "--name", name, "--policy", good)
    role = gw.admin("principal", "create", "--tenant", gw.a.account_id, "--name", name, "--kind", "role",
                    "--policy", good)  # fmt: skip
    assert role["arn"] == f"arn:aws:iam::{gw.a.account_id}:role/{name}"
    assert "NotFound" in refused("put-policy", "--access-key-id", "AKIANOSUCHPRINCIPAL0", "--policy", good)
    assert "InvalidArgument" in refused("put-policy", "--access-key-id", role["accessKeyId"], "--policy", "[]")
    assert "NotFound" in refused("delete", "--access-key-id", "AKIANOSUCHPRINCIPAL0")
    listed_b = gw.admin("principal", "list", "--tenant", gw.b.account_id)["principals"]
    assert all(x["accountId"] == gw.b.account_id for x in listed_b)

    # A principal's key calls published APIs only, never the management API: told so in IAM's
    # words once its signature checks out; with a wrong secret it is a signature mismatch.
    with pytest.raises(ClientError) as e:
        make_client(gw.mgmt_url, Tenant("p", gw.a.account_id, *keys(role))).get_rest_apis()
    err = e.value.response["Error"]
    assert (e.value.response["ResponseMetadata"]["HTTPStatusCode"], err["Code"]) == (403, "AccessDeniedException")
    assert err["Message"] == (
        f"User: {role['arn']} is not authorized to perform: apigateway:GET on resource: "
        f"arn:aws:apigateway:{DEFAULT_REGION}::/restapis because no identity-based policy allows the "
        "apigateway:GET action"
    )  # fmt: skip
    with pytest.raises(ClientError) as e:
        make_client(gw.mgmt_url, Tenant("p", gw.a.account_id, role["accessKeyId"], "wrong")).get_rest_apis()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


# Standalone's node is in-process, with a token of its own: this is about separate nodes.
@pytest.mark.parametrize("gw", ["cluster"], indirect=True)
def test_a_node_without_the_node_token_gets_no_config(gw, tmp_path):
    port, metrics_port = free_port(), free_port()
    intruder = ServerProcess("intruder", [
        APIGW_BIN, "data-plane", "--control-plane", gw.grpc_url, "--node-id", "intruder",
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port),
        "--state-dir", str(tmp_path / "state"),
    ], tmp_path / "logs", metrics_port, cwd=tmp_path)  # fmt: skip
    intruder.start()
    try:
        intruder.wait_ready()
        api_id = iam_api(gw, gw.a)  # served by the real node by now
        deadline = time.monotonic() + 15
        while "a node token is required" not in intruder.logs():
            assert time.monotonic() < deadline, intruder.logs()[-2000:]
            time.sleep(0.1)  # until the intruder has been refused at least once
        # The intruder serves nothing: every API is unknown to it, and it holds no keys.
        r = requests.get(f"http://127.0.0.1:{port}/restapis/{api_id}/prod/_user_request_/", timeout=10)
        assert (r.status_code, r.json()) == (403, {"message": "Forbidden"})
        assert not (tmp_path / "state" / "last-known-good.json").exists()
        nodes = gw.admin("nodes", "list")["nodes"]
        assert [n["nodeId"] for n in nodes] == ["iam-node"], nodes
    finally:
        intruder.stop()
