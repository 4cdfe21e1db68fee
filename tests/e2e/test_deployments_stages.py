"""Deployments (immutable snapshots) and stages (named pointers to a deployment, with settings)."""

import pytest

from conftest import assert_recent, aws_error, deployable_api, fake_id, strip_meta

# What AWS materialises for a method setting the first time any of its fields is written
# (reference §9 and §16.5, and the AWS CLI's own update-stage example).
METHOD_SETTING_DEFAULTS = {
    "metricsEnabled": False,
    "dataTraceEnabled": False,
    "throttlingBurstLimit": 5000,
    "throttlingRateLimit": 10000.0,
    "cachingEnabled": False,
    "cacheTtlInSeconds": 300,
    "cacheDataEncrypted": False,
    "requireAuthorizationForCacheControl": True,
    "unauthorizedCacheControlHeaderStrategy": "SUCCEED_WITH_RESPONSE_HEADER",
}


def assert_method_setting(actual: dict, **changed) -> None:
    """The defaults AWS materialises, with `changed` fields set; loggingLevel OFF may be shown too."""
    expected = {**METHOD_SETTING_DEFAULTS, **changed}
    for k, v in expected.items():
        assert actual.get(k) == v, f"{k}: {actual.get(k)!r} != {v!r} in {actual}"
    extra = set(actual) - set(expected)
    assert extra <= {"loggingLevel"}, f"unexpected method setting fields {extra} in {actual}"
    if "loggingLevel" in extra:
        assert actual["loggingLevel"] == "OFF", actual


@pytest.fixture
def deployable(gw, api):
    ids = deployable_api(gw.client(), api)
    return {"api": api["id"], **ids}


@pytest.fixture
def staged(gw, deployable):
    """`deployable` plus a deployment d1 and a stage `beta` on it."""
    c = gw.client()
    d1 = c.create_deployment(restApiId=deployable["api"], description="d1")
    c.create_stage(restApiId=deployable["api"], stageName="beta", deploymentId=d1["id"])
    return {**deployable, "d1": d1["id"], "stage": "beta"}


# ------------------------------------------------------------------------------ deployments


def test_create_deployment_without_stage(gw, deployable):
    c = gw.client()
    d = c.create_deployment(restApiId=deployable["api"], description="first")
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert d["id"]
    assert d["description"] == "first"
    assert_recent(d["createdDate"])
    assert c.get_stages(restApiId=deployable["api"])["item"] == []
    got = c.get_deployment(restApiId=deployable["api"], deploymentId=d["id"])
    assert (got["id"], got["description"], got["createdDate"]) == (d["id"], "first", d["createdDate"])


def test_create_deployment_with_stage_creates_and_moves_the_stage(gw, deployable):
    c = gw.client()
    a = deployable["api"]
    d1 = c.create_deployment(restApiId=a, stageName="dev", stageDescription="dev stage", description="one")
    stage = c.get_stage(restApiId=a, stageName="dev")
    assert stage["deploymentId"] == d1["id"]
    assert stage["stageName"] == "dev"
    assert stage["description"] == "dev stage"
    d2 = c.create_deployment(restApiId=a, stageName="dev", description="two")
    assert d2["id"] != d1["id"]
    assert c.get_stage(restApiId=a, stageName="dev")["deploymentId"] == d2["id"]
    assert [s["stageName"] for s in c.get_stages(restApiId=a)["item"]] == ["dev"]


def test_list_update_delete_deployments(gw, deployable):
    c = gw.client()
    a = deployable["api"]
    ids = [c.create_deployment(restApiId=a, description=f"d{i}")["id"] for i in range(3)]
    listed = c.get_deployments(restApiId=a, limit=500)["items"]
    assert {d["id"] for d in listed} == set(ids)
    assert {d["description"] for d in listed} == {"d0", "d1", "d2"}

    up = c.update_deployment(
        restApiId=a, deploymentId=ids[0], patchOperations=[{"op": "replace", "path": "/description", "value": "renamed"}]
    )
    assert up["description"] == "renamed"
    assert c.get_deployment(restApiId=a, deploymentId=ids[0])["description"] == "renamed"

    resp = c.delete_deployment(restApiId=a, deploymentId=ids[1])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    with aws_error("NotFoundException", 404):
        c.get_deployment(restApiId=a, deploymentId=ids[1])
    assert {d["id"] for d in c.get_deployments(restApiId=a)["items"]} == {ids[0], ids[2]}


def test_deployment_needs_methods(gw, api):
    c = gw.client()
    with aws_error("BadRequestException", 400, mentions="method"):
        c.create_deployment(restApiId=api["id"], stageName="dev")
    assert c.get_deployments(restApiId=api["id"])["items"] == []
    assert c.get_stages(restApiId=api["id"])["item"] == []


