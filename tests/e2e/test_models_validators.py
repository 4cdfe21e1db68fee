"""Models (JSON schemas) and request validators."""

import json

from conftest import aws_error, check_raw_error, fake_id, signed_request, strip_meta

PET_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "Pet",
    "type": "object",
    "properties": {"name": {"type": "string"}, "price": {"type": "number", "maximum": 500}},
    "required": ["name"],
}


def test_new_api_has_empty_and_error_models(gw, api):
    items = gw.client().get_models(restApiId=api["id"], limit=500)["items"]
    by_name = {m["name"]: m for m in items}
    assert set(by_name) == {"Empty", "Error"}
    assert json.loads(by_name["Empty"]["schema"])["title"] == "Empty Schema"
    assert json.loads(by_name["Error"]["schema"])["properties"] == {"message": {"type": "string"}}
    assert by_name["Empty"]["contentType"] == "application/json"


def test_model_lifecycle(gw, api):
    c = gw.client()
    a = api["id"]
    created = c.create_model(
        restApiId=a, name="Pet", description="a pet", schema=json.dumps(PET_SCHEMA), contentType="application/json"
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["id"]
    assert (created["name"], created["description"], created["contentType"]) == ("Pet", "a pet", "application/json")
    assert json.loads(created["schema"]) == PET_SCHEMA

    got = c.get_model(restApiId=a, modelName="Pet")
    assert (got["id"], got["name"], got["contentType"], got["description"]) == (created["id"], "Pet", "application/json", "a pet")
    assert json.loads(got["schema"]) == PET_SCHEMA
    assert "Pet" in {m["name"] for m in c.get_models(restApiId=a, limit=500)["items"]}

    new_schema = {**PET_SCHEMA, "properties": {"name": {"type": "string"}}}
    up = c.update_model(
        restApiId=a,
        modelName="Pet",
        patchOperations=[
            {"op": "replace", "path": "/schema", "value": json.dumps(new_schema)},
            {"op": "replace", "path": "/description", "value": "just a name"},
        ],
    )
    assert json.loads(up["schema"]) == new_schema
    assert up["description"] == "just a name"
    got = c.get_model(restApiId=a, modelName="Pet")
    assert (json.loads(got["schema"]), got["description"]) == (new_schema, "just a name")

    resp = c.delete_model(restApiId=a, modelName="Pet")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    with aws_error("NotFoundException", 404):
        c.get_model(restApiId=a, modelName="Pet")
    assert "Pet" not in {m["name"] for m in c.get_models(restApiId=a, limit=500)["items"]}


def test_duplicate_model_name_is_a_conflict(gw, api):
    c = gw.client()
    c.create_model(restApiId=api["id"], name="Thing", schema=json.dumps(PET_SCHEMA), contentType="application/json")
    with aws_error("ConflictException", 409):
        c.create_model(restApiId=api["id"], name="Thing", schema=json.dumps(PET_SCHEMA), contentType="application/json")
    assert [m["name"] for m in c.get_models(restApiId=api["id"], limit=500)["items"]].count("Thing") == 1


def test_model_content_type_is_required(gw, api):
    # botocore would refuse to send this, so send it raw.
    body = {"name": "NoType", "schema": json.dumps(PET_SCHEMA)}
    resp = signed_request(gw, "POST", f"/restapis/{api['id']}/models", body)
    check_raw_error(resp, "BadRequestException", 400, mentions=r"content.?type")
    with aws_error("NotFoundException", 404):
        gw.client().get_model(restApiId=api["id"], modelName="NoType")


def test_model_name_must_be_alphanumeric(gw, api):
    with aws_error("BadRequestException", 400, mentions="name"):
        gw.client().create_model(
            restApiId=api["id"], name="not-alnum!", schema=json.dumps(PET_SCHEMA), contentType="application/json"
        )


def test_model_schema_must_be_json(gw, api):
    with aws_error("BadRequestException", 400):
        gw.client().create_model(restApiId=api["id"], name="Broken", schema="{not json", contentType="application/json")


def test_model_in_use_by_a_method_cannot_be_deleted(gw, api):
    c = gw.client()
    a = api["id"]
    c.create_model(restApiId=a, name="Body", schema=json.dumps(PET_SCHEMA), contentType="application/json")
    c.put_method(
        restApiId=a,
        resourceId=api["rootResourceId"],
        httpMethod="POST",
        authorizationType="NONE",
        requestModels={"application/json": "Body"},
    )
    with aws_error(("BadRequestException", "ConflictException"), (400, 409)):
        c.delete_model(restApiId=a, modelName="Body")
    assert c.get_model(restApiId=a, modelName="Body")["name"] == "Body"


def test_request_validator_lifecycle(gw, api):
    c = gw.client()
    a = api["id"]
    v = c.create_request_validator(restApiId=a, name="body-only", validateRequestBody=True, validateRequestParameters=False)
    assert v["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert v["id"]
    assert (v["name"], v["validateRequestBody"], v["validateRequestParameters"]) == ("body-only", True, False)

    got = strip_meta(c.get_request_validator(restApiId=a, requestValidatorId=v["id"]))
    assert got == strip_meta(v)
    listed = c.get_request_validators(restApiId=a, limit=500)["items"]
    assert [x["id"] for x in listed] == [v["id"]]

    up = c.update_request_validator(
        restApiId=a,
        requestValidatorId=v["id"],
        patchOperations=[
            {"op": "replace", "path": "/validateRequestParameters", "value": "true"},
            {"op": "replace", "path": "/name", "value": "everything"},
        ],
    )
    assert (up["name"], up["validateRequestBody"], up["validateRequestParameters"]) == ("everything", True, True)
    assert strip_meta(c.get_request_validator(restApiId=a, requestValidatorId=v["id"])) == strip_meta(up)

    # A method may point at it.
    m = c.put_method(
        restApiId=a, resourceId=api["rootResourceId"], httpMethod="GET", authorizationType="NONE", requestValidatorId=v["id"]
    )
    assert m["requestValidatorId"] == v["id"]

    c.delete_method(restApiId=a, resourceId=api["rootResourceId"], httpMethod="GET")
    resp = c.delete_request_validator(restApiId=a, requestValidatorId=v["id"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    with aws_error("NotFoundException", 404):
        c.get_request_validator(restApiId=a, requestValidatorId=v["id"])
    assert c.get_request_validators(restApiId=a)["items"] == []


def test_request_validator_defaults_and_unknown_id(gw, api):
    c = gw.client()
    v = c.create_request_validator(restApiId=api["id"], name="defaults")
    assert (v["validateRequestBody"], v["validateRequestParameters"]) == (False, False)
    with aws_error("NotFoundException", 404):
        c.get_request_validator(restApiId=api["id"], requestValidatorId=fake_id(6))
    with aws_error(("BadRequestException", "NotFoundException"), (400, 404)):
        c.put_method(
            restApiId=api["id"],
            resourceId=api["rootResourceId"],
            httpMethod="GET",
            authorizationType="NONE",
            requestValidatorId=fake_id(6),
        )
