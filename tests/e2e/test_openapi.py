"""OpenAPI import (ImportRestApi, PutRestApi) and export (GetExport) with the AWS extensions.

Public documents under tests/fixtures/openapi (see SOURCES.md) are imported with boto3, deployed and
called through the standalone data plane (HTTP and MOCK integrations; their HTTP backends are pointed
at a local echo server), exported as OpenAPI 3.0 and Swagger 2.0 in JSON and YAML, validated with
openapi-spec-validator, and re-imported to the same resources, methods and integrations. Malformed
documents must fail with BadRequestException and change nothing.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from botocore.exceptions import ClientError
from openapi_spec_validator import validate

from conftest import DEV_ACCOUNT, Tenant, launch_standalone, make_client, shutdown, uid

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"
PETSTORE_HOST = "http://petstore-demo-endpoint.execute-api.com"
PROPAGATION_TIMEOUT = 15.0


class Echo(BaseHTTPRequestHandler):
    """Answers with what it received, as JSON."""

    protocol_version = "HTTP/1.1"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        parts = urlsplit(self.path)
        payload = json.dumps(
            {
                "method": self.command,
                "path": parts.path,
                "query": parse_qs(parts.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def backend():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class Standalone:
    def __init__(self, launch, data_url: str):
        self.launch = launch
        self.data_url = data_url
        self.client = make_client(launch.mgmt_url, Tenant("dev", DEV_ACCOUNT, "test", "test"))

    def call(self, api_id: str, path: str, method: str = "GET", stage: str = "prod", **kw) -> requests.Response:
        url = f"{self.data_url}/restapis/{api_id}/{stage}/_user_request_{path}"
        return requests.request(method, url, timeout=30, **kw)

    def wait_served(self, api_id: str, path: str, method: str = "GET") -> requests.Response:
        deadline = time.monotonic() + PROPAGATION_TIMEOUT
        while True:
            r = self.call(api_id, path, method=method)
            if r.status_code != 403 or time.monotonic() > deadline:
                return r
            time.sleep(0.1)  # propagation polling


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    l = launch_standalone(tmp_path_factory.mktemp("openapi-standalone"), "openapi-standalone")
    data_port = l.proc.argv[l.proc.argv.index("--data-plane-port") + 1]
    yield Standalone(l, f"http://127.0.0.1:{data_port}")
    shutdown(l)


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def tree(client, api_id: str) -> dict:
    """path → method → the integration facts a round trip must keep."""
    out = {}
    for r in client.get_resources(restApiId=api_id, embed=["methods"], limit=500)["items"]:
        methods = {}
        for http, m in (r.get("resourceMethods") or {}).items():
            i = m.get("methodIntegration") or {}
            methods[http] = {
                "authorizationType": m.get("authorizationType"),
                "apiKeyRequired": m.get("apiKeyRequired"),
                "type": i.get("type"),
                "uri": i.get("uri"),
                "httpMethod": i.get("httpMethod"),
                "requestParameters": i.get("requestParameters"),
                "requestTemplates": i.get("requestTemplates"),
                "passthroughBehavior": i.get("passthroughBehavior"),
                "responses": {
                    code: (resp.get("selectionPattern"), resp.get("responseParameters"), resp.get("responseTemplates"))
                    for code, resp in (i.get("integrationResponses") or {}).items()
                },
            }
        out[r["path"]] = methods
    return out


def export(client, api_id: str, stage: str, kind: str, accept: str, extensions: str = "apigateway") -> dict:
    out = client.get_export(
        restApiId=api_id, stageName=stage, exportType=kind, parameters={"extensions": extensions}, accepts=accept
    )
    body = out["body"].read().decode()
    assert out["contentType"] == accept, out
    assert "attachment" in out.get("contentDisposition", ""), out
    return yaml.safe_load(body) if "yaml" in accept else json.loads(body)


def bad_request(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    assert e.value.response["Error"]["Code"] == "BadRequestException", e.value.response
    return e.value.response["Error"]["Message"]


# --------------------------------------------------------------------------------------------
# Import → deploy → call
# --------------------------------------------------------------------------------------------


def test_petstore_imports_deploys_and_answers(standalone, backend):
    c = standalone.client
    doc = fixture_text("petstore.json").replace(PETSTORE_HOST, backend)
    api = c.import_rest_api(body=doc.encode(), failOnWarnings=True)
    try:
        assert api["name"] == "PetStore"
        assert not api.get("warnings"), api.get("warnings")
        got = tree(c, api["id"])
        assert set(got) == {"/", "/pets", "/pets/{petId}"}
        assert set(got["/pets"]) == {"GET", "POST", "OPTIONS"}
        assert got["/pets/{petId}"]["GET"]["requestParameters"] == {
            "integration.request.path.petId": "method.request.path.petId"
        }
        models = {m["name"] for m in c.get_models(restApiId=api["id"])["items"]}
        assert {"Pets", "Pet", "NewPet", "NewPetResponse", "PetType", "Empty"} <= models
        c.create_deployment(restApiId=api["id"], stageName="prod")

        home = standalone.wait_served(api["id"], "/")
        assert home.status_code == 200, home.text
        assert home.headers["Content-Type"].startswith("text/html")
        assert "Welcome to your Pet Store API" in home.text

        pets = standalone.call(api["id"], "/pets", params={"type": "dog", "page": "2"})
        assert pets.status_code == 200, pets.text
        seen = pets.json()
        assert (seen["method"], seen["path"]) == ("GET", "/petstore/pets")
        assert seen["query"] == {"type": ["dog"], "page": ["2"]}
        assert pets.headers["Access-Control-Allow-Origin"] == "*"

        pet = standalone.call(api["id"], "/pets/42")
        assert pet.status_code == 200, pet.text
        assert pet.json()["path"] == "/petstore/pets/42"

        created = standalone.call(api["id"], "/pets", "POST", json={"type": "dog", "price": 249.99})
        assert created.status_code == 200, created.text
        assert json.loads(created.json()["body"]) == {"type": "dog", "price": 249.99}

        preflight = standalone.call(api["id"], "/pets", "OPTIONS")
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["Access-Control-Allow-Methods"] == "POST,GET,OPTIONS"
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert standalone.call(api["id"], "/pets/7", "OPTIONS").headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    finally:
        c.delete_rest_api(restApiId=api["id"])


def test_request_validator_sample_imports_and_maps_parameters(standalone, backend):
    c = standalone.client
    doc = fixture_text("awsdocs-request-validators.json").replace(PETSTORE_HOST, backend)
    api = c.import_rest_api(body=doc.encode())
    try:
        # The sample names a security scheme it never declares: AWS imports it with a warning.
        assert any("api_key" in w for w in api.get("warnings", [])), api
        validators = {v["name"]: v for v in c.get_request_validators(restApiId=api["id"])["items"]}
        assert validators["all"]["validateRequestBody"] and validators["all"]["validateRequestParameters"]
        assert not validators["params-only"]["validateRequestBody"]
        resource = next(r for r in c.get_resources(restApiId=api["id"])["items"] if r["path"] == "/validation")
        get = c.get_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="GET")
        assert get["requestValidatorId"] == validators["params-only"]["id"]
        post = c.get_method(restApiId=api["id"], resourceId=resource["id"], httpMethod="POST")
        assert post["requestValidatorId"] == validators["all"]["id"]
        assert post["requestModels"] == {"application/json": "RequestBodyModel"}
        c.create_deployment(restApiId=api["id"], stageName="prod")
        r = standalone.wait_served(api["id"], "/validation?q1=cat")
        assert r.status_code == 200, r.text
        assert r.json()["query"] == {"type": ["cat"]}
    finally:
        c.delete_rest_api(restApiId=api["id"])


# --------------------------------------------------------------------------------------------
# Export → validate → re-import (both backends)
# --------------------------------------------------------------------------------------------

ROUND_TRIP = ["petstore.json", "awsdocs-request-validators.json", "awsdocs-lambda-calc.json", "airnode-apigateway.yaml"]


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_export_validates_and_reimports_to_the_same_api(gw, name):
    c = gw.client()
    api = c.import_rest_api(body=(FIXTURES / name).read_bytes())
    copies = []
    try:
        before = tree(c, api["id"])
        assert len(before) > 1, before
        c.create_deployment(restApiId=api["id"], stageName="v1")
        for kind in ("oas30", "swagger"):
            for accept in ("application/json", "application/yaml"):
                exported = export(c, api["id"], "v1", kind, accept)
                validate(exported)  # raises on any schema violation
                assert ("openapi" in exported) == (kind == "oas30")
                assert exported["info"]["title"] == api["name"]
                body = json.dumps(exported) if "json" in accept else yaml.safe_dump(exported)
                copy = c.import_rest_api(body=body.encode())
                copies.append(copy["id"])
                assert tree(c, copy["id"]) == before, f"{kind} {accept} did not round-trip"
        validators = sorted(v["name"] for v in c.get_request_validators(restApiId=api["id"])["items"])
        copied = sorted(v["name"] for v in c.get_request_validators(restApiId=copies[-1])["items"])
        assert copied == validators
        # Without extensions the document is plain OpenAPI.
        plain = export(c, api["id"], "v1", "oas30", "application/json", extensions="")
        validate(plain)
        assert "x-amazon-apigateway-integration" not in json.dumps(plain)
    finally:
        for api_id in [api["id"], *copies]:
            c.delete_rest_api(restApiId=api_id)


def test_export_describes_the_stage_deployment_not_later_edits(gw):
    c = gw.client()
    api = c.import_rest_api(body=(FIXTURES / "petstore.json").read_bytes())
    try:
        c.create_deployment(restApiId=api["id"], stageName="v1")
        deployed = export(c, api["id"], "v1", "oas30", "application/json")
        # Edit after deploying: a new resource with a method, and a rename.
        root = next(r for r in c.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
        extra = c.create_resource(restApiId=api["id"], parentId=root["id"], pathPart="after-deploy")
        c.put_method(restApiId=api["id"], resourceId=extra["id"], httpMethod="GET", authorizationType="NONE")
        c.put_integration(restApiId=api["id"], resourceId=extra["id"], httpMethod="GET", type="MOCK",
                          requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
        c.update_rest_api(restApiId=api["id"], patchOperations=[{"op": "replace", "path": "/name", "value": "renamed"}])
        again = export(c, api["id"], "v1", "oas30", "application/json")
        assert again == deployed
        assert "/after-deploy" not in again["paths"]
        # A new deployment of the stage exports the edits.
        c.create_deployment(restApiId=api["id"], stageName="v1")
        latest = export(c, api["id"], "v1", "oas30", "application/json")
        assert "/after-deploy" in latest["paths"]
        assert latest["info"]["title"] == "renamed"
    finally:
        c.delete_rest_api(restApiId=api["id"])


def test_export_needs_a_stage_and_a_known_type(gw):
    c = gw.client()
    api = c.import_rest_api(body=json.dumps(SMALL).encode())
    try:
        with pytest.raises(ClientError) as e:
            c.get_export(restApiId=api["id"], stageName="nope", exportType="oas30")
        assert e.value.response["Error"]["Code"] == "NotFoundException"
        c.create_deployment(restApiId=api["id"], stageName="s")
        message = bad_request(lambda: c.get_export(restApiId=api["id"], stageName="s", exportType="raml"))
        assert "raml" in message
        message = bad_request(
            lambda: c.get_export(restApiId=api["id"], stageName="s", exportType="oas30", parameters={"extensions": "wsdl"})
        )
        assert "wsdl" in message
    finally:
        c.delete_rest_api(restApiId=api["id"])


# --------------------------------------------------------------------------------------------
# PutRestApi
# --------------------------------------------------------------------------------------------

SMALL = {
    "swagger": "2.0",
    "info": {"title": "Small", "version": "2"},
    "paths": {
        "/pets": {"get": {"responses": {"200": {"description": "ok"}}, "x-amazon-apigateway-integration": {"type": "mock", "requestTemplates": {"application/json": '{"statusCode": 200}'}}}},
        "/extra": {"put": {"responses": {"200": {"description": "ok"}}, "x-amazon-apigateway-integration": {"type": "mock"}}},
    },
}


def test_put_rest_api_merges_and_overwrites(gw):
    c = gw.client()
    api = c.import_rest_api(body=fixture_text("petstore.json").encode())
    try:
        ids_before = {r["path"]: r["id"] for r in c.get_resources(restApiId=api["id"])["items"]}
        merged = c.put_rest_api(restApiId=api["id"], mode="merge", body=json.dumps(SMALL).encode())
        assert merged["id"] == api["id"]
        after = tree(c, api["id"])
        assert after["/pets"]["GET"]["type"] == "MOCK"  # replaced by the document
        assert after["/pets"]["POST"]["type"] == "HTTP"  # untouched
        assert "/pets/{petId}" in after and "/extra" in after

        c.put_rest_api(restApiId=api["id"], mode="overwrite", body=json.dumps(SMALL).encode())
        after = tree(c, api["id"])
        assert set(after) == {"/", "/pets", "/extra"}
        assert set(after["/pets"]) == {"GET"} and after["/"] == {}
        ids_after = {r["path"]: r["id"] for r in c.get_resources(restApiId=api["id"])["items"]}
        assert ids_after["/pets"] == ids_before["/pets"], "a kept path keeps its resource id"
        assert c.get_rest_api(restApiId=api["id"])["name"] == "Small"
        models = {m["name"] for m in c.get_models(restApiId=api["id"])["items"]}
        assert "Pet" not in models
    finally:
        c.delete_rest_api(restApiId=api["id"])


# --------------------------------------------------------------------------------------------
# Malformed documents and warnings
# --------------------------------------------------------------------------------------------

MALFORMED = {
    "bad yaml": ("swagger: '2.0'\ninfo: {title: t\npaths: [\n", "not valid YAML"),
    "bad ref": (
        json.dumps({"swagger": "2.0", "info": {"title": "t"}, "paths": {"/a": {"post": {"parameters": [
            {"in": "body", "name": "b", "schema": {"$ref": "#/definitions/Missing"}}]}}}}),
        "paths./a.post.parameters[0].schema.$ref",
    ),
    "unknown integration type": (
        json.dumps({"openapi": "3.0.1", "info": {"title": "t"}, "paths": {"/a": {"get": {
            "x-amazon-apigateway-integration": {"type": "carrier_pigeon"}}}}}),
        "unknown integration type 'carrier_pigeon'",
    ),
    "conflicting paths": (
        json.dumps({"openapi": "3.0.1", "info": {"title": "t"}, "paths": {"/a/{id}": {}, "/a/{name}": {}}}),
        "conflicting paths",
    ),
    "not openapi": ('{"hello": "world"}', "neither 'swagger"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_documents_are_refused_and_change_nothing(gw, api, case):
    c = gw.client()
    body, expected = MALFORMED[case]
    names_before = sorted(a["name"] for a in c.get_rest_apis(limit=500)["items"])
    message = bad_request(lambda: c.import_rest_api(body=body.encode()))
    assert expected in message, message
    assert message.startswith("Invalid OpenAPI input."), message
    assert sorted(a["name"] for a in c.get_rest_apis(limit=500)["items"]) == names_before

    before = tree(c, api["id"])
    for mode in ("merge", "overwrite"):
        message = bad_request(lambda: c.put_rest_api(restApiId=api["id"], mode=mode, body=body.encode()))
        assert expected in message, message
    assert tree(c, api["id"]) == before
    assert c.get_rest_api(restApiId=api["id"])["name"] == api["name"]


def test_failonwarnings_turns_warnings_into_errors(gw):
    c = gw.client()
    doc = fixture_text("awsdocs-request-validators.json").encode()
    message = bad_request(lambda: c.import_rest_api(body=doc, failOnWarnings=True))
    assert "api_key" in message and "failonwarnings" in message, message
    api = c.import_rest_api(body=doc, failOnWarnings=False)
    try:
        assert api["warnings"], api
    finally:
        c.delete_rest_api(restApiId=api["id"])
