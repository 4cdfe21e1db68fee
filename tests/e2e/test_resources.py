"""Resources: the path tree, computed paths, moves and renames, and the tree's rules."""

import pytest

from conftest import aws_error, fake_id, resource_by_path


@pytest.fixture
def tree(gw, api):
    """/pets, /pets/{petId}, /pets/{petId}/toys, /files/{proxy+} under a fresh API."""
    c = gw.client()
    a, root = api["id"], api["rootResourceId"]
    pets = c.create_resource(restApiId=a, parentId=root, pathPart="pets")
    pet = c.create_resource(restApiId=a, parentId=pets["id"], pathPart="{petId}")
    toys = c.create_resource(restApiId=a, parentId=pet["id"], pathPart="toys")
    files = c.create_resource(restApiId=a, parentId=root, pathPart="files")
    proxy = c.create_resource(restApiId=a, parentId=files["id"], pathPart="{proxy+}")
    return {"api": a, "root": root, "pets": pets, "pet": pet, "toys": toys, "files": files, "proxy": proxy}


def test_create_resource_computes_path(gw, tree):
    pets, pet, toys, proxy = tree["pets"], tree["pet"], tree["toys"], tree["proxy"]
    assert pets["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (pets["pathPart"], pets["path"], pets["parentId"]) == ("pets", "/pets", tree["root"])
    assert (pet["pathPart"], pet["path"], pet["parentId"]) == ("{petId}", "/pets/{petId}", pets["id"])
    assert toys["path"] == "/pets/{petId}/toys"
    assert (proxy["pathPart"], proxy["path"]) == ("{proxy+}", "/files/{proxy+}")
    ids = [tree[k]["id"] for k in ("pets", "pet", "toys", "files", "proxy")]
    assert len(set(ids + [tree["root"]])) == 6


def test_get_resource_and_get_resources(gw, tree):
    c = gw.client()
    got = c.get_resource(restApiId=tree["api"], resourceId=tree["pet"]["id"])
    assert (got["id"], got["path"], got["pathPart"], got["parentId"]) == (
        tree["pet"]["id"], "/pets/{petId}", "{petId}", tree["pets"]["id"])  # fmt: skip
    paths = resource_by_path(c, tree["api"])
    assert set(paths) == {"/", "/pets", "/pets/{petId}", "/pets/{petId}/toys", "/files", "/files/{proxy+}"}
    assert paths["/pets/{petId}/toys"]["parentId"] == tree["pet"]["id"]


def test_get_resources_embeds_methods(gw, tree):
    c = gw.client()
    c.put_method(restApiId=tree["api"], resourceId=tree["pets"]["id"], httpMethod="GET", authorizationType="NONE")
    items = c.get_resources(restApiId=tree["api"], embed=["methods"])["items"]
    pets = next(r for r in items if r["path"] == "/pets")
    assert set(pets["resourceMethods"]) == {"GET"}
    assert pets["resourceMethods"]["GET"]["httpMethod"] == "GET"
    assert pets["resourceMethods"]["GET"]["authorizationType"] == "NONE"
    toys = next(r for r in items if r["path"] == "/pets/{petId}/toys")
    assert not toys.get("resourceMethods")


def test_get_resources_pages(gw, tree):
    c = gw.client()
    seen, position = [], None
    for _ in range(20):
        kw = {"restApiId": tree["api"], "limit": 2}
        if position:
            kw["position"] = position
        page = c.get_resources(**kw)
        assert len(page["items"]) <= 2
        seen += [r["id"] for r in page["items"]]
        position = page.get("position")
        if not position:
            break
    assert len(seen) == len(set(seen)) == 6


def test_rename_path_part_moves_children_paths(gw, tree):
    c = gw.client()
    a = tree["api"]
    got = c.update_resource(
        restApiId=a, resourceId=tree["pets"]["id"], patchOperations=[{"op": "replace", "path": "/pathPart", "value": "animals"}]
    )
    assert (got["pathPart"], got["path"]) == ("animals", "/animals")
    assert c.get_resource(restApiId=a, resourceId=tree["pet"]["id"])["path"] == "/animals/{petId}"
    assert c.get_resource(restApiId=a, resourceId=tree["toys"]["id"])["path"] == "/animals/{petId}/toys"


def test_move_resource_via_parent_id(gw, tree):
    c = gw.client()
    a = tree["api"]
    zoo = c.create_resource(restApiId=a, parentId=tree["root"], pathPart="zoo")
    moved = c.update_resource(
        restApiId=a, resourceId=tree["pets"]["id"], patchOperations=[{"op": "replace", "path": "/parentId", "value": zoo["id"]}]
    )
    assert (moved["parentId"], moved["path"]) == (zoo["id"], "/zoo/pets")
    assert c.get_resource(restApiId=a, resourceId=tree["pet"]["id"])["path"] == "/zoo/pets/{petId}"
    assert c.get_resource(restApiId=a, resourceId=tree["toys"]["id"])["path"] == "/zoo/pets/{petId}/toys"
    assert "/pets" not in resource_by_path(c, a)


def test_delete_resource_removes_subtree(gw, tree):
    c = gw.client()
    a = tree["api"]
    resp = c.delete_resource(restApiId=a, resourceId=tree["pets"]["id"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    for key in ("pets", "pet", "toys"):
        with aws_error("NotFoundException", 404, prefix="Invalid Resource identifier specified"):
            c.get_resource(restApiId=a, resourceId=tree[key]["id"])
    assert set(resource_by_path(c, a)) == {"/", "/files", "/files/{proxy+}"}


def test_duplicate_sibling_is_a_conflict(gw, tree):
    c = gw.client()
    with aws_error("ConflictException", 409, message="Another resource with the same parent already has this name: pets"):
        c.create_resource(restApiId=tree["api"], parentId=tree["root"], pathPart="pets")
    assert len(resource_by_path(c, tree["api"])) == 6


def test_no_child_under_greedy_proxy(gw, tree):
    c = gw.client()
    with aws_error("BadRequestException", 400, mentions=r"\{proxy\+\}"):
        c.create_resource(restApiId=tree["api"], parentId=tree["proxy"]["id"], pathPart="child")
    assert len(resource_by_path(c, tree["api"])) == 6


def test_only_one_variable_sibling(gw, tree):
    c = gw.client()
    with aws_error("BadRequestException", 400):
        c.create_resource(restApiId=tree["api"], parentId=tree["pets"]["id"], pathPart="{other}")
    with aws_error("BadRequestException", 400):
        c.create_resource(restApiId=tree["api"], parentId=tree["pets"]["id"], pathPart="{greedy+}")
    # A literal sibling of a variable is fine.
    lit = c.create_resource(restApiId=tree["api"], parentId=tree["pets"]["id"], pathPart="search")
    assert lit["path"] == "/pets/search"


def test_move_under_own_descendant_is_rejected(gw, tree):
    c = gw.client()
    a = tree["api"]
    before = resource_by_path(c, a)
    with aws_error("BadRequestException", 400):
        c.update_resource(
            restApiId=a,
            resourceId=tree["pets"]["id"],
            patchOperations=[{"op": "replace", "path": "/parentId", "value": tree["toys"]["id"]}],
        )
    with aws_error("BadRequestException", 400):
        c.update_resource(
            restApiId=a,
            resourceId=tree["pets"]["id"],
            patchOperations=[{"op": "replace", "path": "/parentId", "value": tree["pets"]["id"]}],
        )
    assert resource_by_path(c, a) == before


def test_move_to_missing_parent_is_rejected(gw, tree):
    c = gw.client()
    before = resource_by_path(c, tree["api"])
    with aws_error(("NotFoundException", "BadRequestException"), (404, 400)):
        c.update_resource(
            restApiId=tree["api"],
            resourceId=tree["pets"]["id"],
            patchOperations=[{"op": "replace", "path": "/parentId", "value": fake_id(6)}],
        )
    assert resource_by_path(c, tree["api"]) == before


@pytest.mark.parametrize("bad", ["bad path", "a/b", "semi;colon", "{unclosed", "pre{fix}", ""])
def test_invalid_path_part(gw, tree, bad):
    c = gw.client()
    with aws_error("BadRequestException", 400):
        c.create_resource(restApiId=tree["api"], parentId=tree["root"], pathPart=bad)
    assert len(resource_by_path(c, tree["api"])) == 6


def test_resource_on_unknown_api_or_parent(gw, api):
    c = gw.client()
    with aws_error("NotFoundException", 404, prefix="Invalid API identifier specified"):
        c.create_resource(restApiId=fake_id(10), parentId=api["rootResourceId"], pathPart="x")
    with aws_error("NotFoundException", 404):
        c.create_resource(restApiId=api["id"], parentId=fake_id(6), pathPart="x")
    with aws_error("NotFoundException", 404, prefix="Invalid Resource identifier specified"):
        c.get_resource(restApiId=api["id"], resourceId=fake_id(6))