def test_deployment_in_use_cannot_be_deleted(gw, staged):
    c = gw.client()
    with aws_error("BadRequestException", 400, mentions="Active stages pointing to this deployment must be moved or deleted"):
        c.delete_deployment(restApiId=staged["api"], deploymentId=staged["d1"])
    assert c.get_deployment(restApiId=staged["api"], deploymentId=staged["d1"])["id"] == staged["d1"]
    c.delete_stage(restApiId=staged["api"], stageName="beta")
    c.delete_deployment(restApiId=staged["api"], deploymentId=staged["d1"])
    with aws_error("NotFoundException", 404):
        c.get_deployment(restApiId=staged["api"], deploymentId=staged["d1"])


def test_deployment_is_immutable(gw, deployable):
    c = gw.client()
    a, pets = deployable["api"], deployable["pets"]
    d1 = c.create_deployment(restApiId=a, description="before")["id"]
    summary1 = c.get_deployment(restApiId=a, deploymentId=d1, embed=["apisummary"])["apiSummary"]
    assert summary1["/pets"] == {"GET": {"authorizationType": "NONE", "apiKeyRequired": False}}

    # Change the live API: flip a flag, add a method, add a resource.
    c.update_method(
        restApiId=a, resourceId=pets, httpMethod="GET", patchOperations=[{"op": "replace", "path": "/apiKeyRequired", "value": "true"}]
    )
    c.put_method(restApiId=a, resourceId=pets, httpMethod="POST", authorizationType="NONE")
    c.put_integration(restApiId=a, resourceId=pets, httpMethod="POST", type="MOCK")
    toys = c.create_resource(restApiId=a, parentId=pets, pathPart="toys")
    c.put_method(restApiId=a, resourceId=toys["id"], httpMethod="GET", authorizationType="NONE")
    c.put_integration(restApiId=a, resourceId=toys["id"], httpMethod="GET", type="MOCK")

    again = c.get_deployment(restApiId=a, deploymentId=d1, embed=["apisummary"])["apiSummary"]
    assert again == summary1

    d2 = c.create_deployment(restApiId=a, description="after")["id"]
    summary2 = c.get_deployment(restApiId=a, deploymentId=d2, embed=["apisummary"])["apiSummary"]
    assert summary2["/pets"] == {
        "GET": {"authorizationType": "NONE", "apiKeyRequired": True},
        "POST": {"authorizationType": "NONE", "apiKeyRequired": False},
    }
    assert summary2["/pets/toys"] == {"GET": {"authorizationType": "NONE", "apiKeyRequired": False}}


def test_deployment_of_unknown_api(gw):
    with aws_error("NotFoundException", 404, prefix="Invalid API identifier specified"):
        gw.client().create_deployment(restApiId=fake_id(10), description="x")


# ------------------------------------------------------------------------------ stages


