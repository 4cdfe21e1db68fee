"""REST APIs: CreateRestApi / GetRestApi / GetRestApis (paging) / UpdateRestApi / DeleteRestApi."""

from conftest import REST_API_ID, assert_recent, aws_error, fake_id, signed_request, strip_meta, uid


def test_create_rest_api_echoes_every_field(gw):
    c = gw.client()
    name = uid("full")
    created = c.create_rest_api(
        name=name,
        description="all the fields",
        binaryMediaTypes=["image/png", "application/octet-stream"],
        endpointConfiguration={"types": ["REGIONAL"]},
        tags={"env": "e2e", "team": "gateway"},
        apiKeySource="AUTHORIZER",
        minimumCompressionSize=1024,
    )
    try:
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert REST_API_ID.match(created["id"]), created["id"]
        assert created["name"] == name
        assert created["description"] == "all the fields"
        assert created["binaryMediaTypes"] == ["image/png", "application/octet-stream"]
        assert created["endpointConfiguration"]["types"] == ["REGIONAL"]
        assert created["tags"] == {"env": "e2e", "team": "gateway"}
        assert created["apiKeySource"] == "AUTHORIZER"
        assert created["minimumCompressionSize"] == 1024
        assert_recent(created["createdDate"])
        assert created["rootResourceId"]

        got = c.get_rest_api(restApiId=created["id"])
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
        for k in ("id", "name", "description", "binaryMediaTypes", "endpointConfiguration", "tags",
                  "apiKeySource", "minimumCompressionSize", "rootResourceId", "createdDate"):  # fmt: skip
            assert got[k] == created[k], k
    finally:
        c.delete_rest_api(restApiId=created["id"])


def test_create_rest_api_defaults(gw, api):
    c = gw.client()
    got = c.get_rest_api(restApiId=api["id"])
    # AWS defaults: EDGE endpoint, HEADER api key source, no compression.
    assert got["endpointConfiguration"]["types"] == ["EDGE"]
    assert got["apiKeySource"] == "HEADER"
    assert "minimumCompressionSize" not in got
    assert got.get("binaryMediaTypes", []) == []
    assert got.get("disableExecuteApiEndpoint", False) is False


def test_root_resource_is_listed(gw, api):
    c = gw.client()
    items = c.get_resources(restApiId=api["id"])["items"]
    assert len(items) == 1, items
    root = items[0]
    assert root["id"] == api["rootResourceId"]
    assert root["path"] == "/"
    assert "parentId" not in root
    assert "pathPart" not in root


def test_get_rest_apis_pages_without_duplicates(gw):
    c = gw.client()
    created = [c.create_rest_api(name=uid("page"))["id"] for _ in range(5)]
    try:
        seen, pages, position = [], 0, None
        while True:
            kw = {"limit": 2}
            if position:
                kw["position"] = position
            page = c.get_rest_apis(**kw)
            pages += 1
            assert len(page["items"]) <= 2, page["items"]
            seen.extend(item["id"] for item in page["items"])
            position = page.get("position")
            if not position:
                break
            assert pages < 100, "paging never ends"
        assert len(seen) == len(set(seen)), f"duplicates across pages: {seen}"
        assert set(created) <= set(seen)
        assert pages >= 3
        everything = {a["id"] for a in c.get_rest_apis(limit=500)["items"]}
        assert set(seen) == everything
    finally:
        for api_id in created:
            c.delete_rest_api(restApiId=api_id)


def test_update_rest_api_with_patch_operations(gw, api):
    c = gw.client()
    api_id = api["id"]
    updated = c.update_rest_api(
        restApiId=api_id,
        patchOperations=[
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "replace", "path": "/description", "value": "new description"},
            {"op": "add", "path": "/binaryMediaTypes/image~1png", "value": ""},
        ],
    )
    assert updated["name"] == "renamed"
    assert updated["description"] == "new description"
    assert updated["binaryMediaTypes"] == ["image/png"]
    got = c.get_rest_api(restApiId=api_id)
    assert (got["name"], got["description"], got["binaryMediaTypes"]) == ("renamed", "new description", ["image/png"])

    after = c.update_rest_api(
        restApiId=api_id, patchOperations=[{"op": "remove", "path": "/binaryMediaTypes/image~1png"}]
    )
    assert after.get("binaryMediaTypes", []) == []
    assert c.get_rest_api(restApiId=api_id).get("binaryMediaTypes", []) == []


