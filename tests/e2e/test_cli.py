"""The two command lines: the operator's `apigw admin` and the tenant's AWS CLI (`aws apigateway`)."""

import json
import re

import pytest

from conftest import REST_API_ID, Tenant, aws_error, make_client, uid

# ------------------------------------------------------------------------------ apigw admin


def test_admin_tenant_list(gw):
    out = gw.admin_json("tenant", "list")
    by_id = {t["accountId"]: t for t in out["tenants"]}
    assert gw.tenant_a.account_id in by_id
    assert by_id[gw.tenant_b.account_id]["name"] == gw.tenant_b.name
    for t in out["tenants"]:
        assert re.fullmatch(r"\d{12}", t["accountId"]), t


def test_admin_tenant_and_key_lifecycle(gw):
    name = uid("cli-tenant")
    t = gw.admin_json("tenant", "create", "--name", name)
    assert set(t) >= {"accountId", "name"}
    assert t["name"] == name
    assert re.fullmatch(r"\d{12}", t["accountId"]), t
    assert t["accountId"] not in (gw.tenant_a.account_id, gw.tenant_b.account_id)

    k = gw.admin_json("key", "create", "--tenant", t["accountId"])
    assert k["accountId"] == t["accountId"]
    assert re.fullmatch(r"AKIA[A-Z0-9]{12,}", k["accessKeyId"]), k["accessKeyId"]
    assert len(k["secretAccessKey"]) >= 20

    listed = gw.admin_json("key", "list", "--tenant", t["accountId"])
    assert [x["accessKeyId"] for x in listed["keys"]] == [k["accessKeyId"]]
    assert k["secretAccessKey"] not in json.dumps(listed)
    for x in listed["keys"]:
        assert not any("secret" in field.lower() for field in x), x

    # The new key works at once, in its own empty account.
    tenant = Tenant(name, t["accountId"], k["accessKeyId"], k["secretAccessKey"])
    c = make_client(gw.mgmt_url, tenant)
    assert c.get_rest_apis()["items"] == []
    created = c.create_rest_api(name=uid("new-tenant-api"))
    assert REST_API_ID.match(created["id"])

    # A second key for the same tenant sees the same APIs.
    k2 = gw.admin_json("key", "create", "--tenant", t["accountId"])
    assert k2["accessKeyId"] != k["accessKeyId"]
    c2 = make_client(gw.mgmt_url, Tenant(name, t["accountId"], k2["accessKeyId"], k2["secretAccessKey"]))
    assert [a["id"] for a in c2.get_rest_apis()["items"]] == [created["id"]]

    # Deleting the first key revokes it; the second still works.
    r = gw.admin("key", "delete", "--access-key-id", k["accessKeyId"])
    assert r.returncode == 0, r.stderr
    with aws_error("UnrecognizedClientException", 403):
        make_client(gw.mgmt_url, tenant).get_rest_apis()
    assert [x["accessKeyId"] for x in gw.admin_json("key", "list", "--tenant", t["accountId"])["keys"]] == [k2["accessKeyId"]]
    c2.delete_rest_api(restApiId=created["id"])


def test_admin_rejects_a_bad_token(gw):
    for args in (("tenant", "list"), ("tenant", "create", "--name", uid("intruder"))):
        r = gw.admin(*args, token="not-the-admin-token-" + "x" * 20)
        assert r.returncode != 0, f"bad token accepted: {r.stdout}"
        assert '"tenants"' not in r.stdout and '"accountId"' not in r.stdout, r.stdout
    names = {t["name"] for t in gw.admin_json("tenant", "list")["tenants"]}
    assert not any(n.startswith("intruder") for n in names)


def test_admin_key_for_unknown_tenant(gw):
    r = gw.admin("key", "create", "--tenant", "999999999999")
    assert r.returncode != 0, r.stdout


# ------------------------------------------------------------------------------ aws apigateway


