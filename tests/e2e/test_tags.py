"""Tags: TagResource / GetTags / UntagResource on REST API and stage ARNs."""

import pytest

from conftest import aws_error, deployable_api, fake_id, rest_api_arn, stage_arn, uid


def test_create_rest_api_tags_are_visible(gw):
    c = gw.client()
    api = c.create_rest_api(name=uid("tagged"), tags={"env": "e2e", "owner": "gw-team"})
    try:
        assert c.get_tags(resourceArn=rest_api_arn(api["id"]))["tags"] == {"env": "e2e", "owner": "gw-team"}
        assert c.get_rest_api(restApiId=api["id"])["tags"] == {"env": "e2e", "owner": "gw-team"}
        listed = next(a for a in c.get_rest_apis(limit=500)["items"] if a["id"] == api["id"])
        assert listed["tags"] == {"env": "e2e", "owner": "gw-team"}
    finally:
        c.delete_rest_api(restApiId=api["id"])


def test_tag_and_untag_rest_api(gw, api):
    c = gw.client()
    arn = rest_api_arn(api["id"])
    assert c.get_tags(resourceArn=arn).get("tags", {}) == {}
    resp = c.tag_resource(resourceArn=arn, tags={"env": "test", "owner": "me", "cost": "42"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert c.get_tags(resourceArn=arn)["tags"] == {"env": "test", "owner": "me", "cost": "42"}
    # Tagging again overwrites and adds.
    c.tag_resource(resourceArn=arn, tags={"env": "prod", "new": "1"})
    assert c.get_tags(resourceArn=arn)["tags"] == {"env": "prod", "owner": "me", "cost": "42", "new": "1"}
    resp = c.untag_resource(resourceArn=arn, tagKeys=["owner", "cost"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert c.get_tags(resourceArn=arn)["tags"] == {"env": "prod", "new": "1"}
    assert c.get_rest_api(restApiId=api["id"])["tags"] == {"env": "prod", "new": "1"}


def test_tag_and_untag_stage(gw, api):
    c = gw.client()
    deployable_api(c, api)
    c.create_deployment(restApiId=api["id"], stageName="dev")
    arn = stage_arn(api["id"], "dev")
    c.tag_resource(resourceArn=arn, tags={"stage-tag": "yes", "other": "x"})
    assert c.get_tags(resourceArn=arn)["tags"] == {"stage-tag": "yes", "other": "x"}
    assert c.get_stage(restApiId=api["id"], stageName="dev")["tags"] == {"stage-tag": "yes", "other": "x"}
    # Stage tags are not the API's tags.
    assert c.get_tags(resourceArn=rest_api_arn(api["id"])).get("tags", {}) == {}
    c.untag_resource(resourceArn=arn, tagKeys=["other"])
    assert c.get_tags(resourceArn=arn)["tags"] == {"stage-tag": "yes"}


@pytest.mark.parametrize(
    "arn",
    [
        lambda api: rest_api_arn(fake_id(10)),
        lambda api: stage_arn(api["id"], "nostage"),
    ],
    ids=["unknown-api", "unknown-stage"],
)
def test_tags_of_unknown_resource(gw, api, arn):
    c = gw.client()
    with aws_error("NotFoundException", 404):
        c.tag_resource(resourceArn=arn(api), tags={"a": "b"})
    with aws_error("NotFoundException", 404):
        c.get_tags(resourceArn=arn(api))


def test_malformed_arn(gw):
    with aws_error(("BadRequestException", "NotFoundException"), (400, 404)):
        gw.client().get_tags(resourceArn="not-an-arn")
