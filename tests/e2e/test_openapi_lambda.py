"""The public OpenAPI documents with Lambda integrations, imported unchanged except for their
function ARNs, deployed and called through the data plane, with real Python functions on the
built-in host (awslambdaric):

- the AWS documentation's calculator (tests/fixtures/openapi/awsdocs-lambda-calc.json): non-proxy
  AWS integrations with VTL request and response templates and a body validator;
- Airnode's gateway (airnode-apigateway.yaml, a Terraform template: `${region}`,
  `${proxy_lambda}`, `${role}` filled in as Terraform would): AWS_PROXY behind an API key, a
  request validator for the body and path parameter.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

from test_lambda_proxy import (  # noqa: F401  (pytest fixtures are used by name)
    python_zip,
    standalone,
    wait_served,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "openapi" / "awsdocs-lambda-calc.json"
SAMPLE_FUNCTION = "arn:aws:lambda:us-west-2:123456789012:function:Calc"

# The calculator of AWS's "Calc" tutorial function: numbers (or numeric strings) a and b, an
# operator by symbol or name, and the result as c.
CALC = '''
def handler(event, context):
    def num(v):
        f = float(v)
        return int(f) if f.is_integer() else f
    a, b, op = num(event["a"]), num(event["b"]), event["op"]
    ops = {"+": a + b, "add": a + b, "-": a - b, "sub": a - b,
           "*": a * b, "mul": a * b, "/": a / b if b else None, "div": a / b if b else None}
    if op not in ops or ops[op] is None:
        raise ValueError(f"400 Invalid operator or operands: {op}")
    c = ops[op]
    return {"a": a, "b": b, "op": op, "c": int(c) if float(c).is_integer() else c}
'''


def test_aws_calculator_sample_imports_deploys_and_answers(standalone, tmp_path):  # noqa: F811
    d = standalone
    code = tmp_path / "calc.zip"
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("calc.py", CALC)
    arn = d.create_function(code, "python3.12", "calc.handler", timeout=10)
    doc = (
        FIXTURE.read_text()
        .replace(SAMPLE_FUNCTION, arn)
        .replace("arn:aws:apigateway:us-west-2:", "arn:aws:apigateway:us-east-1:")
    )
    c = d.client
    api = c.import_rest_api(body=doc.encode())
    try:
        paths = {r["path"] for r in c.get_resources(restApiId=api["id"])["items"]}
        assert "/calc/{operand1}/{operand2}/{operator}" in paths, paths
        c.create_deployment(restApiId=api["id"], stageName="prod")
        wait_served(d, api["id"], "/calc/1/2/add")

        # Path parameters → request template → function → response template.
        r = d.call(api["id"], "/calc/3/4/add")
        assert r.status_code == 200, r.text
        assert r.json() == {"input": {"a": 3, "b": 4, "op": "add"}, "output": {"c": 7}}
        # The template's own special case: an encoded slash means division.
        r = d.call(api["id"], "/calc/9/3/%2F")
        assert r.status_code == 200, r.text
        assert r.json() == {"input": {"a": 9, "b": 3, "op": "/"}, "output": {"c": 3}}

        # POST: the body is the event (passthrough when no template), validated by the model.
        r = d.call(api["id"], "/calc", "POST", json={"a": 6, "b": 7, "op": "*"})
        assert r.status_code == 200, r.text
        assert r.text == '{\n  "a" : 6,\n  "b" : 7,\n  "op" : *,\n  "c" : 42\n}'
        bad = d.call(api["id"], "/calc", "POST", json={"a": "six", "b": 7, "op": "*"})
        assert bad.status_code == 400, bad.text
        assert bad.json() == {"message": "Invalid request body"}

        # Query form: operands and operator from the query string, echoed in headers.
        r = d.call(api["id"], "/calc", params={"operand1": "10", "operand2": "4", "operator": "sub"})
        assert r.status_code == 200, r.text
        assert r.headers["operand_1"] == "10" and r.headers["operator"] == "sub"
        assert json.loads(r.text) == {"result": "10, 4, sub => 6", "a": "10", "b": "4", "op": "sub", "c": "6"}
    finally:
        c.delete_rest_api(restApiId=api["id"])


def test_airnode_gateway_imports_deploys_and_answers(standalone, python_zip):  # noqa: F811
    d = standalone
    arn = d.create_function(python_zip, "python3.12", "app.handler", timeout=10)
    doc = (
        (FIXTURE.parent / "airnode-apigateway.yaml")
        .read_text()
        .replace("${region}", "us-east-1")
        .replace("${proxy_lambda}", arn)
        .replace("${role}", f"arn:aws:iam::{d.tenant.account_id}:role/airnode")
    )
    c = d.client
    api = c.import_rest_api(body=doc.encode())
    try:
        c.create_deployment(restApiId=api["id"], stageName="prod")
        key = c.create_api_key(name="airnode", enabled=True)
        plan = c.create_usage_plan(name="airnode", apiStages=[{"apiId": api["id"], "stage": "prod"}])
        c.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        path = "/test/0xeddc421714e1b46ef350e8ecf380bd0b38a40ce1a534e7ecdf4db7dbc9319353"
        body = {"parameters": {"from": "EUR", "amount": 5}}

        # The deployment, plan and key reach the data plane asynchronously.
        deadline = time.monotonic() + 15
        while True:
            r = d.call(api["id"], path, "POST", json=body, headers={"x-api-key": key["value"]})
            if r.status_code != 403 or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # propagation polling
        assert r.status_code == 200, r.text

        # The document's security scheme makes the key required.
        no_key = d.call(api["id"], path, "POST", json=body)
        assert no_key.status_code == 403, no_key.text
        assert no_key.json() == {"message": "Forbidden"}
        event = r.json()["event"]
        assert event["resource"] == "/test/{endpointId}"
        assert event["pathParameters"] == {"endpointId": path.rsplit("/", 1)[1]}
        assert json.loads(event["body"]) == body
        assert event["requestContext"]["identity"]["apiKey"] == key["value"]
        assert event["requestContext"]["identity"]["apiKeyId"] == key["id"]

        # The request validator `all` checks the body against TestEndpointRequest.
        bad = d.call(api["id"], path, "POST", json={"nope": 1}, headers={"x-api-key": key["value"]})
        assert bad.status_code == 400, bad.text
        assert bad.json() == {"message": "Invalid request body"}
    finally:
        c.delete_rest_api(restApiId=api["id"])