def test_aws_cli_workflow(gw):
    """The common path a tenant walks with the AWS CLI, checking each answer."""
    name = uid("cli-api")
    api = gw.cli_ok("create-rest-api", "--name", name, "--description", "from the cli",
                    "--endpoint-configuration", "types=REGIONAL", "--tags", "env=cli")  # fmt: skip
    api_id = api["id"]
    try:
        assert REST_API_ID.match(api_id)
        assert (api["name"], api["description"], api["endpointConfiguration"]["types"]) == (name, "from the cli", ["REGIONAL"])
        assert api["tags"] == {"env": "cli"}
        assert api["createdDate"]

        got = gw.cli_ok("get-rest-api", "--rest-api-id", api_id)
        assert (got["id"], got["name"], got["rootResourceId"]) == (api_id, name, api["rootResourceId"])
        assert api_id in [a["id"] for a in gw.cli_ok("get-rest-apis")["items"]]

        res = gw.cli_ok("get-resources", "--rest-api-id", api_id)["items"]
        assert [(r["id"], r["path"]) for r in res] == [(api["rootResourceId"], "/")]

        pets = gw.cli_ok("create-resource", "--rest-api-id", api_id, "--parent-id", api["rootResourceId"], "--path-part", "pets")
        assert (pets["path"], pets["pathPart"]) == ("/pets", "pets")
        pet = gw.cli_ok("create-resource", "--rest-api-id", api_id, "--parent-id", pets["id"], "--path-part", "{petId}")
        assert pet["path"] == "/pets/{petId}"

        m = gw.cli_ok("put-method", "--rest-api-id", api_id, "--resource-id", pet["id"], "--http-method", "GET",
                      "--authorization-type", "NONE", "--request-parameters", json.dumps({"method.request.path.petId": True}))  # fmt: skip
        assert (m["httpMethod"], m["authorizationType"]) == ("GET", "NONE")
        assert m["requestParameters"] == {"method.request.path.petId": True}

        i = gw.cli_ok(
            "put-integration", "--rest-api-id", api_id, "--resource-id", pet["id"], "--http-method", "GET",
            "--type", "HTTP", "--integration-http-method", "GET", "--uri", "http://backend.example.com/pets/{id}",
            "--request-parameters", json.dumps({"integration.request.path.id": "method.request.path.petId"}),
            "--timeout-in-millis", "2500",
        )  # fmt: skip
        assert (i["type"], i["httpMethod"], i["uri"], i["timeoutInMillis"]) == (
            "HTTP", "GET", "http://backend.example.com/pets/{id}", 2500)  # fmt: skip

        gw.cli_ok("put-method-response", "--rest-api-id", api_id, "--resource-id", pet["id"], "--http-method", "GET",
                  "--status-code", "200")  # fmt: skip
        ir = gw.cli_ok("put-integration-response", "--rest-api-id", api_id, "--resource-id", pet["id"],
                       "--http-method", "GET", "--status-code", "200", "--selection-pattern", "")  # fmt: skip
        assert ir["statusCode"] == "200"

        method = gw.cli_ok("get-method", "--rest-api-id", api_id, "--resource-id", pet["id"], "--http-method", "GET")
        assert method["methodIntegration"]["uri"] == "http://backend.example.com/pets/{id}"
        assert set(method["methodIntegration"]["integrationResponses"]) == {"200"}

        d1 = gw.cli_ok("create-deployment", "--rest-api-id", api_id, "--stage-name", "dev", "--description", "first")
        assert d1["description"] == "first"
        d2 = gw.cli_ok("create-deployment", "--rest-api-id", api_id, "--description", "second")
        st = gw.cli_ok("create-stage", "--rest-api-id", api_id, "--stage-name", "prod", "--deployment-id", d2["id"],
                       "--variables", "backend=b1,color=blue", "--description", "production")  # fmt: skip
        assert (st["stageName"], st["deploymentId"], st["variables"]) == ("prod", d2["id"], {"backend": "b1", "color": "blue"})

        stages = gw.cli_ok("get-stages", "--rest-api-id", api_id)["item"]
        assert {s["stageName"]: s["deploymentId"] for s in stages} == {"dev": d1["id"], "prod": d2["id"]}

        up = gw.cli_ok(
            "update-stage", "--rest-api-id", api_id, "--stage-name", "prod", "--patch-operations",
            "op=replace,path=/description,value=prod-v2",
            "op=replace,path=/variables/backend,value=b2",
            f"op=replace,path=/deploymentId,value={d1['id']}",
            "op=replace,path=/*/*/throttling/burstLimit,value=321",
        )  # fmt: skip
        assert up["description"] == "prod-v2"
        assert up["variables"] == {"backend": "b2", "color": "blue"}
        assert up["deploymentId"] == d1["id"]
        assert up["methodSettings"]["*/*"]["throttlingBurstLimit"] == 321

        dup = gw.cli("create-resource", "--rest-api-id", api_id, "--parent-id", api["rootResourceId"], "--path-part", "pets")
        assert dup.returncode != 0 and dup.error_code() == "ConflictException", str(dup)
        assert "Another resource with the same parent already has this name: pets" in dup.stderr

        dele = gw.cli("delete-stage", "--rest-api-id", api_id, "--stage-name", "prod")
        assert dele.returncode == 0, str(dele)
        assert [s["stageName"] for s in gw.cli_ok("get-stages", "--rest-api-id", api_id)["item"]] == ["dev"]
    finally:
        r = gw.cli("delete-rest-api", "--rest-api-id", api_id)
    assert r.returncode == 0, str(r)
    gone = gw.cli("get-rest-api", "--rest-api-id", api_id)
    assert gone.returncode != 0, str(gone)
    assert gone.error_code() == "NotFoundException", str(gone)
    assert "Invalid API identifier specified" in gone.stderr


def test_aws_cli_paginates_get_rest_apis(gw):
    c = gw.client()
    ids = [c.create_rest_api(name=uid("cli-page"))["id"] for _ in range(5)]
    try:
        out = gw.cli_ok("get-rest-apis", "--page-size", "2")
        listed = [a["id"] for a in out["items"]]
        assert len(listed) == len(set(listed))
        assert set(ids) <= set(listed)
        assert set(listed) == {a["id"] for a in c.get_rest_apis(limit=500)["items"]}
        first = gw.cli_ok("get-rest-apis", "--max-items", "2")
        assert len(first["items"]) == 2
        assert first.get("NextToken")
    finally:
        for i in ids:
            c.delete_rest_api(restApiId=i)


def test_aws_cli_uses_the_callers_tenant(gw):
    a_api = gw.cli_ok("create-rest-api", "--name", uid("cli-a"), tenant="a")
    try:
        r = gw.cli("get-rest-api", "--rest-api-id", a_api["id"], tenant="b")
        assert r.returncode != 0 and r.error_code() == "NotFoundException", str(r)
        assert a_api["id"] not in [x["id"] for x in gw.cli_ok("get-rest-apis", tenant="b")["items"]]
    finally:
        gw.cli_ok("delete-rest-api", "--rest-api-id", a_api["id"], tenant="a")


@pytest.mark.parametrize("bad", ["FETCH"])
def test_aws_cli_reports_bad_request(gw, api, bad):
    r = gw.cli("put-method", "--rest-api-id", api["id"], "--resource-id", api["rootResourceId"],
               "--http-method", bad, "--authorization-type", "NONE")  # fmt: skip
    assert r.returncode != 0
    assert r.error_code() == "BadRequestException", str(r)
    assert "Invalid HttpMethod specified" in r.stderr
