"""Tenant isolation: tenant B's keys never see tenant A's resources; A's ids answer as missing ids do."""

import re

import pytest
from botocore.exceptions import ClientError

from conftest import deployable_api, error_of, fake_id, rest_api_arn, stage_arn, strip_meta, uid


@pytest.fixture
def a_world(gw, api):
    """Tenant A's API with a resource, a method, a deployment and a stage `dev`."""
    c = gw.client("a")
    ids = deployable_api(c, api)
    dep = c.create_deployment(restApiId=api["id"], stageName="dev", description="a-dep")
    c.create_model(restApiId=api["id"], name="AModel", schema='{"type": "object"}', contentType="application/json")
    return {"api": api["id"], "root": api["rootResourceId"], "res": ids["pets"], "dep": dep["id"], "stage": "dev"}


def fake_world() -> dict:
    return {"api": fake_id(10), "root": fake_id(6), "res": fake_id(6), "dep": fake_id(6), "stage": "nostage"}


# Each probe: (label, call(client, world)). Every call names one of the world's ids.
PROBES = [
    ("get_rest_api", lambda c, w: c.get_rest_api(restApiId=w["api"])),
    ("update_rest_api", lambda c, w: c.update_rest_api(
        restApiId=w["api"], patchOperations=[{"op": "replace", "path": "/name", "value": "stolen"}])),
    ("get_resources", lambda c, w: c.get_resources(restApiId=w["api"])),
    ("get_resource", lambda c, w: c.get_resource(restApiId=w["api"], resourceId=w["res"])),
    ("create_resource", lambda c, w: c.create_resource(restApiId=w["api"], parentId=w["root"], pathPart="intruder")),
    ("update_resource", lambda c, w: c.update_resource(
        restApiId=w["api"], resourceId=w["res"], patchOperations=[{"op": "replace", "path": "/pathPart", "value": "x"}])),
    ("get_method", lambda c, w: c.get_method(restApiId=w["api"], resourceId=w["res"], httpMethod="GET")),
    ("put_method", lambda c, w: c.put_method(
        restApiId=w["api"], resourceId=w["res"], httpMethod="POST", authorizationType="NONE")),
    ("get_integration", lambda c, w: c.get_integration(restApiId=w["api"], resourceId=w["res"], httpMethod="GET")),
    ("get_deployments", lambda c, w: c.get_deployments(restApiId=w["api"])),
    ("get_deployment", lambda c, w: c.get_deployment(restApiId=w["api"], deploymentId=w["dep"])),
    ("create_deployment", lambda c, w: c.create_deployment(restApiId=w["api"], stageName="evil")),
    ("get_stages", lambda c, w: c.get_stages(restApiId=w["api"])),
    ("get_stage", lambda c, w: c.get_stage(restApiId=w["api"], stageName=w["stage"])),
    ("create_stage", lambda c, w: c.create_stage(restApiId=w["api"], stageName="evil", deploymentId=w["dep"])),
    ("update_stage", lambda c, w: c.update_stage(
        restApiId=w["api"], stageName=w["stage"], patchOperations=[{"op": "replace", "path": "/description", "value": "x"}])),
    ("get_models", lambda c, w: c.get_models(restApiId=w["api"])),
    ("get_model", lambda c, w: c.get_model(restApiId=w["api"], modelName="AModel")),
    ("get_gateway_responses", lambda c, w: c.get_gateway_responses(restApiId=w["api"])),
    ("get_tags_api", lambda c, w: c.get_tags(resourceArn=rest_api_arn(w["api"]))),
    ("tag_stage", lambda c, w: c.tag_resource(resourceArn=stage_arn(w["api"], w["stage"]), tags={"x": "y"})),
    # Destructive ones last.
    ("delete_method", lambda c, w: c.delete_method(restApiId=w["api"], resourceId=w["res"], httpMethod="GET")),
    ("delete_stage", lambda c, w: c.delete_stage(restApiId=w["api"], stageName=w["stage"])),
    ("delete_deployment", lambda c, w: c.delete_deployment(restApiId=w["api"], deploymentId=w["dep"])),
    ("delete_resource", lambda c, w: c.delete_resource(restApiId=w["api"], resourceId=w["res"])),
    ("delete_rest_api", lambda c, w: c.delete_rest_api(restApiId=w["api"])),
]  # fmt: skip


