"""Gateway responses: the 21 defaults of a fresh API, and customising one (reference §2.1, §2.6, §16.5)."""

import pytest

from conftest import aws_error, strip_meta

DEFAULT_TEMPLATES = {"application/json": '{"message":$context.error.messageString}'}

# Type -> default status; DEFAULT_4XX / DEFAULT_5XX have none.
DEFAULT_STATUS = {
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
    "ACCESS_DENIED": "403",
    "API_CONFIGURATION_ERROR": "500",
    "AUTHORIZER_CONFIGURATION_ERROR": "500",
    "AUTHORIZER_FAILURE": "500",
    "BAD_REQUEST_PARAMETERS": "400",
    "BAD_REQUEST_BODY": "400",
    "EXPIRED_TOKEN": "403",
    "INTEGRATION_FAILURE": "504",
    "INTEGRATION_TIMEOUT": "504",
    "INVALID_API_KEY": "403",
    "INVALID_SIGNATURE": "403",
    "MISSING_AUTHENTICATION_TOKEN": "403",
    "QUOTA_EXCEEDED": "429",
    "REQUEST_TOO_LARGE": "413",
    "RESOURCE_NOT_FOUND": "404",
    "THROTTLED": "429",
    "UNAUTHORIZED": "401",
    "UNSUPPORTED_MEDIA_TYPE": "415",
    "WAF_FILTERED": "403",
}

CUSTOM_PARAMETERS = {
    "gatewayresponse.header.Access-Control-Allow-Origin": "'a.b.c'",
    "gatewayresponse.header.x-request-header": "method.request.header.Accept",
    "gatewayresponse.header.x-request-path": "method.request.path.petId",
    "gatewayresponse.header.x-request-query": "method.request.querystring.q",
}


def expected_default(response_type: str) -> dict:
    d = {
        "responseType": response_type,
        "defaultResponse": True,
        "responseParameters": {},
        "responseTemplates": DEFAULT_TEMPLATES,
    }
    if DEFAULT_STATUS[response_type]:
        d["statusCode"] = DEFAULT_STATUS[response_type]
    return d


def test_fresh_api_lists_all_defaults(gw, api):
    items = gw.client().get_gateway_responses(restApiId=api["id"], limit=500)["items"]
    by_type = {i["responseType"]: i for i in items}
    assert len(items) == 21 == len(by_type)
    assert set(by_type) == set(DEFAULT_STATUS)
    for t, item in by_type.items():
        assert item == expected_default(t), t


@pytest.mark.parametrize("rtype", ["MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "THROTTLED"])
def test_get_default_gateway_response(gw, api, rtype):
    got = strip_meta(gw.client().get_gateway_response(restApiId=api["id"], responseType=rtype))
    assert got == expected_default(rtype)


def test_put_update_delete_gateway_response(gw, api):
    c = gw.client()
    a = api["id"]
    put = c.put_gateway_response(
        restApiId=a,
        responseType="MISSING_AUTHENTICATION_TOKEN",
        statusCode="404",
        responseParameters=CUSTOM_PARAMETERS,
        responseTemplates={"application/json": '{"error": $context.error.messageString}'},
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert strip_meta(put) == {
        "responseType": "MISSING_AUTHENTICATION_TOKEN",
        "statusCode": "404",
        "responseParameters": CUSTOM_PARAMETERS,
        "responseTemplates": {"application/json": '{"error": $context.error.messageString}'},
        "defaultResponse": False,
    }
    got = strip_meta(c.get_gateway_response(restApiId=a, responseType="MISSING_AUTHENTICATION_TOKEN"))
    assert got == strip_meta(put)
    listed = {i["responseType"]: i for i in c.get_gateway_responses(restApiId=a, limit=500)["items"]}
    assert len(listed) == 21
    assert listed["MISSING_AUTHENTICATION_TOKEN"] == got
    assert listed["THROTTLED"] == expected_default("THROTTLED")

    up = c.update_gateway_response(
        restApiId=a,
        responseType="MISSING_AUTHENTICATION_TOKEN",
        patchOperations=[
            {"op": "replace", "path": "/statusCode", "value": "410"},
            {"op": "add", "path": "/responseParameters/gatewayresponse.header.x-extra", "value": "'v'"},
            {"op": "remove", "path": "/responseParameters/gatewayresponse.header.x-request-query"},
            {"op": "replace", "path": "/responseTemplates/application~1json", "value": '{"gone": true}'},
        ],
    )
    params = {k: v for k, v in CUSTOM_PARAMETERS.items() if k != "gatewayresponse.header.x-request-query"}
    params["gatewayresponse.header.x-extra"] = "'v'"
    assert up["statusCode"] == "410"
    assert up["responseParameters"] == params
    assert up["responseTemplates"] == {"application/json": '{"gone": true}'}
    assert up["defaultResponse"] is False
    assert strip_meta(c.get_gateway_response(restApiId=a, responseType="MISSING_AUTHENTICATION_TOKEN")) == strip_meta(up)

    resp = c.delete_gateway_response(restApiId=a, responseType="MISSING_AUTHENTICATION_TOKEN")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    back = strip_meta(c.get_gateway_response(restApiId=a, responseType="MISSING_AUTHENTICATION_TOKEN"))
    assert back == expected_default("MISSING_AUTHENTICATION_TOKEN")


def test_update_of_a_default_response_customises_it(gw, api):
    c = gw.client()
    up = c.update_gateway_response(
        restApiId=api["id"],
        responseType="DEFAULT_4XX",
        patchOperations=[
            {"op": "add", "path": "/responseParameters/gatewayresponse.header.Access-Control-Allow-Origin", "value": "'*'"}
        ],
    )
    assert up["defaultResponse"] is False
    assert up["responseParameters"] == {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"}
    assert "statusCode" not in up


def test_status_code_cannot_be_added_or_removed(gw, api):
    c = gw.client()
    c.put_gateway_response(restApiId=api["id"], responseType="THROTTLED", statusCode="503")
    for op in ("add", "remove"):
        with aws_error("BadRequestException", 400):
            c.update_gateway_response(
                restApiId=api["id"], responseType="THROTTLED", patchOperations=[{"op": op, "path": "/statusCode", "value": "418"}]
            )
    assert c.get_gateway_response(restApiId=api["id"], responseType="THROTTLED")["statusCode"] == "503"


def test_unknown_response_type(gw, api):
    with aws_error(("BadRequestException", "ValidationException", "NotFoundException"), (400, 404)):
        gw.client().get_gateway_response(restApiId=api["id"], responseType="NOT_A_TYPE")
