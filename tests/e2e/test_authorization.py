"""Authorization end to end: authorizers managed with boto3, Lambda authorizers that are real
Python functions on apigw's function host (run by `awslambdaric`), Cognito user-pool authorizers
fed by tokens from moto's `cognito-idp` server (a user-pool emulator from PyPI), resource
policies, and tenant isolation of authorizers — on `apigw standalone`, through its data plane.

Each authorizer function appends the token (or identity) it was called with to a file, so the
tests see exactly when the gateway called it and when it answered from its cache.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from conftest import (
    APIGW_BIN,
    BACKENDS,
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
from test_lambda_proxy import REGION, Deployment, invocation_uri, wait_served

ECHO = Path(__file__).resolve().parents[2] / "examples" / "python-echo" / "app.py"

# The authorizer: the token picks the answer. `allow-*` allows every method of the API with a
# context; `deny` denies; `other-path` allows only a path no test calls; `unauthorized` fails with
# exactly "Unauthorized"; `nested` returns a context AWS refuses; `crash` fails otherwise.
AUTHORIZER_CODE = '''
import json

CALLS = {calls!r}

def handler(event, context):
    identity = event.get("authorizationToken") or ",".join(
        [(event.get("headers") or {{}}).get("x-user", ""), (event.get("queryStringParameters") or {{}}).get("team", "")]
    )
    with open(CALLS, "a") as f:
        f.write(json.dumps({{"identity": identity, "type": event["type"], "methodArn": event["methodArn"],
                            "event": event}}) + "\\n")
    arn = event["methodArn"]
    api_arn = arn.split("/")[0]
    if identity == "unauthorized":
        raise Exception("Unauthorized")
    if identity == "crash":
        raise Exception("something else")
    if identity == "deny":
        effect, resource = "Deny", api_arn + "/*"
    elif identity == "other-path":
        effect, resource = "Allow", api_arn + "/*/GET/nowhere"
    else:
        effect, resource = "Allow", api_arn + "/*"
    answer = {{
        "principalId": "user-" + identity,
        "policyDocument": {{"Version": "2012-10-17", "Statement": [
            {{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}}]}},
        "context": {{"tier": "gold", "n": 7, "flag": True}},
        "usageIdentifierKey": "key-" + identity,
    }}
    if identity == "nested":
        answer["context"] = {{"deep": {{"x": 1}}}}
    return answer
'''


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """moto's server (cognito-idp): its URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "moto server did not start"
            time.sleep(0.2)  # start-up polling
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory, moto):
    base = tmp_path_factory.mktemp("auth-standalone")
    l = launch_standalone(base, "auth-standalone")
    data_port = l.proc.argv[l.proc.argv.index("--data-plane-port") + 1]
    # Python functions run by this interpreter's awslambdaric; user-pool keys come from moto,
    # whose tokens name AWS's issuer (decisions.md: issuer and JWKS location are separate).
    l.proc.stop()
    l.proc.argv += ["--function-python", sys.executable, "--cognito-jwks-base-url", moto]
    l.proc.start()
    l.proc.wait_ready()
    d = Deployment(l.mgmt_url, f"http://127.0.0.1:{data_port}", Tenant("dev", DEV_ACCOUNT, "test", "test"), [l.proc])
    d.launch = l
    yield d
    shutdown(l)


@pytest.fixture(scope="module")
def functions(standalone, tmp_path_factory):
    """(authorizer ARN, file of its calls, echo backend ARN)."""
    return make_functions(standalone, tmp_path_factory)


def make_functions(d: Deployment, tmp_path_factory) -> tuple[str, Path, str]:
    tmp = tmp_path_factory.mktemp("auth-fns")
    calls = tmp / "calls.jsonl"
    calls.write_text("")
    auth_zip, echo_zip = tmp / "auth.zip", tmp / "echo.zip"
    with zipfile.ZipFile(auth_zip, "w") as z:
        z.writestr("auth.py", AUTHORIZER_CODE.format(calls=str(calls)))
    with zipfile.ZipFile(echo_zip, "w") as z:
        z.write(ECHO, "app.py")
    authorizer = d.create_function(auth_zip, "python3.12", "auth.handler", timeout=5)
    echo = d.create_function(echo_zip, "python3.12", "app.handler", timeout=5)
    return authorizer, calls, echo


def calls_of(calls: Path) -> list[dict]:
    return [json.loads(line) for line in calls.read_text().splitlines() if line.strip()]


