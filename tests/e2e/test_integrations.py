"""Integrations (HTTP, HTTP_PROXY, MOCK, AWS, AWS_PROXY) and integration responses."""

import pytest

from conftest import aws_error, strip_meta

LAMBDA_URI = (
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
    "arn:aws:lambda:us-east-1:{account}:function:e2e-fn/invocations"
)


@pytest.fixture
def method(gw, api):
    """/pets GET (with query `page` declared) and its 200/400 method responses."""
    c = gw.client()
    r = c.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart="pets")
    c.put_method(
        restApiId=api["id"],
        resourceId=r["id"],
        httpMethod="GET",
        authorizationType="NONE",
        requestParameters={"method.request.querystring.page": False},
    )
    for status in ("200", "400"):
        c.put_method_response(
            restApiId=api["id"],
            resourceId=r["id"],
            httpMethod="GET",
            statusCode=status,
            responseParameters={"method.response.header.X-Rate": False},
        )
    return {"restApiId": api["id"], "resourceId": r["id"], "httpMethod": "GET"}


def integration_kwargs(kind: str, account: str) -> dict:
    lam = LAMBDA_URI.format(account=account)
    return {
        "HTTP": dict(
            integrationHttpMethod="GET",
            uri="http://backend.example.com/pets",
            requestParameters={"integration.request.querystring.page": "method.request.querystring.page"},
            requestTemplates={"application/json": '{"page": "$input.params(\'page\')"}'},
            passthroughBehavior="WHEN_NO_TEMPLATES",
            timeoutInMillis=5000,
            cacheKeyParameters=["method.request.querystring.page"],
            contentHandling="CONVERT_TO_TEXT",
        ),
        "HTTP_PROXY": dict(
            integrationHttpMethod="ANY",
            uri="http://backend.example.com/pets",
            requestParameters={"integration.request.header.x-page": "method.request.querystring.page"},
            timeoutInMillis=29000,
        ),
        "MOCK": dict(
            requestTemplates={"application/json": '{"statusCode": 200}'},
            passthroughBehavior="NEVER",
            timeoutInMillis=50,
        ),
        "AWS": dict(
            integrationHttpMethod="POST",
            uri=lam,
            requestTemplates={"application/json": "$input.json('$')"},
            passthroughBehavior="WHEN_NO_MATCH",
            contentHandling="CONVERT_TO_BINARY",
        ),
        "AWS_PROXY": dict(integrationHttpMethod="POST", uri=lam, timeoutInMillis=10000),
    }[kind]


@pytest.mark.parametrize("kind", ["HTTP", "HTTP_PROXY", "MOCK", "AWS", "AWS_PROXY"])
def test_put_and_get_integration(gw, method, kind):
    c = gw.client()
    kw = integration_kwargs(kind, gw.tenant_a.account_id)
    put = c.put_integration(**method, type=kind, **kw)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert put["type"] == kind
    expected = {("httpMethod" if k == "integrationHttpMethod" else k): v for k, v in kw.items()}
    for k, v in expected.items():
        assert put[k] == v, (k, put.get(k))
    if "timeoutInMillis" not in kw:
        assert put["timeoutInMillis"] == 29000  # AWS default
    got = c.get_integration(**method)
    assert got["type"] == kind
    for k, v in expected.items():
        assert got[k] == v, (k, got.get(k))
    m = c.get_method(**method)
    assert m["methodIntegration"]["type"] == kind
    assert m["methodIntegration"].get("uri") == kw.get("uri")


@pytest.mark.parametrize("timeout", [50, 29000])
def test_timeout_bounds_accepted(gw, method, timeout):
    put = gw.client().put_integration(
        **method, type="HTTP", integrationHttpMethod="GET", uri="http://backend.example.com/", timeoutInMillis=timeout
    )
    assert put["timeoutInMillis"] == timeout


@pytest.mark.parametrize("timeout", [49, 29001])
def test_timeout_out_of_bounds_rejected(gw, method, timeout):
    c = gw.client()
    with aws_error("BadRequestException", 400, mentions="timeout"):
        c.put_integration(
            **method, type="HTTP", integrationHttpMethod="GET", uri="http://backend.example.com/", timeoutInMillis=timeout
        )
    with aws_error("NotFoundException", 404):
        c.get_integration(**method)


def test_http_integration_requires_uri(gw, method):
    c = gw.client()
    with aws_error("BadRequestException", 400, mentions="uri"):
        c.put_integration(**method, type="HTTP", integrationHttpMethod="GET")
    with aws_error("NotFoundException", 404):
        c.get_integration(**method)


def test_http_integration_requires_http_method(gw, method):
    with aws_error("BadRequestException", 400, mentions="method"):
        gw.client().put_integration(**method, type="HTTP", uri="http://backend.example.com/")


