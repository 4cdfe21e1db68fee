"""Bad input sent raw (signed): the server answers 4xx, changes nothing, and stays up.

The last test checks the process is alive and healthy after everything in this file.
"""

import json

import requests

from conftest import check_raw_error, raw_error, signed_request, strip_meta, uid


def api_names(gw) -> set:
    return {a["name"] for a in gw.client().get_rest_apis(limit=500)["items"]}


def test_malformed_json_body(gw):
    name = uid("malformed")
    resp = signed_request(gw, "POST", "/restapis", '{"name": "%s", "description": ' % name)
    check_raw_error(resp, ("BadRequestException", "SerializationException"), 400)
    assert name not in api_names(gw)


def test_body_that_is_not_an_object(gw):
    for body in ("[1, 2, 3]", '"just a string"', "null", "\x00\x01binary"):
        resp = signed_request(gw, "POST", "/restapis", body)
        check_raw_error(resp, ("BadRequestException", "SerializationException"), 400)


def test_wrong_json_type_for_a_member(gw):
    name = uid("wrongtype")
    for body in ({"name": ["not", "a", "string"]}, {"name": name, "minimumCompressionSize": "big"},
                 {"name": name, "binaryMediaTypes": "image/png"}, {"name": name, "tags": ["a"]}):  # fmt: skip
        resp = signed_request(gw, "POST", "/restapis", body)
        check_raw_error(resp, ("BadRequestException", "SerializationException"), 400)
    assert name not in api_names(gw)


def test_missing_required_member(gw):
    resp = signed_request(gw, "POST", "/restapis", {"description": "no name"})
    check_raw_error(resp, ("BadRequestException", "ValidationException"), 400, mentions="name")
    resp = signed_request(gw, "POST", "/restapis", b"")
    check_raw_error(resp, ("BadRequestException", "ValidationException", "SerializationException"), 400)


def test_body_over_ten_mib(gw):
    name = uid("huge")
    body = json.dumps({"name": name, "description": "x" * (10 * 1024 * 1024 + 1024)}).encode()
    try:
        resp = signed_request(gw, "POST", "/restapis", body)
    except requests.ConnectionError as e:
        # Closing the connection before reading a body that large is fair; not answering at all is not
        # acceptable for a well-behaved server, but the point here is what happens next.
        raise AssertionError(f"no HTTP answer to an 10 MiB+ body: {e!r}")
    assert resp.status_code in (413, 400), (resp.status_code, resp.text[:300])
    assert name not in api_names(gw)
    # The server still answers afterwards.
    assert signed_request(gw, "GET", "/restapis").status_code == 200
    assert requests.get(gw.mgmt_url + "/healthz", timeout=10).status_code == 200