def api_with_method(d: Deployment, echo_arn: str, *, policy: str | None = None, method_kw: dict | None = None,
                    authorizer: dict | None = None, api_kw: dict | None = None) -> tuple[str, str | None]:  # fmt: skip
    """An API with `GET /` and `GET /{proxy+}` → the echo function, optionally behind an authorizer."""
    c = d.client
    api = c.create_rest_api(name=uid("auth-api"), **({"policy": policy} if policy else {}), **(api_kw or {}))
    authorizer_id = None
    kw = dict(method_kw or {"authorizationType": "NONE"})
    if authorizer:
        authorizer_id = c.create_authorizer(restApiId=api["id"], **authorizer)["id"]
        kind = "COGNITO_USER_POOLS" if authorizer["type"] == "COGNITO_USER_POOLS" else "CUSTOM"
        kw.update(authorizationType=kind, authorizerId=authorizer_id)
    root = next(r for r in c.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
    greedy = c.create_resource(restApiId=api["id"], parentId=root["id"], pathPart="{proxy+}")
    for resource in (root["id"], greedy["id"]):
        c.put_method(restApiId=api["id"], resourceId=resource, httpMethod="GET", **kw)
        c.put_integration(restApiId=api["id"], resourceId=resource, httpMethod="GET", type="AWS_PROXY",
                          integrationHttpMethod="POST", uri=invocation_uri(echo_arn))  # fmt: skip
    c.create_deployment(restApiId=api["id"], stageName="prod")
    return api["id"], authorizer_id


def wait_deployed(d: Deployment, api_id: str, **kw) -> None:
    """Until the stage is routed: anything but the unknown-API 403 `Forbidden`."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = d.call(api_id, "/", **kw)
        if r.text != '{"message":"Forbidden"}':
            return
        time.sleep(0.1)  # propagation polling
    raise AssertionError(f"API {api_id} not served\n{d.logs()}")


def token_authorizer(function_arn: str, ttl: int = 300, **extra) -> dict:
    return {
        "name": uid("tok"),
        "type": "TOKEN",
        "authorizerUri": invocation_uri(function_arn),
        "identitySource": "method.request.header.Authorization",
        "authorizerResultTtlInSeconds": ttl,
        **extra,
    }


# --------------------------------------------------------------------------------------------
# Management
# --------------------------------------------------------------------------------------------


def test_authorizer_crud_and_validation(standalone, functions):
    c = standalone.client
    api = c.create_rest_api(name=uid("auth-crud"))
    created = c.create_authorizer(restApiId=api["id"], **token_authorizer(functions[0], ttl=0))
    assert created["type"] == "TOKEN"
    assert created["authorizerResultTtlInSeconds"] == 0
    default_ttl = c.create_authorizer(
        restApiId=api["id"], name="req", type="REQUEST", authorizerUri=invocation_uri(functions[0]),
        identitySource="method.request.header.X-User, method.request.querystring.team",
    )  # fmt: skip
    assert default_ttl["authorizerResultTtlInSeconds"] == 300
    got = c.get_authorizer(restApiId=api["id"], authorizerId=created["id"])
    assert {k: v for k, v in got.items() if k != "ResponseMetadata"} == {
        k: v for k, v in created.items() if k != "ResponseMetadata"
    }
    listed = c.get_authorizers(restApiId=api["id"])["items"]
    assert {a["id"] for a in listed} == {created["id"], default_ttl["id"]}
    updated = c.update_authorizer(
        restApiId=api["id"], authorizerId=created["id"],
        patchOperations=[{"op": "replace", "path": "/authorizerResultTtlInSeconds", "value": "60"},
                         {"op": "replace", "path": "/name", "value": "renamed"}],
    )  # fmt: skip
    assert (updated["authorizerResultTtlInSeconds"], updated["name"]) == (60, "renamed")

    def bad(**kw):
        with pytest.raises(ClientError) as e:
            c.create_authorizer(restApiId=api["id"], **kw)
        return e.value.response["Error"]["Code"]

    assert bad(**token_authorizer(functions[0], ttl=3601)) == "BadRequestException"
    assert bad(**token_authorizer(functions[0], identitySource="method.request.querystring.t")) == "BadRequestException"
    assert bad(name="x", type="TOKEN", authorizerUri="arn:aws:lambda:us-east-1:1:function:f",
               identitySource="method.request.header.A") == "BadRequestException"  # fmt: skip
    assert bad(name="x", type="COGNITO_USER_POOLS", identitySource="method.request.header.A") == "BadRequestException"

    # A method may only name one of the API's authorizers, of a matching kind.
    root = c.get_resources(restApiId=api["id"])["items"][0]["id"]
    with pytest.raises(ClientError) as e:
        c.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="CUSTOM",
                     authorizerId="nope123")  # fmt: skip
    assert e.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ClientError) as e:
        c.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="COGNITO_USER_POOLS",
                     authorizerId=created["id"])  # fmt: skip
    assert e.value.response["Error"]["Code"] == "BadRequestException"
    c.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="CUSTOM",
                 authorizerId=created["id"])  # fmt: skip
    # In use: not deletable.
    with pytest.raises(ClientError) as e:
        c.delete_authorizer(restApiId=api["id"], authorizerId=created["id"])
    assert e.value.response["Error"]["Code"] == "ConflictException"
    c.delete_authorizer(restApiId=api["id"], authorizerId=default_ttl["id"])
    with pytest.raises(ClientError) as e:
        c.get_authorizer(restApiId=api["id"], authorizerId=default_ttl["id"])
    assert e.value.response["Error"]["Code"] == "NotFoundException"


def test_a_tenant_cannot_use_another_tenants_authorizer(standalone, functions):
    a = standalone.client
    api_a = a.create_rest_api(name=uid("auth-a"))
    authorizer = a.create_authorizer(restApiId=api_a["id"], **token_authorizer(functions[0]))
    b_tenant = provision_tenant(standalone.launch.grpc_url, standalone.launch.admin_token, uid("auth-b"))
    b = make_client(standalone.mgmt_url, b_tenant, region=REGION)
    api_b = b.create_rest_api(name=uid("auth-b"))
    root_b = b.get_resources(restApiId=api_b["id"])["items"][0]["id"]
    with pytest.raises(ClientError) as e:
        b.put_method(restApiId=api_b["id"], resourceId=root_b, httpMethod="GET", authorizationType="CUSTOM",
                     authorizerId=authorizer["id"])  # fmt: skip
    assert e.value.response["Error"]["Code"] == "BadRequestException"
    assert authorizer["id"] in e.value.response["Error"]["Message"]
    # Nor see it, even knowing both ids.
    with pytest.raises(ClientError) as e:
        b.get_authorizer(restApiId=api_a["id"], authorizerId=authorizer["id"])
    assert e.value.response["Error"]["Code"] == "NotFoundException"


# --------------------------------------------------------------------------------------------
# Lambda authorizers on the data plane
# --------------------------------------------------------------------------------------------


def test_token_authorizer_allows_denies_caches_and_passes_context(standalone, functions):
    authorizer_arn, calls, echo = functions
    api_id, _ = api_with_method(standalone, echo, authorizer=token_authorizer(authorizer_arn, ttl=300))
    wait_deployed(standalone, api_id)
    before = len(calls_of(calls))

    # No token: 401 without calling the function.
    r = standalone.call(api_id, "/")
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})
    assert len(calls_of(calls)) == before

    token = "allow-" + uid("t")
    r = standalone.call(api_id, "/pets/1", headers={"Authorization": token})
    assert r.status_code == 200, r.text
    authorizer_ctx = r.json()["event"]["requestContext"]["authorizer"]
    assert authorizer_ctx["principalId"] == "user-" + token
    # Context values reach the backend stringified (decisions.md).
    assert (authorizer_ctx["tier"], authorizer_ctx["n"], authorizer_ctx["flag"]) == ("gold", "7", "true")
    seen = [c for c in calls_of(calls) if c["identity"] == token]
    assert len(seen) == 1
    assert seen[0]["type"] == "TOKEN"
    assert seen[0]["methodArn"] == f"arn:aws:execute-api:{REGION}:{DEV_ACCOUNT}:{api_id}/prod/GET/pets/1"
    assert set(seen[0]["event"]) == {"type", "authorizationToken", "methodArn"}

    # Within the TTL the answer comes from the cache, re-checked against each method ARN.
    for path in ("/pets/1", "/", "/other"):
        r = standalone.call(api_id, path, headers={"Authorization": token})
        assert r.status_code == 200, r.text
    assert len([c for c in calls_of(calls) if c["identity"] == token]) == 1

    r = standalone.call(api_id, "/", headers={"Authorization": "deny"})
    assert (r.status_code, r.json()) == (
        403, {"message": "User is not authorized to access this resource with an explicit deny"})  # fmt: skip
    r = standalone.call(api_id, "/", headers={"Authorization": "other-path"})
    assert (r.status_code, r.json()) == (403, {"message": "User is not authorized to access this resource"})
    assert r.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    r = standalone.call(api_id, "/", headers={"Authorization": "unauthorized"})
    assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})
    for broken in ("crash", "nested"):
        r = standalone.call(api_id, "/", headers={"Authorization": broken})
        assert r.status_code == 500, r.text
        assert r.headers["x-amzn-ErrorType"] == "AuthorizerConfigurationException"


def test_api_key_source_authorizer_takes_the_usage_identifier_key(standalone, functions):
    authorizer_arn, calls, echo = functions
    api_id, _ = api_with_method(standalone, echo, authorizer=token_authorizer(authorizer_arn),
                                method_kw={"apiKeyRequired": True}, api_kw={"apiKeySource": "AUTHORIZER"})  # fmt: skip
    c = standalone.client
    token = "allow-" + uid("k")
    # The authorizer answers usageIdentifierKey "key-<token>": make that a key of a plan on the stage.
    key = c.create_api_key(name=uid("key"), enabled=True, value="key-" + token)
    plan = c.create_usage_plan(name=uid("plan"), apiStages=[{"apiId": api_id, "stage": "prod"}])
    c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    deadline = time.monotonic() + 15
    while True:
        r = standalone.call(api_id, "/pets/1", headers={"Authorization": token})
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # propagation polling (the plan republishes the stage)
    assert r.status_code == 200, r.text
    identity = r.json()["event"]["requestContext"]["identity"]
    assert (identity["apiKey"], identity["apiKeyId"]) == ("key-" + token, key["id"])

    # Another token's usageIdentifierKey is no key of the plan; the header is not the source here.
    other = "allow-" + uid("k")
    r = standalone.call(api_id, "/pets/1", headers={"Authorization": other, "x-api-key": "key-" + token})
    assert (r.status_code, r.json(), r.headers["x-amzn-ErrorType"]) == (403, {"message": "Forbidden"}, "ForbiddenException")


def test_token_validation_expression_and_no_cache(standalone, functions):
    authorizer_arn, calls, echo = functions
    api_id, _ = api_with_method(
        standalone, echo,
        authorizer=token_authorizer(authorizer_arn, ttl=0, identityValidationExpression="allow-[a-z0-9-]+"),
    )  # fmt: skip
    wait_deployed(standalone, api_id)
    before = len(calls_of(calls))
    # Not matching the expression: 401 without a call.
    r = standalone.call(api_id, "/", headers={"Authorization": "ALLOW-nope"})
    assert r.status_code == 401
    assert len(calls_of(calls)) == before
    token = "allow-" + uid("nc").lower()
    for _ in range(2):
        assert standalone.call(api_id, "/", headers={"Authorization": token}).status_code == 200
    # TTL 0: called every time.
    assert len([c for c in calls_of(calls) if c["identity"] == token]) == 2


def test_request_authorizer(standalone, functions):
    authorizer_arn, calls, echo = functions
    api_id, _ = api_with_method(standalone, echo, authorizer={
        "name": uid("req"), "type": "REQUEST", "authorizerUri": invocation_uri(authorizer_arn),
        "identitySource": "method.request.header.X-User, method.request.querystring.team",
        "authorizerResultTtlInSeconds": 300,
    })  # fmt: skip
    wait_deployed(standalone, api_id)
    before = len(calls_of(calls))
    # Any source missing: 401 without a call.
    assert standalone.call(api_id, "/", headers={"X-User": "allow-x"}).status_code == 401
    assert standalone.call(api_id, "/", params={"team": "t"}).status_code == 401
    assert len(calls_of(calls)) == before
    user = "allow-" + uid("r")
    r = standalone.call(api_id, "/things/9", headers={"X-User": user}, params={"team": "blue"})
    assert r.status_code == 200, r.text
    assert r.json()["event"]["requestContext"]["authorizer"]["principalId"] == f"user-{user},blue"
    seen = [c for c in calls_of(calls) if c["identity"] == f"{user},blue"]
    assert len(seen) == 1
    event = seen[0]["event"]
    assert event["type"] == "REQUEST"
    assert event["methodArn"].endswith(f":{api_id}/prod/GET/things/9")
    assert event["resource"] == "/{proxy+}"
    assert event["path"] == "/things/9"
    assert event["httpMethod"] == "GET"
    assert event["headers"]["x-user"] == user
    assert event["queryStringParameters"] == {"team": "blue"}
    assert event["pathParameters"] == {"proxy": "things/9"}
    assert event["requestContext"]["apiId"] == api_id
    assert "body" not in event
    # Another team is another cache key.
    assert standalone.call(api_id, "/", headers={"X-User": user}, params={"team": "red"}).status_code == 200
    assert standalone.call(api_id, "/", headers={"X-User": user}, params={"team": "blue"}).status_code == 200
    assert len([c for c in calls_of(calls) if c["identity"].startswith(user)]) == 2


# --------------------------------------------------------------------------------------------
# Resource policies
# --------------------------------------------------------------------------------------------


def ip_policy(effect: str, operator: str, cidrs: list[str]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*"},
        {"Effect": effect, "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*",
         "Condition": {operator: {"aws:SourceIp": cidrs}}},
    ]})  # fmt: skip


def test_unreadable_policies_are_refused(standalone):
    c = standalone.client
    for bad in ("not json", json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                                                       "Condition": {"DateLessThan": {"aws:CurrentTime": "x"}}}]})):  # fmt: skip
        with pytest.raises(ClientError) as e:
            c.create_rest_api(name=uid("bad-policy"), policy=bad)
        assert e.value.response["Error"]["Code"] == "BadRequestException"
        assert e.value.response["Error"]["Message"].startswith("Invalid policy document.")
    api = c.create_rest_api(name=uid("policy"), policy=ip_policy("Deny", "IpAddress", ["10.0.0.0/8"]))
    with pytest.raises(ClientError) as e:
        c.update_rest_api(restApiId=api["id"], patchOperations=[{"op": "replace", "path": "/policy", "value": "{}"}])
    assert e.value.response["Error"]["Code"] == "BadRequestException"
    assert json.loads(c.get_rest_api(restApiId=api["id"])["policy"]) == json.loads(
        ip_policy("Deny", "IpAddress", ["10.0.0.0/8"]))  # fmt: skip


def test_resource_policy_by_ip_range(standalone, functions):
    _, _, echo = functions
    # Deny everyone outside 10/8 and 2001:db8::/32: our 127.0.0.1 is outside.
    denied, _ = api_with_method(standalone, echo, policy=ip_policy("Deny", "NotIpAddress", ["10.0.0.0/8", "2001:db8::/32"]))
    wait_deployed(standalone, denied)
    r = standalone.call(denied, "/x")
    assert r.status_code == 403
    assert r.json()["message"] == (
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        f"arn:aws:execute-api:{REGION}:{DEV_ACCOUNT}:{denied}/prod/GET/x with an explicit deny"
    )
    # Deny 10/8 only: we pass.
    allowed, _ = api_with_method(standalone, echo, policy=ip_policy("Deny", "IpAddress", ["10.0.0.0/8", "::1/128"]))
    wait_deployed(standalone, allowed)
    assert standalone.call(allowed, "/x").status_code == 200
    # Deny loopback: refused.
    loop, _ = api_with_method(standalone, echo, policy=ip_policy("Deny", "IpAddress", ["127.0.0.0/8"]))
    wait_deployed(standalone, loop)
    assert standalone.call(loop, "/x").status_code == 403
    # A policy that allows nobody we match: no explicit Allow → refused without "explicit deny".
    silent = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "execute-api:Invoke",
                                        "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}]})  # fmt: skip
    nobody, _ = api_with_method(standalone, echo, policy=silent)
    wait_deployed(standalone, nobody)
    r = standalone.call(nobody, "/x")
    assert r.status_code == 403
    assert not r.json()["message"].endswith("explicit deny")


def test_resource_policy_deny_stops_before_the_authorizer(standalone, functions):
    authorizer_arn, calls, echo = functions
    api_id, _ = api_with_method(standalone, echo, policy=ip_policy("Deny", "IpAddress", ["127.0.0.0/8"]),
                                authorizer=token_authorizer(authorizer_arn))  # fmt: skip
    wait_deployed(standalone, api_id, headers={"Authorization": "x"})
    token = "allow-" + uid("pd")
    r = standalone.call(api_id, "/", headers={"Authorization": token})
    assert r.status_code == 403
    assert r.json()["message"].endswith("with an explicit deny")
    assert not [c for c in calls_of(calls) if c["identity"] == token]


# --------------------------------------------------------------------------------------------
# Cognito user pools (moto's cognito-idp)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool(moto):
    """A pool with two app clients and a user; the user's tokens from InitiateAuth."""
    idp = boto3.client("cognito-idp", endpoint_url=moto, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
    pool_id = idp.create_user_pool(PoolName=uid("pool"))["UserPool"]["Id"]
    clients = [
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName=uid("app"),
                                    ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
                                    )["UserPoolClient"]["ClientId"]
        for _ in range(2)
    ]  # fmt: skip
    idp.admin_create_user(UserPoolId=pool_id, Username="alice", MessageAction="SUPPRESS",
                          UserAttributes=[{"Name": "email", "Value": "alice@example.com"}])  # fmt: skip
    idp.admin_set_user_password(UserPoolId=pool_id, Username="alice", Password="Secret-pass-1!", Permanent=True)

    def tokens(client_id: str) -> dict:
        return idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                 AuthParameters={"USERNAME": "alice", "PASSWORD": "Secret-pass-1!"})["AuthenticationResult"]  # fmt: skip

    return {"id": pool_id, "clients": clients, "tokens": tokens,
            "arn": f"arn:aws:cognito-idp:{REGION}:{DEV_ACCOUNT}:userpool/{pool_id}"}  # fmt: skip


