"""SigV4 authentication of the management API."""

import json
from datetime import datetime, timedelta, timezone

import pytest
import requests

from conftest import aws_error, check_raw_error, make_client, signed_request, uid, Tenant


def test_signed_request_helper_is_accepted(gw):
    # The control for everything below: a correctly signed raw request works.
    resp = signed_request(gw, "GET", "/restapis")
    assert resp.status_code == 200, resp.text
    assert isinstance(resp.json().get("item", []), list)


def test_wrong_secret(gw):
    resp = signed_request(gw, "GET", "/restapis", secret_key="not-the-secret")
    check_raw_error(resp, "InvalidSignatureException", 403)
    bad = Tenant("bad", gw.tenant_a.account_id, gw.tenant_a.access_key, "not-the-secret")
    with aws_error("InvalidSignatureException", 403):
        make_client(gw.mgmt_url, bad).get_rest_apis()


def test_unknown_access_key(gw):
    resp = signed_request(gw, "GET", "/restapis", access_key="AKIAE2EUNKNOWNKEY000", secret_key="whatever")
    check_raw_error(resp, "UnrecognizedClientException", 403)
    bad = Tenant("bad", "", "AKIAE2EUNKNOWNKEY000", "whatever")
    with aws_error("UnrecognizedClientException", 403):
        make_client(gw.mgmt_url, bad).get_rest_apis()


def test_no_authorization_header(gw):
    resp = requests.get(gw.mgmt_url + "/restapis", timeout=30)
    check_raw_error(resp, "MissingAuthenticationTokenException", 403)
    resp = signed_request(gw, "POST", "/restapis", {"name": uid("unsigned")}, sign=False)
    check_raw_error(resp, "MissingAuthenticationTokenException", 403)


def test_garbage_authorization_header(gw):
    resp = requests.get(gw.mgmt_url + "/restapis", headers={"Authorization": "Bearer nonsense"}, timeout=30)
    assert resp.status_code in (400, 403), resp.text
    assert resp.headers.get("x-amzn-ErrorType"), resp.headers


def test_signature_from_twenty_minutes_ago(gw):
    at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=20)
    resp = signed_request(gw, "GET", "/restapis", at=at)
    check_raw_error(resp, "InvalidSignatureException", 403, mentions="expired")


def test_signature_within_clock_skew_is_accepted(gw):
    at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=3)
    resp = signed_request(gw, "GET", "/restapis", at=at)
    assert resp.status_code == 200, resp.text


def test_tampered_body(gw):
    name = uid("tampered")
    signed = json.dumps({"name": name}).encode()
    sent = json.dumps({"name": name + "-evil"}).encode()
    resp = signed_request(gw, "POST", "/restapis", signed, send_body=sent)
    check_raw_error(resp, "InvalidSignatureException", 403)
    names = {a["name"] for a in gw.client().get_rest_apis(limit=500)["items"]}
    assert name not in names and name + "-evil" not in names


def test_signed_for_another_service(gw):
    resp = signed_request(gw, "GET", "/restapis", service="s3")
    assert resp.status_code == 403, resp.text


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3"])
def test_boto3_any_region(gw, region):
    c = gw.client(region=region)
    api = c.create_rest_api(name=uid(f"region-{region}"))
    try:
        assert c.get_rest_api(restApiId=api["id"])["name"] == api["name"]
        assert api["id"] in {a["id"] for a in c.get_rest_apis(limit=500)["items"]}
    finally:
        c.delete_rest_api(restApiId=api["id"])


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3"])
def test_cli_any_region(gw, region):
    out = gw.cli_ok("get-rest-apis", region=region)
    assert isinstance(out["items"], list)