def answer(call, client, world) -> tuple:
    """(status, code, message with the world's ids replaced by placeholders)."""
    try:
        resp = call(client, world)
    except ClientError as e:
        code, status, msg = error_of(e)
        for key in ("api", "root", "res", "dep", "stage"):
            msg = re.sub(re.escape(world[key]), "{" + key + "}", msg, flags=re.IGNORECASE)
        return status, code, msg
    return resp["ResponseMetadata"]["HTTPStatusCode"], None, strip_meta(resp)


def snapshot(c, w) -> dict:
    """Everything of A's API that B's calls could have touched."""
    return {
        "api": strip_meta(c.get_rest_api(restApiId=w["api"])),
        "resources": sorted((r["path"], sorted(r.get("resourceMethods", {}))) for r in c.get_resources(
            restApiId=w["api"], embed=["methods"])["items"]),
        "method": strip_meta(c.get_method(restApiId=w["api"], resourceId=w["res"], httpMethod="GET")),
        "deployments": sorted(d["id"] for d in c.get_deployments(restApiId=w["api"])["items"]),
        "stages": [strip_meta(s) for s in c.get_stages(restApiId=w["api"])["item"]],
        "tags": c.get_tags(resourceArn=stage_arn(w["api"], w["stage"])).get("tags", {}),
    }


def test_b_cannot_touch_a(gw, a_world):
    a, b = gw.client("a"), gw.client("b")
    before = snapshot(a, a_world)
    fake = fake_world()
    mismatches = []
    for label, call in PROBES:
        got_a = answer(call, b, a_world)
        got_fake = answer(call, b, fake)
        assert 400 <= got_a[0] < 500, f"{label}: B got {got_a} for A's ids"
        assert gw.tenant_a.account_id not in got_a[2], f"{label}: B's answer names A's account: {got_a}"
        if got_a != got_fake:
            mismatches.append(f"{label}: A's ids -> {got_a}; missing ids -> {got_fake}")
    assert not mismatches, "B can tell A's ids from missing ones:\n" + "\n".join(mismatches)
    assert snapshot(a, a_world) == before


def test_lists_are_per_tenant(gw):
    a, b = gw.client("a"), gw.client("b")
    a_api = a.create_rest_api(name=uid("a-only"))["id"]
    b_api = b.create_rest_api(name=uid("b-only"))["id"]
    try:
        a_ids = {x["id"] for x in a.get_rest_apis(limit=500)["items"]}
        b_ids = {x["id"] for x in b.get_rest_apis(limit=500)["items"]}
        assert a_api in a_ids and b_api in b_ids
        assert not (a_ids & b_ids), a_ids & b_ids
        # B's own API is fully usable by B.
        assert b.get_rest_api(restApiId=b_api)["id"] == b_api
        b.create_resource(restApiId=b_api, parentId=b.get_rest_api(restApiId=b_api)["rootResourceId"], pathPart="mine")
    finally:
        a.delete_rest_api(restApiId=a_api)
        b.delete_rest_api(restApiId=b_api)


def test_same_names_in_two_tenants(gw):
    a, b = gw.client("a"), gw.client("b")
    name = uid("shared-name")
    a_api = a.create_rest_api(name=name)
    b_api = b.create_rest_api(name=name)
    try:
        assert a_api["id"] != b_api["id"]
        # Same resource names and stage names do not collide across tenants either.
        for c, api in ((a, a_api), (b, b_api)):
            deployable_api(c, api)
            c.create_deployment(restApiId=api["id"], stageName="prod")
        assert a.get_stage(restApiId=a_api["id"], stageName="prod")["stageName"] == "prod"
        assert b.get_stage(restApiId=b_api["id"], stageName="prod")["stageName"] == "prod"
    finally:
        a.delete_rest_api(restApiId=a_api["id"])
        b.delete_rest_api(restApiId=b_api["id"])