def forged(claims: dict) -> str:
    """A token signed with moto's own pool key, with claims moto would never issue (expired, other
    issuer): the gateway must refuse it on the claims, since the signature is good."""
    import moto.cognitoidp
    from joserfc import jwk, jwt

    resources = Path(moto.cognitoidp.__file__).parent / "resources" / "jwks-private.json.gz"
    key = jwk.RSAKey.import_key(json.loads(gzip.decompress(resources.read_bytes())))
    return jwt.encode({"kid": "dummy", "alg": "RS256"}, claims, key)


def test_cognito_user_pool_tokens(standalone, functions, pool):
    _, _, echo = functions
    client_a, client_b = pool["clients"]
    api_id, _ = api_with_method(standalone, echo, authorizer={
        "name": uid("pool"), "type": "COGNITO_USER_POOLS", "providerARNs": [pool["arn"]],
        "identitySource": "method.request.header.Authorization",
        # Only app client A's tokens.
        "identityValidationExpression": client_a,
    })  # fmt: skip
    wait_deployed(standalone, api_id)
    good = pool["tokens"](client_a)
    r = standalone.call(api_id, "/me", headers={"Authorization": good["IdToken"]})
    assert r.status_code == 200, r.text
    claims = r.json()["event"]["requestContext"]["authorizer"]["claims"]
    assert claims["cognito:username"] == "alice"
    assert claims["aud"] == client_a
    assert claims["token_use"] == "id"
    assert claims["iss"] == f"https://cognito-idp.{REGION}.amazonaws.com/{pool['id']}"
    assert isinstance(claims["exp"], str), "claims are strings on REST APIs"

    unauthorized = (401, {"message": "Unauthorized"})

    def status(token: str | None) -> tuple[int, dict]:
        r = standalone.call(api_id, "/me", headers={"Authorization": token} if token is not None else {})
        return r.status_code, r.json()

    assert status(None) == unauthorized
    assert status("not-a-jwt") == unauthorized
    # Wrong audience: a token of the pool's other app client.
    assert status(pool["tokens"](client_b)["IdToken"]) == unauthorized
    # An access token where the method lists no scopes.
    assert status(good["AccessToken"]) == unauthorized
    # Tampered: the payload changed, the signature kept.
    head, payload, sig = good["IdToken"].split(".")
    assert status(f"{head}.{payload[:-4]}AAAA.{sig}") == unauthorized
    now = int(time.time())
    base = {"sub": "s", "aud": client_a, "token_use": "id", "cognito:username": "mallory",
            "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{pool['id']}", "iat": now - 7200}  # fmt: skip
    # Validly signed but expired; and validly signed for another issuer.
    assert status(forged({**base, "exp": now - 60})) == unauthorized
    assert status(forged({**base, "exp": now + 600, "iss": "https://evil.example.com/pool"})) == unauthorized
    assert status(forged({**base, "exp": now + 600, "iss": base["iss"] + "x"})) == unauthorized
    # The same forged-but-valid claims are accepted: the refusals above are for the claims.
    assert status(forged({**base, "exp": now + 600}))[0] == 200