def test_update_integration(gw, method):
    c = gw.client()
    c.put_integration(
        **method,
        type="HTTP",
        integrationHttpMethod="GET",
        uri="http://backend.example.com/pets",
        requestTemplates={"application/json": "old"},
    )
    up = c.update_integration(
        **method,
        patchOperations=[
            {"op": "replace", "path": "/uri", "value": "http://other.example.com/v2/pets"},
            {"op": "replace", "path": "/timeoutInMillis", "value": "1234"},
            {"op": "replace", "path": "/requestTemplates/application~1json", "value": "new"},
            {"op": "add", "path": "/requestTemplates/application~1xml", "value": "<x/>"},
        ],
    )
    assert up["uri"] == "http://other.example.com/v2/pets"
    assert up["timeoutInMillis"] == 1234
    assert up["requestTemplates"] == {"application/json": "new", "application/xml": "<x/>"}
    got = c.get_integration(**method)
    assert (got["uri"], got["timeoutInMillis"], got["requestTemplates"]) == (
        up["uri"], 1234, {"application/json": "new", "application/xml": "<x/>"})  # fmt: skip

    up = c.update_integration(**method, patchOperations=[{"op": "remove", "path": "/requestTemplates/application~1xml"}])
    assert up["requestTemplates"] == {"application/json": "new"}


def test_update_integration_bad_values_change_nothing(gw, method):
    c = gw.client()
    c.put_integration(**method, type="HTTP", integrationHttpMethod="GET", uri="http://backend.example.com/")
    before = strip_meta(c.get_integration(**method))
    for op in (
        {"op": "replace", "path": "/timeoutInMillis", "value": "abc"},
        {"op": "replace", "path": "/timeoutInMillis", "value": "29001"},
        {"op": "replace", "path": "/nonsense", "value": "1"},
    ):
        with aws_error("BadRequestException", 400):
            c.update_integration(**method, patchOperations=[op])
    assert strip_meta(c.get_integration(**method)) == before


def test_delete_integration(gw, method):
    c = gw.client()
    c.put_integration(**method, type="MOCK", requestTemplates={"application/json": '{"statusCode": 200}'})
    resp = c.delete_integration(**method)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with aws_error("NotFoundException", 404, prefix="Invalid Integration identifier specified"):
        c.get_integration(**method)
    assert "methodIntegration" not in c.get_method(**method)


def test_integration_responses(gw, method):
    c = gw.client()
    c.put_integration(**method, type="MOCK", requestTemplates={"application/json": '{"statusCode": 200}'})
    put = c.put_integration_response(
        **method,
        statusCode="200",
        selectionPattern="",
        responseParameters={"method.response.header.X-Rate": "'5'"},
        responseTemplates={"application/json": "$input.body"},
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert put["statusCode"] == "200"
    assert put["responseParameters"] == {"method.response.header.X-Rate": "'5'"}
    assert put["responseTemplates"] == {"application/json": "$input.body"}
    c.put_integration_response(**method, statusCode="400", selectionPattern=r"4\d{2}")

    got = c.get_integration_response(**method, statusCode="400")
    assert (got["statusCode"], got["selectionPattern"]) == ("400", r"4\d{2}")
    integ = c.get_integration(**method)
    assert set(integ["integrationResponses"]) == {"200", "400"}
    assert integ["integrationResponses"]["400"]["selectionPattern"] == r"4\d{2}"
    m = c.get_method(**method)
    assert set(m["methodIntegration"]["integrationResponses"]) == {"200", "400"}

    up = c.update_integration_response(
        **method,
        statusCode="400",
        patchOperations=[
            {"op": "replace", "path": "/selectionPattern", "value": r"(4|5)\d{2}"},
            {"op": "add", "path": "/responseTemplates/application~1xml", "value": "<error/>"},
            {"op": "add", "path": "/responseParameters/method.response.header.X-Rate", "value": "'0'"},
        ],
    )
    assert up["selectionPattern"] == r"(4|5)\d{2}"
    assert up["responseTemplates"] == {"application/xml": "<error/>"}
    assert up["responseParameters"] == {"method.response.header.X-Rate": "'0'"}
    got = c.get_integration_response(**method, statusCode="400")
    assert (got["selectionPattern"], got["responseTemplates"]) == (r"(4|5)\d{2}", {"application/xml": "<error/>"})

    resp = c.delete_integration_response(**method, statusCode="400")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with aws_error("NotFoundException", 404):
        c.get_integration_response(**method, statusCode="400")
    assert set(c.get_integration(**method)["integrationResponses"]) == {"200"}


def test_integration_response_without_integration(gw, method):
    c = gw.client()
    with aws_error("NotFoundException", 404):
        c.put_integration_response(**method, statusCode="200", selectionPattern="")
    with aws_error("NotFoundException", 404):
        c.get_integration_response(**method, statusCode="200")


def test_integration_on_missing_method(gw, api):
    with aws_error("NotFoundException", 404):
        gw.client().put_integration(
            restApiId=api["id"], resourceId=api["rootResourceId"], httpMethod="GET", type="MOCK"
        )
