"""Methods and method responses."""

import pytest

from conftest import aws_error, fake_id, strip_meta


@pytest.fixture
def pets(gw, api):
    c = gw.client()
    r = c.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="pets")
    return {"api": api["id"], "rid": r["id"]}


def test_put_and_get_method(gw, pets):
    c = gw.client()
    params = {"method.request.querystring.page": False, "method.request.header.x-trace": True}
    put = c.put_method(
        restApiId=pets["api"],
        resourceId=pets["rid"],
        httpMethod="GET",
        authorizationType="NONE",
        apiKeyRequired=True,
        operationName="ListPets",
        requestParameters=params,
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert put["httpMethod"] == "GET"
    assert put["authorizationType"] == "NONE"
    assert put["apiKeyRequired"] is True
    assert put["operationName"] == "ListPets"
    assert put["requestParameters"] == params
    assert "methodIntegration" not in put

    got = c.get_method(restApiId=pets["api"], resourceId=pets["rid"], httpMethod="GET")
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    for k in ("httpMethod", "authorizationType", "apiKeyRequired", "operationName", "requestParameters"):
        assert got[k] == put[k], k


def test_any_method(gw, pets):
    c = gw.client()
    put = c.put_method(restApiId=pets["api"], resourceId=pets["rid"], httpMethod="ANY", authorizationType="NONE")
    assert put["httpMethod"] == "ANY"
    assert put.get("apiKeyRequired", False) is False
    res = c.get_resource(restApiId=pets["api"], resourceId=pets["rid"])
    assert "ANY" in res["resourceMethods"]


def test_update_method(gw, pets):
    c = gw.client()
    a, r = pets["api"], pets["rid"]
    c.put_method(restApiId=a, resourceId=r, httpMethod="GET", authorizationType="NONE", apiKeyRequired=True)
    up = c.update_method(
        restApiId=a,
        resourceId=r,
        httpMethod="GET",
        patchOperations=[
            {"op": "replace", "path": "/apiKeyRequired", "value": "false"},
            {"op": "add", "path": "/requestParameters/method.request.querystring.q", "value": "true"},
        ],
    )
    assert up["apiKeyRequired"] is False
    assert up["requestParameters"] == {"method.request.querystring.q": True}
    got = c.get_method(restApiId=a, resourceId=r, httpMethod="GET")
    assert got["apiKeyRequired"] is False
    assert got["requestParameters"] == {"method.request.querystring.q": True}

    up = c.update_method(
        restApiId=a,
        resourceId=r,
        httpMethod="GET",
        patchOperations=[{"op": "remove", "path": "/requestParameters/method.request.querystring.q"}],
    )
    assert up.get("requestParameters", {}) == {}
    assert c.get_method(restApiId=a, resourceId=r, httpMethod="GET").get("requestParameters", {}) == {}


def test_update_method_invalid_path_changes_nothing(gw, pets):
    c = gw.client()
    a, r = pets["api"], pets["rid"]
    c.put_method(restApiId=a, resourceId=r, httpMethod="GET", authorizationType="NONE")
    before = strip_meta(c.get_method(restApiId=a, resourceId=r, httpMethod="GET"))
    with aws_error("BadRequestException", 400, prefix="Invalid patch path"):
        c.update_method(
            restApiId=a, resourceId=r, httpMethod="GET", patchOperations=[{"op": "replace", "path": "/nope", "value": "1"}]
        )
    assert strip_meta(c.get_method(restApiId=a, resourceId=r, httpMethod="GET")) == before


def test_delete_method(gw, pets):
    c = gw.client()
    a, r = pets["api"], pets["rid"]
    c.put_method(restApiId=a, resourceId=r, httpMethod="DELETE", authorizationType="NONE")
    resp = c.delete_method(restApiId=a, resourceId=r, httpMethod="DELETE")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with aws_error("NotFoundException", 404, prefix="Invalid Method identifier specified"):
        c.get_method(restApiId=a, resourceId=r, httpMethod="DELETE")
    assert not c.get_resource(restApiId=a, resourceId=r).get("resourceMethods")


def test_invalid_http_method(gw, pets):
    with aws_error("BadRequestException", 400, prefix="Invalid HttpMethod specified"):
        gw.client().put_method(restApiId=pets["api"], resourceId=pets["rid"], httpMethod="FETCH", authorizationType="NONE")


def test_invalid_authorization_type(gw, pets):
    with aws_error(("BadRequestException", "ValidationException"), 400):
        gw.client().put_method(restApiId=pets["api"], resourceId=pets["rid"], httpMethod="GET", authorizationType="MAGIC")


def test_method_on_missing_resource(gw, api):
    c = gw.client()
    with aws_error("NotFoundException", 404, prefix="Invalid Resource identifier specified"):
        c.put_method(restApiId=api["id"], resourceId=fake_id(6), httpMethod="GET", authorizationType="NONE")
    with aws_error("NotFoundException", 404):
        c.get_method(restApiId=api["id"], resourceId=api["rootResourceId"], httpMethod="GET")


def test_method_responses(gw, pets):
    c = gw.client()
    a, r = pets["api"], pets["rid"]
    c.put_method(restApiId=a, resourceId=r, httpMethod="GET", authorizationType="NONE")
    put = c.put_method_response(
        restApiId=a,
        resourceId=r,
        httpMethod="GET",
        statusCode="200",
        responseParameters={"method.response.header.X-Rate": True},
        responseModels={"application/json": "Empty"},
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert put["statusCode"] == "200"
    assert put["responseParameters"] == {"method.response.header.X-Rate": True}
    assert put["responseModels"] == {"application/json": "Empty"}

    got = c.get_method_response(restApiId=a, resourceId=r, httpMethod="GET", statusCode="200")
    assert (got["statusCode"], got["responseParameters"], got["responseModels"]) == (
        "200", {"method.response.header.X-Rate": True}, {"application/json": "Empty"})  # fmt: skip
    method = c.get_method(restApiId=a, resourceId=r, httpMethod="GET")
    assert method["methodResponses"]["200"]["responseParameters"] == {"method.response.header.X-Rate": True}

    up = c.update_method_response(
        restApiId=a,
        resourceId=r,
        httpMethod="GET",
        statusCode="200",
        patchOperations=[
            {"op": "add", "path": "/responseParameters/method.response.header.X-Other", "value": "false"},
            {"op": "remove", "path": "/responseModels/application~1json"},
        ],
    )
    assert up["responseParameters"] == {"method.response.header.X-Rate": True, "method.response.header.X-Other": False}
    assert up.get("responseModels", {}) == {}
    got = c.get_method_response(restApiId=a, resourceId=r, httpMethod="GET", statusCode="200")
    assert got["responseParameters"] == up["responseParameters"]

    resp = c.delete_method_response(restApiId=a, resourceId=r, httpMethod="GET", statusCode="200")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with aws_error("NotFoundException", 404):
        c.get_method_response(restApiId=a, resourceId=r, httpMethod="GET", statusCode="200")


def test_method_response_needs_a_method(gw, pets):
    with aws_error("NotFoundException", 404):
        gw.client().put_method_response(restApiId=pets["api"], resourceId=pets["rid"], httpMethod="GET", statusCode="200")


def test_method_response_status_code_must_be_valid(gw, pets):
    c = gw.client()
    c.put_method(restApiId=pets["api"], resourceId=pets["rid"], httpMethod="GET", authorizationType="NONE")
    with aws_error(("BadRequestException", "ValidationException", "NotFoundException"), (400, 404)):
        c.put_method_response(restApiId=pets["api"], resourceId=pets["rid"], httpMethod="GET", statusCode="99")
    assert not c.get_method(restApiId=pets["api"], resourceId=pets["rid"], httpMethod="GET").get("methodResponses")