def test_cognito_scopes_need_access_tokens(standalone, functions, pool):
    _, _, echo = functions
    api_id, _ = api_with_method(
        standalone, echo,
        method_kw={"authorizationScopes": ["aws.cognito.signin.user.admin"]},
        authorizer={"name": uid("pool"), "type": "COGNITO_USER_POOLS", "providerARNs": [pool["arn"]],
                    "identitySource": "method.request.header.Authorization"},
    )  # fmt: skip
    wait_deployed(standalone, api_id)
    tokens = pool["tokens"](pool["clients"][0])
    r = standalone.call(api_id, "/", headers={"Authorization": tokens["AccessToken"]})
    assert r.status_code == 200, r.text
    assert r.json()["event"]["requestContext"]["authorizer"]["claims"]["username"] == "alice"
    assert standalone.call(api_id, "/", headers={"Authorization": tokens["IdToken"]}).status_code == 401


def test_authorizer_output_in_context_mappings(standalone, functions):
    """`$context.authorizer.*` in parameter mappings: a MOCK answers with headers mapped from it."""
    authorizer_arn, _, _ = functions
    c = standalone.client
    api = c.create_rest_api(name=uid("auth-ctx"))
    authorizer_id = c.create_authorizer(restApiId=api["id"], **token_authorizer(authorizer_arn))["id"]
    root = c.get_resources(restApiId=api["id"])["items"][0]["id"]
    c.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="CUSTOM",
                 authorizerId=authorizer_id)  # fmt: skip
    c.put_method_response(restApiId=api["id"], resourceId=root, httpMethod="GET", statusCode="200",
                          responseParameters={"method.response.header.X-Principal": False,
                                              "method.response.header.X-Tier": False})  # fmt: skip
    c.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="MOCK",
                      requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
    c.put_integration_response(
        restApiId=api["id"], resourceId=root, httpMethod="GET", statusCode="200",
        responseParameters={"method.response.header.X-Principal": "context.authorizer.principalId",
                            "method.response.header.X-Tier": "context.authorizer.tier"},
    )  # fmt: skip
    c.create_deployment(restApiId=api["id"], stageName="prod")
    wait_deployed(standalone, api["id"])
    token = "allow-" + uid("ctx")
    r = standalone.call(api["id"], "/", headers={"Authorization": token})
    assert r.status_code == 200, r.text
    assert (r.headers["X-Principal"], r.headers["X-Tier"]) == ("user-" + token, "gold")


