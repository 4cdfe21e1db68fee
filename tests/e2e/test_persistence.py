"""Restart persistence: a dedicated process per backend is stopped (SIGTERM) and started again on
the same data dir / database; everything is still there, credentials and admin token included."""

import pytest

from conftest import BACKENDS, Tenant, admin_json, make_client, provision_tenant, run_admin, strip_meta, uid


def build_everything(c) -> dict:
    api = c.create_rest_api(name=uid("persist"), description="survives restarts", tags={"keep": "me"})
    a = api["id"]
    pets = c.create_resource(restApiId=a, parentId=api["rootResourceId"], pathPart="pets")
    pet = c.create_resource(restApiId=a, parentId=pets["id"], pathPart="{petId}")
    c.put_method(
        restApiId=a, resourceId=pet["id"], httpMethod="GET", authorizationType="NONE",
        requestParameters={"method.request.path.petId": True},
    )  # fmt: skip
    c.put_integration(
        restApiId=a, resourceId=pet["id"], httpMethod="GET", type="HTTP", integrationHttpMethod="GET",
        uri="http://backend.example.com/pets/{id}", timeoutInMillis=1234,
        requestParameters={"integration.request.path.id": "method.request.path.petId"},
    )  # fmt: skip
    c.put_method_response(restApiId=a, resourceId=pet["id"], httpMethod="GET", statusCode="200")
    c.put_integration_response(restApiId=a, resourceId=pet["id"], httpMethod="GET", statusCode="200", selectionPattern="")
    dep = c.create_deployment(restApiId=a, description="v1")
    c.create_stage(restApiId=a, stageName="prod", deploymentId=dep["id"], variables={"v": "1"})
    c.update_stage(
        restApiId=a, stageName="prod",
        patchOperations=[{"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "77"}],
    )  # fmt: skip
    c.put_gateway_response(restApiId=a, responseType="THROTTLED", statusCode="503")
    return {"api": a, "pet": pet["id"], "dep": dep["id"]}


def read_everything(c, ids: dict) -> dict:
    a = ids["api"]
    return {
        "api": strip_meta(c.get_rest_api(restApiId=a)),
        "resources": sorted((r["path"], r["id"]) for r in c.get_resources(restApiId=a)["items"]),
        "method": strip_meta(c.get_method(restApiId=a, resourceId=ids["pet"], httpMethod="GET")),
        "deployment": strip_meta(c.get_deployment(restApiId=a, deploymentId=ids["dep"], embed=["apisummary"])),
        "stage": strip_meta(c.get_stage(restApiId=a, stageName="prod")),
        "gateway_response": strip_meta(c.get_gateway_response(restApiId=a, responseType="THROTTLED")),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_everything_survives_a_restart(server_factory, backend):
    l = server_factory.launch(backend)
    if backend == "standalone":
        tenant = Tenant("dev", "000000000000", "test", "test")
        token_file = (l.data_dir / "admin-token").read_text()
    else:
        tenant = provision_tenant(l.grpc_url, l.admin_token, uid("persist-tenant"))
    other = provision_tenant(l.grpc_url, l.admin_token, uid("persist-other"))

    c = make_client(l.mgmt_url, tenant)
    ids = build_everything(c)
    before = read_everything(c, ids)
    assert before["method"]["methodIntegration"]["uri"] == "http://backend.example.com/pets/{id}"
    assert before["stage"]["methodSettings"]["*/*"]["throttlingBurstLimit"] == 77

    rc = l.proc.stop()
    assert rc is not None, f"apigw did not exit within the stop timeout after SIGTERM\n{l.proc.logs()}"
    assert rc == 0, f"apigw exited {rc} on SIGTERM (expected a clean shutdown)\n{l.proc.logs()}"
    assert not l.proc.alive()

    l.proc.start()
    l.proc.wait_ready()

    c = make_client(l.mgmt_url, tenant)  # fresh connections
    after = read_everything(c, ids)
    assert after == before
    assert after["method"]["methodIntegration"]["timeoutInMillis"] == 1234
    assert after["stage"]["variables"] == {"v": "1"}
    assert after["api"]["tags"] == {"keep": "me"}
    assert ids["api"] in {x["id"] for x in c.get_rest_apis(limit=500)["items"]}

    # Credentials made through the operator CLI still work, and still see only their own.
    o = make_client(l.mgmt_url, other)
    assert ids["api"] not in {x["id"] for x in o.get_rest_apis(limit=500)["items"]}

    # The operator token still works (standalone: the same token, from the same file).
    if backend == "standalone":
        assert (l.data_dir / "admin-token").read_text() == token_file
    listed = admin_json(l.grpc_url, l.admin_token, "tenant", "list")
    assert other.account_id in {t["accountId"] for t in listed["tenants"]}
    assert run_admin(l.grpc_url, "wrong-" + l.admin_token, "tenant", "list").returncode != 0