def test_update_minimum_compression_size(gw, api):
    c = gw.client()
    got = c.update_rest_api(
        restApiId=api["id"], patchOperations=[{"op": "replace", "path": "/minimumCompressionSize", "value": "2048"}]
    )
    assert got["minimumCompressionSize"] == 2048
    with aws_error(
        "BadRequestException", 400, message="Invalid minimum compression size, must be between 0 and 10485760"
    ):
        c.update_rest_api(
            restApiId=api["id"], patchOperations=[{"op": "replace", "path": "/minimumCompressionSize", "value": "-1"}]
        )
    assert c.get_rest_api(restApiId=api["id"])["minimumCompressionSize"] == 2048


def test_update_rest_api_invalid_patch_path_changes_nothing(gw, api):
    c = gw.client()
    before = strip_meta(c.get_rest_api(restApiId=api["id"]))
    with aws_error("BadRequestException", 400, prefix="Invalid patch path"):
        c.update_rest_api(
            restApiId=api["id"],
            patchOperations=[
                {"op": "replace", "path": "/description", "value": "must not stick"},
                {"op": "replace", "path": "/x", "value": "y"},
            ],
        )
    assert strip_meta(c.get_rest_api(restApiId=api["id"])) == before


def test_delete_rest_api_then_get_is_not_found(gw):
    c = gw.client()
    api_id = c.create_rest_api(name=uid("doomed"))["id"]
    resp = c.delete_rest_api(restApiId=api_id)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    with aws_error("NotFoundException", 404, prefix="Invalid API identifier specified"):
        c.get_rest_api(restApiId=api_id)
    assert api_id not in {a["id"] for a in c.get_rest_apis(limit=500)["items"]}
    with aws_error("NotFoundException", 404, prefix="Invalid API identifier specified"):
        c.delete_rest_api(restApiId=api_id)


def test_get_unknown_rest_api(gw):
    with aws_error("NotFoundException", 404, prefix="Invalid API identifier specified") as ei:
        gw.client().get_rest_api(restApiId="zzzzzzzzzz")
    assert "zzzzzzzzzz" in ei.value.response["Error"]["Message"]


def test_create_rest_api_requires_name(gw):
    # botocore checks required members itself, so go around it with an empty name.
    with aws_error("BadRequestException", 400, mentions="name"):
        gw.client().create_rest_api(name="")


def test_wire_shapes(gw, api):
    """What botocore relies on, checked on the wire: list key `item`, epoch-second dates, error shape."""
    resp = signed_request(gw, "GET", "/restapis", query={"limit": "500"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body["item"], list) and "items" not in body
    mine = next(a for a in body["item"] if a["id"] == api["id"])
    assert isinstance(mine["createdDate"], (int, float)), mine["createdDate"]

    resp = signed_request(gw, "GET", f"/restapis/{api['id']}/resources")
    assert [r["path"] for r in resp.json()["item"]] == ["/"]

    missing = fake_id(10)
    resp = signed_request(gw, "GET", f"/restapis/{missing}")
    assert resp.status_code == 404
    assert resp.headers.get("x-amzn-ErrorType", "").split(":")[0] == "NotFoundException", dict(resp.headers)
    assert resp.headers["Content-Type"].startswith("application/json")
    err = resp.json()
    assert err["message"].startswith("Invalid API identifier specified"), err
    assert missing in err["message"]


def test_responses_carry_a_request_id(gw, api):
    # AWS answers every management call with x-amzn-RequestId; botocore surfaces it as
    # ResponseMetadata.RequestId, which tools log and print on errors.
    ok = signed_request(gw, "GET", f"/restapis/{api['id']}")
    err = signed_request(gw, "GET", f"/restapis/{fake_id(10)}")
    assert ok.headers.get("x-amzn-RequestId"), dict(ok.headers)
    assert err.headers.get("x-amzn-RequestId"), dict(err.headers)
    assert ok.headers["x-amzn-RequestId"] != err.headers["x-amzn-RequestId"]
    assert gw.client().get_rest_api(restApiId=api["id"])["ResponseMetadata"].get("RequestId")