# --------------------------------------------------------------------------------------------
# TestInvokeAuthorizer and FlushStageAuthorizersCache, on both backends
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def nodes(request, tmp_path_factory, moto):
    """(one Deployment per data-plane node, the functions): standalone (one node in-process), or a
    control plane on Postgres hosting the functions with two separate `apigw data-plane` nodes.
    Control plane and nodes alike read user pools' keys from moto."""
    if request.param == "standalone":
        standalone = request.getfixturevalue("standalone")
        yield [standalone], request.getfixturevalue("functions")
        return
    base = tmp_path_factory.mktemp("auth-cluster")
    cp = launch_control_plane(base / "cp", "auth-cp")
    procs: list[ServerProcess] = []
    try:
        cp.proc.stop()
        cp.proc.argv += ["--function-python", sys.executable, "--cognito-jwks-base-url", moto]
        cp.proc.start()
        cp.proc.wait_ready()
        key = admin_json(cp.grpc_url, cp.admin_token, "service-key", "create", "--description", "auth nodes")
        tenant = provision_tenant(cp.grpc_url, cp.admin_token, uid("auth-tenant"))
        deployments = []
        for name in ("auth-node-1", "auth-node-2"):
            port, metrics_port = free_port(), free_port()
            argv = [
                APIGW_BIN, "data-plane",
                "--control-plane", cp.grpc_url,
                "--node-id", name,
                "--host", "127.0.0.1",
                "--port", str(port),
                "--metrics-port", str(metrics_port),
                "--state-dir", str(base / name),
                "--lambda-endpoint", cp.mgmt_url,
                "--lambda-access-key-id", key["accessKeyId"],
                "--lambda-secret-access-key", key["secretAccessKey"],
                "--cognito-jwks-base-url", moto,
            ]  # fmt: skip
            node = ServerProcess(name, argv, base / "logs", metrics_port, cwd=base)
            node.start()
            procs.append(node)
            node.wait_ready()
            d = Deployment(cp.mgmt_url, f"http://127.0.0.1:{port}", tenant, [cp.proc, *procs])
            d.launch = cp
            deployments.append(d)
        yield deployments, make_functions(deployments[0], tmp_path_factory)
    finally:
        for p in procs:
            p.stop()
        shutdown(cp)