def test_create_and_get_stage(gw, deployable):
    c = gw.client()
    a = deployable["api"]
    d = c.create_deployment(restApiId=a)["id"]
    st = c.create_stage(
        restApiId=a,
        stageName="prod",
        deploymentId=d,
        description="production",
        variables={"backend": "b1", "color": "blue"},
        tags={"tier": "gold"},
    )
    assert st["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (st["stageName"], st["deploymentId"], st["description"]) == ("prod", d, "production")
    assert st["variables"] == {"backend": "b1", "color": "blue"}
    assert st["tags"] == {"tier": "gold"}
    assert_recent(st["createdDate"])

    got = c.get_stage(restApiId=a, stageName="prod")
    for k in ("stageName", "deploymentId", "description", "variables", "tags"):
        assert got[k] == st[k], k
    stages = c.get_stages(restApiId=a)["item"]
    assert [s["stageName"] for s in stages] == ["prod"]
    assert stages[0]["variables"] == {"backend": "b1", "color": "blue"}


def test_duplicate_stage_is_a_conflict(gw, staged):
    c = gw.client()
    with aws_error("ConflictException", 409):
        c.create_stage(restApiId=staged["api"], stageName="beta", deploymentId=staged["d1"])
    assert len(c.get_stages(restApiId=staged["api"])["item"]) == 1


def test_stage_with_unknown_deployment(gw, deployable):
    c = gw.client()
    with aws_error(("NotFoundException", "BadRequestException"), (404, 400), mentions="deployment"):
        c.create_stage(restApiId=deployable["api"], stageName="ghost", deploymentId=fake_id(6))
    assert c.get_stages(restApiId=deployable["api"])["item"] == []


@pytest.mark.parametrize("name", ["has space", "dot.name", "x" * 129])
def test_invalid_stage_name(gw, staged, name):
    with aws_error("BadRequestException", 400):
        gw.client().create_stage(restApiId=staged["api"], stageName=name, deploymentId=staged["d1"])


def test_update_stage_variables_and_description(gw, staged):
    c = gw.client()
    a = staged["api"]
    c.update_stage(restApiId=a, stageName="beta", patchOperations=[{"op": "replace", "path": "/variables/backend", "value": "b1"}])
    up = c.update_stage(
        restApiId=a,
        stageName="beta",
        patchOperations=[
            {"op": "replace", "path": "/variables/backend", "value": "b2"},
            {"op": "replace", "path": "/variables/region", "value": "eu"},
            {"op": "replace", "path": "/description", "value": "beta stage"},
        ],
    )
    assert up["variables"] == {"backend": "b2", "region": "eu"}
    assert up["description"] == "beta stage"
    up = c.update_stage(restApiId=a, stageName="beta", patchOperations=[{"op": "remove", "path": "/variables/backend"}])
    assert up["variables"] == {"region": "eu"}
    got = c.get_stage(restApiId=a, stageName="beta")
    assert (got["variables"], got["description"]) == ({"region": "eu"}, "beta stage")


def test_update_stage_rollback_to_older_deployment(gw, staged):
    c = gw.client()
    a = staged["api"]
    d2 = c.create_deployment(restApiId=a, stageName="beta", description="d2")["id"]
    assert c.get_stage(restApiId=a, stageName="beta")["deploymentId"] == d2
    up = c.update_stage(
        restApiId=a, stageName="beta", patchOperations=[{"op": "replace", "path": "/deploymentId", "value": staged["d1"]}]
    )
    assert up["deploymentId"] == staged["d1"]
    assert c.get_stage(restApiId=a, stageName="beta")["deploymentId"] == staged["d1"]


def test_update_stage_to_unknown_deployment_changes_nothing(gw, staged):
    c = gw.client()
    before = strip_meta(c.get_stage(restApiId=staged["api"], stageName="beta"))
    with aws_error(("NotFoundException", "BadRequestException"), (404, 400), mentions="deployment"):
        c.update_stage(
            restApiId=staged["api"], stageName="beta", patchOperations=[{"op": "replace", "path": "/deploymentId", "value": fake_id(6)}]
        )
    assert strip_meta(c.get_stage(restApiId=staged["api"], stageName="beta")) == before


def test_update_stage_method_settings(gw, staged):
    c = gw.client()
    up = c.update_stage(
        restApiId=staged["api"],
        stageName="beta",
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "123"},
            {"op": "replace", "path": "/*/*/caching/enabled", "value": "true"},
            {"op": "replace", "path": "/pets/GET/throttling/burstLimit", "value": "124"},
            {"op": "replace", "path": "/~1pets/GET/throttling/rateLimit", "value": "50"},
        ],
    )
    ms = up["methodSettings"]
    assert set(ms) == {"*/*", "pets/GET", "~1pets/GET"}, ms
    # Keys are the patch path's resource segment as written: `pets/GET`, `~1pets/GET` (AWS CLI docs).
    assert_method_setting(ms["*/*"], throttlingBurstLimit=123, cachingEnabled=True)
    assert_method_setting(ms["pets/GET"], throttlingBurstLimit=124)
    assert_method_setting(ms["~1pets/GET"], throttlingRateLimit=50.0)
    assert c.get_stage(restApiId=staged["api"], stageName="beta")["methodSettings"] == ms

    up = c.update_stage(
        restApiId=staged["api"],
        stageName="beta",
        patchOperations=[
            {"op": "replace", "path": "/*/*/caching/ttlInSeconds", "value": "60"},
            {"op": "replace", "path": "/*/*/logging/loglevel", "value": "INFO"},
            {"op": "replace", "path": "/*/*/metrics/enabled", "value": "true"},
        ],
    )
    star = up["methodSettings"]["*/*"]
    assert (star["cacheTtlInSeconds"], star["loggingLevel"], star["metricsEnabled"]) == (60, "INFO", True)
    assert star["throttlingBurstLimit"] == 123

    up = c.update_stage(restApiId=staged["api"], stageName="beta", patchOperations=[{"op": "remove", "path": "/*/*"}])
    assert set(up.get("methodSettings", {})) == {"pets/GET", "~1pets/GET"}


def test_update_stage_invalid_path(gw, staged):
    c = gw.client()
    before = strip_meta(c.get_stage(restApiId=staged["api"], stageName="beta"))
    with aws_error("BadRequestException", 400, prefix="Invalid method setting path"):
        c.update_stage(
            restApiId=staged["api"],
            stageName="beta",
            patchOperations=[{"op": "replace", "path": "/documentation_version", "value": "x"}],
        )
    with aws_error("BadRequestException", 400):
        c.update_stage(
            restApiId=staged["api"],
            stageName="beta",
            patchOperations=[{"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "lots"}],
        )
    assert strip_meta(c.get_stage(restApiId=staged["api"], stageName="beta")) == before


def test_delete_stage(gw, staged):
    c = gw.client()
    resp = c.delete_stage(restApiId=staged["api"], stageName="beta")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    with aws_error("NotFoundException", 404):
        c.get_stage(restApiId=staged["api"], stageName="beta")
    assert c.get_stages(restApiId=staged["api"])["item"] == []
    with aws_error("NotFoundException", 404):
        c.delete_stage(restApiId=staged["api"], stageName="beta")
