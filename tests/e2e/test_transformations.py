"""Mapping templates, request validation and binary media types end to end, on `apigw standalone`
with its function host: APIs are configured with boto3, deployed, and called through the data plane
against a real HTTP backend (a Python server in this process) and a real Python Lambda function
(`examples/python-echo`, run by awslambdaric).

Covered: a non-proxy HTTP integration with request and response templates (Content-Type and Accept
selection, `requestOverride`, `responseOverride`, `integration.response.body.*` mappings); MOCK
with templates; a Lambda non-proxy integration with `errorMessage` selection; `passthroughBehavior`
(NEVER → 415); request validation with exact bodies and `validationErrorString`; binary bodies.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from conftest import uid

# The Lambda module's gateway (standalone + function host) and helpers, shared rather than copied.
from test_lambda_proxy import (  # noqa: F401  (pytest fixtures are used by name)
    invocation_uri,
    python_zip,
    standalone,
    wait_served,
)

INTERNAL_ERROR = {"message": "Internal server error"}


class Backend(BaseHTTPRequestHandler):
    """`/echo…` answers JSON describing the request; `/raw` answers the request body's bytes as
    `application/octet-stream`; `/b64` answers base64 text of fixed bytes; `/status/N` answers N."""

    protocol_version = "HTTP/1.1"
    RAW = bytes(range(256))

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        status, content_type = 200, "application/json"
        if parts.path == "/raw":
            payload, content_type = body, "application/octet-stream"
        elif parts.path == "/b64":
            payload, content_type = base64.b64encode(self.RAW), "text/plain"
        else:
            if parts.path.startswith("/status/"):
                status = int(parts.path.split("/")[2])
            payload = json.dumps(
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": parts.query,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }
            ).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def backend():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def new_api(c, **kw) -> tuple[str, str]:
    api = c.create_rest_api(name=uid("transform"), **kw)
    root = next(r for r in c.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
    return api["id"], root["id"]


def resource(c, api_id: str, parent: str, part: str) -> str:
    return c.create_resource(restApiId=api_id, parentId=parent, pathPart=part)["id"]


def method(c, api_id: str, res: str, http_method: str, **kw) -> None:
    c.put_method(restApiId=api_id, resourceId=res, httpMethod=http_method, authorizationType="NONE", **kw)


def responses(c, api_id: str, res: str, http_method: str, answers: list[dict]) -> None:
    """Method and integration responses: each answer has `status` and optionally `pattern`,
    `templates`, `parameters` (method.response.header.x → source), `contentHandling`."""
    for a in answers:
        params = a.get("parameters", {})
        c.put_method_response(
            restApiId=api_id,
            resourceId=res,
            httpMethod=http_method,
            statusCode=a["status"],
            responseParameters={k: False for k in params},
        )
        extra = {}
        if "pattern" in a:
            extra["selectionPattern"] = a["pattern"]
        if "contentHandling" in a:
            extra["contentHandling"] = a["contentHandling"]
        c.put_integration_response(
            restApiId=api_id,
            resourceId=res,
            httpMethod=http_method,
            statusCode=a["status"],
            responseTemplates=a.get("templates", {}),
            responseParameters=params,
            **extra,
        )


def deploy(d, api_id: str, path: str, method_: str = "GET", **kw) -> None:
    d.client.create_deployment(restApiId=api_id, stageName="prod", **kw)
    wait_served(d, api_id, path, method=method_)


REQUEST_TEMPLATE = """#set($pet = $input.path('$'))
{
  "name": "$pet.name",
  "upper": "$pet.name.toUpperCase()",
  "tags": [#foreach($t in $pet.tags)"$t"#if($foreach.hasNext),#end#end],
  "q": "$input.params('q')",
  "stage": "$context.stage",
  "env": "$stageVariables.env"
}
#set($context.requestOverride.header.X-Override = "from-template")
#set($context.requestOverride.querystring.added = "yes")"""

RESPONSE_TEMPLATE = """#set($r = $input.path('$'))
{"backendMethod": "$r.method", "backendQuery": "$r.query", "override": "$r.headers.get('x-override')", "sent": $r.body}"""


def test_http_request_and_response_templates(standalone, backend):
    d, c = standalone, standalone.client
    api_id, root = new_api(c)
    pets = resource(c, api_id, root, "pets")
    method(c, api_id, pets, "POST")
    c.put_integration(
        restApiId=api_id,
        resourceId=pets,
        httpMethod="POST",
        type="HTTP",
        integrationHttpMethod="PUT",
        uri=f"{backend}/echo",
        requestTemplates={"application/json": REQUEST_TEMPLATE, "application/xml": "<pet>$input.body</pet>"},
    )
    responses(
        c, api_id, pets, "POST",
        [{
            "status": "200",
            "templates": {"application/json": RESPONSE_TEMPLATE, "text/plain": "method=$input.path('$.method') body=$input.path('$.body')"},
            "parameters": {
                "method.response.header.X-Backend-Method": "integration.response.body.method",
                "method.response.header.X-Static": "'fixed'",
            },
        }],
    )  # fmt: skip
    # A backend 404 selects a response that overrides its own status and adds a header.
    missing = resource(c, api_id, root, "missing")
    method(c, api_id, missing, "GET")
    c.put_integration(
        restApiId=api_id, resourceId=missing, httpMethod="GET", type="HTTP",
        integrationHttpMethod="GET", uri=f"{backend}/status/404",
    )  # fmt: skip
    responses(
        c, api_id, missing, "GET",
        [
            {"status": "200"},
            {"status": "404", "pattern": "4\\d{2}", "templates": {"application/json":
                '#set($context.responseOverride.status = 410)'
                '#set($context.responseOverride.header.X-Gone = "$input.path(\'$.path\')")'
                '{"gone": true}'}},
        ],
    )  # fmt: skip
    deploy(d, api_id, "/missing", variables={"env": "e2e"})

    body = {"name": "Rex", "tags": ["a", "b"]}
    r = d.call(api_id, "/pets?q=hello+world", method="POST", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Backend-Method"] == "PUT"
    assert r.headers["X-Static"] == "fixed"
    out = r.json()
    assert out["backendMethod"] == "PUT"
    assert out["override"] == "from-template"
    assert out["backendQuery"] == "added=yes"
    assert out["sent"] == {
        "name": "Rex", "upper": "REX", "tags": ["a", "b"], "q": "hello world", "stage": "prod", "env": "e2e",
    }  # fmt: skip

    # Accept picks the response template; Content-Type the request template.
    r = d.call(
        api_id, "/pets", method="POST", data="<x>1</x>",
        headers={"Content-Type": "application/xml; charset=utf-8", "Accept": "text/plain"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/plain"
    assert r.text == "method=PUT body=<pet><x>1</x></pet>"
    # WHEN_NO_MATCH (the default): an unmapped content type passes through unchanged.
    r = d.call(
        api_id, "/pets", method="POST", data="plain words",
        headers={"Content-Type": "text/plain", "Accept": "text/plain"},
    )  # fmt: skip
    assert (r.status_code, r.text) == (200, "method=PUT body=plain words")
    # An Accept with no template of its own takes application/json's.
    r = d.call(api_id, "/pets", method="POST", json=body, headers={"Accept": "text/html"})
    assert r.json()["sent"]["name"] == "Rex"

    r = d.call(api_id, "/missing")
    assert r.status_code == 410, r.text
    assert r.json() == {"gone": True}
    assert r.headers["X-Gone"] == "/status/404"


def test_passthrough_never_and_when_no_templates(standalone, backend):
    d, c = standalone, standalone.client
    api_id, root = new_api(c)
    paths = {}
    for behaviour in ("NEVER", "WHEN_NO_TEMPLATES", "WHEN_NO_MATCH"):
        for templated in (True, False):
            part = f"{behaviour.lower().replace('_', '-')}-{'t' if templated else 'n'}"
            res = resource(c, api_id, root, part)
            method(c, api_id, res, "POST")
            c.put_integration(
                restApiId=api_id, resourceId=res, httpMethod="POST", type="HTTP",
                integrationHttpMethod="POST", uri=f"{backend}/echo", passthroughBehavior=behaviour,
                requestTemplates={"application/json": '{"templated": $input.json(\'$\')}'} if templated else {},
            )  # fmt: skip
            responses(c, api_id, res, "POST", [{"status": "200"}])
            paths[(behaviour, templated)] = f"/{part}"
    deploy(d, api_id, paths[("NEVER", True)], "POST")

    def send(behaviour, templated, content_type):
        return d.call(api_id, paths[(behaviour, templated)], method="POST", data='{"a":1}',
                      headers={"Content-Type": content_type})  # fmt: skip

    # The reference's table (§5.2), row by row.
    for behaviour in ("NEVER", "WHEN_NO_TEMPLATES", "WHEN_NO_MATCH"):
        r = send(behaviour, True, "application/json")
        assert r.status_code == 200, (behaviour, r.text)
        assert json.loads(r.json()["body"]) == {"templated": {"a": 1}}
    for behaviour, templated, expected in [
        ("NEVER", True, 415), ("NEVER", False, 415),
        ("WHEN_NO_TEMPLATES", True, 415), ("WHEN_NO_TEMPLATES", False, 200),
        ("WHEN_NO_MATCH", True, 200), ("WHEN_NO_MATCH", False, 200),
    ]:  # fmt: skip
        r = send(behaviour, templated, "text/plain")
        assert r.status_code == expected, (behaviour, templated, r.text)
        if expected == 415:
            assert r.content == b'{"message":"Unsupported Media Type"}'
            assert r.headers["Content-Type"] == "application/json"
        else:
            assert r.json()["body"] == '{"a":1}'


def test_mock_with_templates_and_response_override(standalone):
    d, c = standalone, standalone.client
    api_id, root = new_api(c)
    res = resource(c, api_id, root, "mock")
    method(c, api_id, res, "GET")
    c.put_integration(
        restApiId=api_id, resourceId=res, httpMethod="GET", type="MOCK",
        requestTemplates={"application/json":
            "#if($input.params('fail') != '')\n{\"statusCode\": 500}\n#else\n{\"statusCode\": 200}\n#end"},
    )  # fmt: skip
    responses(
        c, api_id, res, "GET",
        [
            {"status": "200", "templates": {"application/json":
                '{"who": "$input.params(\'who\')", "path": "$context.resourcePath", "id": "$context.requestId"}'}},
            {"status": "500", "pattern": "5\\d{2}", "templates": {"application/json":
                "#set($context.responseOverride.status = 503)"
                "#set($context.responseOverride.header.Retry-After = \"7\")"
                '{"down": "$input.params(\'fail\')"}'}},
        ],
    )  # fmt: skip
    # A template that does not parse breaks its own route (500), not the deployment; one that
    # throws while rendering answers the same 500.
    for part, template in [("broken", "#if($x"), ("throws", "$input.params('who').substring(99)")]:
        res = resource(c, api_id, root, part)
        method(c, api_id, res, "GET")
        c.put_integration(restApiId=api_id, resourceId=res, httpMethod="GET", type="MOCK",
                          requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
        responses(c, api_id, res, "GET", [{"status": "200", "templates": {"application/json": template}}])
    deploy(d, api_id, "/mock")
    for part in ("broken", "throws"):
        r = d.call(api_id, f"/{part}?who=me")
        assert (r.status_code, r.json()) == (500, INTERNAL_ERROR), (part, r.text)
    r = d.call(api_id, "/mock?who=me")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["who"] == "me" and out["path"] == "/mock"
    assert out["id"] == r.headers["x-amzn-RequestId"]
    r = d.call(api_id, "/mock?fail=disk")
    assert r.status_code == 503, r.text
    assert r.json() == {"down": "disk"}
    assert r.headers["Retry-After"] == "7"


def test_lambda_non_proxy_with_error_mapping(standalone, python_zip):
    d, c = standalone, standalone.client
    arn = d.create_function(python_zip, "python3.12", "app.handler", timeout=10)
    api_id, root = new_api(c)
    res = resource(c, api_id, root, "items")
    method(c, api_id, res, "POST")
    c.put_integration(
        restApiId=api_id, resourceId=res, httpMethod="POST", type="AWS",
        integrationHttpMethod="POST", uri=invocation_uri(arn),
        requestTemplates={"application/json":
            "#if($input.params('fail') != '')"
            '{"fail": "$util.escapeJavaScript($input.params(\'fail\'))"}'
            "#else"
            '{"item": $input.json(\'$\'), "caller": "$context.identity.sourceIp"}'
            "#end"},
    )  # fmt: skip
    responses(
        c, api_id, res, "POST",
        [
            {"status": "200", "templates": {"application/json":
                '{"name": "$input.path(\'$.item.name\')", "count": $input.path(\'$.item.count\')}'}},
            {"status": "404", "pattern": ".*not found.*", "templates": {"application/json":
                '{"error": "$input.path(\'$.errorMessage\')", "type": "$input.path(\'$.errorType\')"}'}},
            {"status": "400", "pattern": "bad:.*"},
        ],
    )  # fmt: skip
    deploy(d, api_id, "/items", "POST")
    r = d.call(api_id, "/items", method="POST", json={"name": "pen", "count": 3})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "pen", "count": 3}
    r = d.call(api_id, "/items?fail=item+not+found", method="POST", json={})
    assert r.status_code == 404, r.text
    assert r.json() == {"error": "item not found", "type": "Exception"}
    # No template on the 400: the function's error payload passes through.
    r = d.call(api_id, "/items?fail=bad:+input", method="POST", json={})
    assert r.status_code == 400, r.text
    assert r.json()["errorMessage"] == "bad: input"
    # An error nothing selects takes the default response (AWS answers 200 with the error).
    r = d.call(api_id, "/items?fail=other", method="POST", json={})
    assert r.status_code == 200, r.text


PET_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "Pet",
    "type": "object",
    "required": ["name", "type", "price"],
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string", "enum": ["dog", "cat", "fish"]},
        "price": {"$ref": "#/definitions/price"},
        "owner": {"$ref": "https://apigateway.amazonaws.com/restapis/API_ID/models/Owner"},
    },
    "definitions": {"price": {"type": "number", "minimum": 25, "maximum": 500}},
}
OWNER_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "required": ["email"],
    "properties": {"email": {"type": "string", "pattern": "^[^@]+@[^@]+$"}},
}


def test_request_validation(standalone):
    d, c = standalone, standalone.client
    api_id, root = new_api(c)
    c.create_model(restApiId=api_id, name="Owner", contentType="application/json", schema=json.dumps(OWNER_SCHEMA))
    c.create_model(
        restApiId=api_id, name="Pet", contentType="application/json",
        schema=json.dumps(PET_SCHEMA).replace("API_ID", api_id),
    )  # fmt: skip
    both = c.create_request_validator(
        restApiId=api_id, name="all", validateRequestBody=True, validateRequestParameters=True
    )
    params_only = c.create_request_validator(
        restApiId=api_id, name="params", validateRequestBody=False, validateRequestParameters=True
    )
    res = resource(c, api_id, root, "{issuer}")
    method(
        c, api_id, res, "POST", requestValidatorId=both["id"],
        requestParameters={"method.request.header.x-header-param": True, "method.request.path.issuer": True,
                           "method.request.querystring.qs1": True, "method.request.querystring.opt": False},
        requestModels={"application/json": "Pet"},
    )  # fmt: skip
    c.put_integration(
        restApiId=api_id, resourceId=res, httpMethod="POST", type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )  # fmt: skip
    responses(c, api_id, res, "POST", [{"status": "200", "templates": {"application/json": '{"ok": true}'}}])
    loose = resource(c, api_id, root, "loose")
    method(
        c, api_id, loose, "POST", requestValidatorId=params_only["id"],
        requestParameters={"method.request.querystring.q1": True}, requestModels={"application/json": "Pet"},
    )  # fmt: skip
    c.put_integration(restApiId=api_id, resourceId=loose, httpMethod="POST", type="MOCK",
                      requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
    responses(c, api_id, loose, "POST", [{"status": "200"}])
    c.put_gateway_response(
        restApiId=api_id, responseType="BAD_REQUEST_BODY",
        responseTemplates={"application/json":
            '{"message": $context.error.messageString, "detail": "$util.escapeJavaScript($context.error.validationErrorString)"}'},
    )  # fmt: skip
    deploy(d, api_id, "/x", "POST")

    good = {"name": "Marco", "type": "dog", "price": 260, "owner": {"email": "a@b.c"}}
    hdr = {"x-header-param": "h"}

    def post(path, body, headers=None, query=""):
        return d.call(api_id, f"{path}{query}", method="POST", json=body, headers=headers or {})

    r = post("/iss", good, hdr, "?qs1=1")
    assert (r.status_code, r.json()) == (200, {"ok": True}), r.text
    # Parameters: sorted by full key (header < path < querystring); blank counts as missing.
    r = post("/iss", good)
    assert r.status_code == 400
    assert r.content == b'{"message":"Missing required request parameters: [x-header-param, qs1]"}'
    assert r.headers["x-amzn-ErrorType"] == "BadRequestException"
    r = post("/iss", good, hdr, "?qs1=")
    assert r.content == b'{"message":"Missing required request parameters: [qs1]"}'
    r = post("/iss", good, {"x-header-param": ""}, "?qs1=1")
    assert r.content == b'{"message":"Missing required request parameters: [x-header-param]"}'
    # Parameters before the body.
    r = post("/iss", {"name": 1}, {}, "?qs1=1")
    assert r.content == b'{"message":"Missing required request parameters: [x-header-param]"}'
    # Bodies: enum, range (through #/definitions), a $ref to another model, required, not JSON.
    for bad in [
        {**good, "type": "bird"},
        {**good, "price": 501},
        {**good, "owner": {"email": "nope"}},
        {"name": "Marco", "type": "dog"},
    ]:
        r = post("/iss", bad, hdr, "?qs1=1")
        assert r.status_code == 400, (bad, r.text)
        out = r.json()
        assert out["message"] == "Invalid request body", out
        assert out["detail"], out
    assert "bird" in post("/iss", {**good, "type": "bird"}, hdr, "?qs1=1").json()["detail"]
    r = d.call(api_id, "/iss?qs1=1", method="POST", data="{not json", headers={**hdr, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["message"]) == (400, "Invalid request body")
    # A validator without body validation ignores the model; default 400 body is exact.
    r = post("/loose", {"type": "bird"}, {}, "?q1=x")
    assert r.status_code == 200, r.text
    r = post("/loose", {"type": "bird"})
    assert r.content == b'{"message":"Missing required request parameters: [q1]"}'


def test_binary_media_types(standalone, backend):
    d, c = standalone, standalone.client
    api_id, root = new_api(c, binaryMediaTypes=["application/octet-stream", "image/*"])
    raw = resource(c, api_id, root, "raw")
    method(c, api_id, raw, "POST")
    # A template for the binary type must not apply: binary passes through.
    c.put_integration(
        restApiId=api_id, resourceId=raw, httpMethod="POST", type="HTTP", integrationHttpMethod="POST",
        uri=f"{backend}/raw", requestTemplates={"application/octet-stream": "templated", "image/png": "templated"},
    )  # fmt: skip
    responses(c, api_id, raw, "POST", [{"status": "200"}])
    text = resource(c, api_id, root, "text")
    method(c, api_id, text, "POST")
    # CONVERT_TO_TEXT: the backend gets base64; the answer comes back as that text.
    c.put_integration(
        restApiId=api_id, resourceId=text, httpMethod="POST", type="HTTP", integrationHttpMethod="POST",
        uri=f"{backend}/raw", contentHandling="CONVERT_TO_TEXT",
        requestTemplates={"image/png": '{"b64": "$input.body"}'},
    )  # fmt: skip
    responses(c, api_id, text, "POST", [{"status": "200"}])
    decoded = resource(c, api_id, root, "decoded")
    method(c, api_id, decoded, "GET")
    # The backend answers base64 text; CONVERT_TO_BINARY on the integration response decodes it.
    c.put_integration(
        restApiId=api_id, resourceId=decoded, httpMethod="GET", type="HTTP",
        integrationHttpMethod="GET", uri=f"{backend}/b64",
    )  # fmt: skip
    responses(c, api_id, decoded, "GET", [{"status": "200", "contentHandling": "CONVERT_TO_BINARY"}])
    deploy(d, api_id, "/decoded")

    blob = bytes(range(256)) * 4
    r = d.call(api_id, "/raw", method="POST", data=blob, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.content == blob
    r = d.call(api_id, "/raw", method="POST", data=blob, headers={"Content-Type": "image/png"})
    assert r.content == blob
    r = d.call(api_id, "/text", method="POST", data=blob, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert json.loads(r.content) == {"b64": base64.b64encode(blob).decode()}
    r = d.call(api_id, "/decoded", headers={"Accept": "application/octet-stream"})
    assert r.status_code == 200, r.text
    assert r.content == Backend.RAW