def test_invoke_authorizer_runs_the_real_function(nodes):
    deployments, (authorizer_arn, calls, _) = nodes
    d = deployments[0]
    c = d.client
    api_id = c.create_rest_api(name=uid("auth-ti"))["id"]
    token_id = c.create_authorizer(restApiId=api_id, **token_authorizer(authorizer_arn))["id"]
    request_id = c.create_authorizer(
        restApiId=api_id, name=uid("req"), type="REQUEST", authorizerUri=invocation_uri(authorizer_arn),
        identitySource="method.request.header.X-User, method.request.querystring.team",
    )["id"]  # fmt: skip

    def test(authorizer_id=token_id, **kw) -> dict:
        r = c.test_invoke_authorizer(restApiId=api_id, authorizerId=authorizer_id, **kw)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
        return r

    # No token: 401 without calling the function.
    before = len(calls_of(calls))
    r = test(headers={})
    assert r["clientStatus"] == 401
    assert "principalId" not in r and "policy" not in r
    assert f"Starting authorizer: {token_id}" in r["log"]
    assert len(calls_of(calls)) == before

    # Allow: principal, the policy as JSON text, the context; the function saw AWS's test method ARN.
    token = "allow-" + uid("ti")
    r = test(headers={"Authorization": token})
    assert r["clientStatus"] == 200, r["log"]
    assert r["principalId"] == "user-" + token
    policy = json.loads(r["policy"])
    assert policy["Statement"] == [{
        "Action": "execute-api:Invoke", "Effect": "Allow",
        "Resource": f"arn:aws:execute-api:{REGION}:{d.tenant.account_id}:{api_id}/*"}]  # fmt: skip
    assert r["authorization"] == {"tier": ["gold"], "n": ["7"], "flag": ["true"]}
    assert isinstance(r["latency"], int) and r["latency"] >= 0
    seen = [x for x in calls_of(calls) if x["identity"] == token]
    assert len(seen) == 1
    assert seen[0]["methodArn"] == f"arn:aws:execute-api:{REGION}:{d.tenant.account_id}:{api_id}/ESTestInvoke-stage/GET/"
    # Never answered from a cache.
    test(headers={"Authorization": token})
    assert len([x for x in calls_of(calls) if x["identity"] == token]) == 2

    # Deny is still the function's valid answer; what it denies is for the method to enforce.
    r = test(headers={"Authorization": "deny"})
    assert r["clientStatus"] == 200
    assert json.loads(r["policy"])["Statement"][0]["Effect"] == "Deny"
    assert r["principalId"] == "user-deny"

    # "Unauthorized" → 401; other failures and malformed answers → 500.
    assert test(headers={"Authorization": "unauthorized"})["clientStatus"] == 401
    for broken in ("crash", "nested"):
        r = test(headers={"Authorization": broken})
        assert r["clientStatus"] == 500, r["log"]
        assert "principalId" not in r
        assert "AuthorizerConfigurationException" in r["log"]

    # REQUEST: headers (single or multi-valued) and the query string of pathWithQueryString.
    user = "allow-" + uid("tr")
    r = test(request_id, headers={"X-User": user}, pathWithQueryString="/things/9?team=blue")
    assert r["clientStatus"] == 200, r["log"]
    assert r["principalId"] == f"user-{user},blue"
    event = [x for x in calls_of(calls) if x["identity"] == f"{user},blue"][-1]["event"]
    assert event["type"] == "REQUEST"
    assert event["path"] == "/things/9"
    assert event["queryStringParameters"] == {"team": "blue"}
    assert event["methodArn"].endswith(f":{api_id}/ESTestInvoke-stage/GET/things/9")
    r = test(request_id, multiValueHeaders={"X-User": [user]}, pathWithQueryString="/?team=red")
    assert r["principalId"] == f"user-{user},red"
    before = len(calls_of(calls))
    assert test(request_id, headers={"X-User": user}, pathWithQueryString="/x")["clientStatus"] == 401
    assert len(calls_of(calls)) == before

    # Unknown ids, another tenant's ids, and invalid input.
    def refused(client, api, authorizer, **kw) -> str:
        with pytest.raises(ClientError) as e:
            client.test_invoke_authorizer(restApiId=api, authorizerId=authorizer, **kw)
        return e.value.response["Error"]["Code"]

    assert refused(c, api_id, "nope123", headers={}) == "NotFoundException"
    assert refused(c, "nope123456", token_id, headers={}) == "NotFoundException"
    other = provision_tenant(d.launch.grpc_url, d.launch.admin_token, uid("auth-other"))
    b = make_client(d.mgmt_url, other, region=REGION)
    assert refused(b, api_id, token_id, headers={"Authorization": "allow-x"}) == "NotFoundException"
    assert refused(c, api_id, token_id, headers={"bad name": "x"}) == "BadRequestException"
    assert refused(c, api_id, token_id, headers={}, pathWithQueryString="no-slash") == "BadRequestException"