def test_unknown_fields_are_ignored(gw):
    name = uid("unknown-fields")
    body = {"name": name, "description": "d", "fooBar": 1, "nested": {"x": [1, {"y": None}]}, "policyX": "p"}
    resp = signed_request(gw, "POST", "/restapis", body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    try:
        assert created["name"] == name
        assert "fooBar" not in created and "nested" not in created
        got = gw.client().get_rest_api(restApiId=created["id"])
        assert (got["name"], got["description"]) == (name, "d")
    finally:
        gw.client().delete_rest_api(restApiId=created["id"])


def test_invalid_patch_path_leaves_resource_unchanged(gw, api):
    c = gw.client()
    before = strip_meta(c.get_rest_api(restApiId=api["id"]))
    resp = signed_request(
        gw, "PATCH", f"/restapis/{api['id']}",
        {"patchOperations": [{"op": "replace", "path": "/name", "value": "changed"},
                             {"op": "replace", "path": "/x", "value": "y"}]},
    )  # fmt: skip
    check_raw_error(resp, "BadRequestException", 400, prefix="Invalid patch path")
    assert strip_meta(c.get_rest_api(restApiId=api["id"])) == before


def test_invalid_patch_op(gw, api):
    c = gw.client()
    before = strip_meta(c.get_rest_api(restApiId=api["id"]))
    for ops in ([{"op": "explode", "path": "/name", "value": "x"}], [{"path": "/name", "value": "x"}],
                {"not": "a list"}, [{"op": "replace", "path": "name-without-slash", "value": "x"}]):  # fmt: skip
        resp = signed_request(gw, "PATCH", f"/restapis/{api['id']}", {"patchOperations": ops})
        code, status, _ = raw_error(resp)
        assert status == 400, (ops, status, resp.text)
        assert code in ("BadRequestException", "ValidationException", "SerializationException"), (ops, code)
    assert strip_meta(c.get_rest_api(restApiId=api["id"])) == before


def test_patch_op_without_path_is_an_invalid_path(gw, api):
    c = gw.client()
    before = strip_meta(c.get_rest_api(restApiId=api["id"]))
    resp = signed_request(gw, "PATCH", f"/restapis/{api['id']}", {"patchOperations": [{"op": "replace", "value": "x"}]})
    check_raw_error(resp, "BadRequestException", 400, prefix="Invalid patch path")
    assert strip_meta(c.get_rest_api(restApiId=api["id"])) == before


def test_patch_value_of_wrong_type(gw, api):
    c = gw.client()
    root = api["rootResourceId"]
    c.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    c.put_integration(
        restApiId=api["id"], resourceId=root, httpMethod="GET", type="HTTP", integrationHttpMethod="GET",
        uri="http://backend.example.com/", timeoutInMillis=3000,
    )  # fmt: skip
    path = f"/restapis/{api['id']}/resources/{root}/methods/GET/integration"
    before = strip_meta(c.get_integration(restApiId=api["id"], resourceId=root, httpMethod="GET"))
    for value in ("abc", "12.5", ""):
        resp = signed_request(gw, "PATCH", path, {"patchOperations": [{"op": "replace", "path": "/timeoutInMillis", "value": value}]})
        check_raw_error(resp, "BadRequestException", 400)
    resp = signed_request(
        gw, "PATCH", f"/restapis/{api['id']}/resources/{root}/methods/GET",
        {"patchOperations": [{"op": "replace", "path": "/apiKeyRequired", "value": "maybe"}]},
    )  # fmt: skip
    check_raw_error(resp, "BadRequestException", 400)
    after = strip_meta(c.get_integration(restApiId=api["id"], resourceId=root, httpMethod="GET"))
    assert after == before
    assert after["timeoutInMillis"] == 3000
    assert c.get_method(restApiId=api["id"], resourceId=root, httpMethod="GET").get("apiKeyRequired", False) is False


def test_invalid_enum_value(gw, api):
    c = gw.client()
    root = api["rootResourceId"]
    c.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="NONE")
    resp = signed_request(
        gw, "PUT", f"/restapis/{api['id']}/resources/{root}/methods/GET/integration",
        {"type": "HTTPS_PROXY", "httpMethod": "GET", "uri": "http://backend.example.com/"},
    )  # fmt: skip
    check_raw_error(resp, ("BadRequestException", "ValidationException"), 400, mentions="HTTPS_PROXY|type")
    assert "methodIntegration" not in c.get_method(restApiId=api["id"], resourceId=root, httpMethod="GET")
    resp = signed_request(gw, "POST", "/restapis", {"name": uid("enum"), "apiKeySource": "NOWHERE"})
    check_raw_error(resp, ("BadRequestException", "ValidationException"), 400)
    resp = signed_request(gw, "POST", "/restapis", {"name": uid("enum"), "endpointConfiguration": {"types": ["MOON"]}})
    check_raw_error(resp, ("BadRequestException", "ValidationException"), 400)


def test_unknown_route(gw):
    resp = signed_request(gw, "GET", "/restapis/abc/definitely/not/a/route")
    assert 400 <= resp.status_code < 500, resp.text
    resp = signed_request(gw, "POST", "/restapis/" + "a" * 5000)
    assert 400 <= resp.status_code < 500, resp.text


def test_server_is_still_alive_and_healthy(gw):
    assert gw.proc.alive(), gw.proc.logs()
    assert requests.get(gw.mgmt_url + "/healthz", timeout=10).status_code == 200
    assert signed_request(gw, "GET", "/restapis").status_code == 200