def test_invoke_cognito_authorizer(nodes, pool):
    """The token is verified by the control plane as the nodes verify it, against moto's keys."""
    deployments, (_, _, echo) = nodes
    d = deployments[0]
    c = d.client
    client_a, client_b = pool["clients"]
    # Only app client A's tokens; a method behind the same authorizer, to compare with.
    api_id, authorizer_id = api_with_method(d, echo, authorizer={
        "name": uid("pool"), "type": "COGNITO_USER_POOLS", "providerARNs": [pool["arn"]],
        "identitySource": "method.request.header.Authorization", "identityValidationExpression": client_a,
    })  # fmt: skip

    def test(**kw) -> dict:
        r = c.test_invoke_authorizer(restApiId=api_id, authorizerId=authorizer_id, **kw)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
        return r

    good = pool["tokens"](client_a)["IdToken"]
    r = test(headers={"Authorization": good})
    assert r["clientStatus"] == 200, r["log"]
    claims = r["claims"]
    assert claims["cognito:username"] == "alice"
    assert claims["aud"] == client_a
    assert claims["token_use"] == "id"
    assert claims["iss"] == f"https://cognito-idp.{REGION}.amazonaws.com/{pool['id']}"
    assert all(isinstance(v, str) for v in claims.values()), claims
    assert "principalId" not in r and "policy" not in r and "authorization" not in r
    assert isinstance(r["latency"], int) and r["latency"] >= 0
    assert f"Starting authorizer: {authorizer_id}" in r["log"]
    assert f"Incoming identity: ********{good[-6:]}" in r["log"]
    assert good not in r["log"]
    # Exactly the claims a method behind the authorizer is given.
    wait_deployed(d, api_id)
    served = d.call(api_id, "/", headers={"Authorization": good})
    assert served.status_code == 200, served.text
    assert served.json()["event"]["requestContext"]["authorizer"]["claims"] == claims
    # The token may come in multiValueHeaders too.
    assert test(multiValueHeaders={"Authorization": [good]})["claims"] == claims

    def refused(**kw) -> dict:
        r = test(**kw)
        assert r["clientStatus"] == 401, r["log"]
        assert "claims" not in r and "principalId" not in r
        assert "Unauthorized" in r["log"]
        return r

    refused(headers={})
    refused(headers={"Authorization": "not-a-jwt"})
    # Wrong audience (the pool's other app client), and an access token (no method scopes here).
    refused(headers={"Authorization": pool["tokens"](client_b)["IdToken"]})
    refused(headers={"Authorization": pool["tokens"](client_a)["AccessToken"]})
    now = int(time.time())
    base = {"sub": "s", "aud": client_a, "token_use": "id", "cognito:username": "mallory",
            "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{pool['id']}", "iat": now - 7200}  # fmt: skip
    # Signed with the pool's key but expired.
    refused(headers={"Authorization": forged({**base, "exp": now - 60})})
    # Forged: good claims, the pool's kid, another key.
    from joserfc import jwk, jwt

    other_key = jwk.RSAKey.generate_key(2048)
    fake = jwt.encode({"kid": "dummy", "alg": "RS256"}, {**base, "exp": now + 600}, other_key)
    refused(headers={"Authorization": fake})
    # The same claims signed with the pool's key pass: the refusals above are for key and expiry.
    r = test(headers={"Authorization": forged({**base, "exp": now + 600})})
    assert r["clientStatus"] == 200 and r["claims"]["cognito:username"] == "mallory", r["log"]
    # An authorizer of another pool refuses this pool's tokens.
    ghost = c.create_authorizer(
        restApiId=api_id, name=uid("ghost"), type="COGNITO_USER_POOLS",
        providerARNs=[f"arn:aws:cognito-idp:{REGION}:{d.tenant.account_id}:userpool/{REGION}_nosuchpool"],
        identitySource="method.request.header.Authorization",
    )["id"]  # fmt: skip
    r = c.test_invoke_authorizer(restApiId=api_id, authorizerId=ghost, headers={"Authorization": good})
    assert r["clientStatus"] == 401, r["log"]


def test_flush_stage_authorizers_cache_on_every_node(nodes):
    deployments, (authorizer_arn, calls, echo) = nodes
    d = deployments[0]
    api_id, _ = api_with_method(d, echo, authorizer=token_authorizer(authorizer_arn, ttl=300))
    tokens = {}
    for i, node in enumerate(deployments):
        wait_deployed(node, api_id)
        tokens[i] = f"allow-{uid('fl')}-{i}"

    def called(token: str) -> int:
        return len([x for x in calls_of(calls) if x["identity"] == token])

    # Each node calls once per token, then answers from its cache.
    for _ in range(2):
        for i, node in enumerate(deployments):
            r = node.call(api_id, "/", headers={"Authorization": tokens[i]})
            assert r.status_code == 200, r.text
    assert [called(tokens[i]) for i in tokens] == [1] * len(deployments)

    r = d.client.flush_stage_authorizers_cache(restApiId=api_id, stageName="prod")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 202

    # Every node drops its cache: the next call (once the node has the flush) calls the function.
    for i, node in enumerate(deployments):
        deadline = time.monotonic() + 15
        while called(tokens[i]) < 2:
            assert time.monotonic() < deadline, f"node {i} kept its cached answer\n{d.logs()}"
            r = node.call(api_id, "/", headers={"Authorization": tokens[i]})
            assert r.status_code == 200, r.text
            time.sleep(0.1)  # propagation polling
        # And caches again.
        assert node.call(api_id, "/", headers={"Authorization": tokens[i]}).status_code == 200
        assert called(tokens[i]) == 2

    # Unknown stage or API, another tenant's: NotFoundException; nothing else changes.
    def refused(client, api, stage) -> str:
        with pytest.raises(ClientError) as e:
            client.flush_stage_authorizers_cache(restApiId=api, stageName=stage)
        return e.value.response["Error"]["Code"]

    assert refused(d.client, api_id, "nope") == "NotFoundException"
    assert refused(d.client, "nope123456", "prod") == "NotFoundException"
    other = provision_tenant(d.launch.grpc_url, d.launch.admin_token, uid("auth-other"))
    assert refused(make_client(d.mgmt_url, other, region=REGION), api_id, "prod") == "NotFoundException"
