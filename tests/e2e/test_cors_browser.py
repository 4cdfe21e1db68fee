"""CORS as a browser enforces it: headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium) loads a page from one origin and calls a REST API served by apigw's data plane on another
origin with `fetch`. The API's CORS configuration is written by `apigw cors enable`; the assertions
are the browser's own verdicts (a fetch that resolves, or one that rejects with a TypeError); the
Access-Control-* headers themselves are not readable by the page, which is the point.

Skips only when chromium cannot be installed (no apt-get or not root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import APIGW_BIN, DEV_ACCOUNT, Tenant, launch_standalone, make_client, shutdown

PROPAGATION_TIMEOUT = 15.0
PAGE = b"<!doctype html><html><head><title>cors</title></head><body>cors test page</body></html>"


def chromium_paths() -> tuple[str, str]:
    """chromium and chromedriver, installing them with apt-get when possible."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    if shutil.which("apt-get") and os.geteuid() == 0:
        r = subprocess.run(
            ["apt-get", "install", "-y", "chromium", "chromium-driver"],
            capture_output=True,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            timeout=900,
        )
        browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
        if browser and driver:
            return browser, driver
        pytest.skip(f"chromium could not be installed with apt-get (rc {r.returncode}): {r.stderr[-500:]}")
    pytest.skip("chromium/chromedriver are not installed and cannot be (needs apt-get as root)")


class Page(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


def serve_page() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = chromium_paths()
    os.environ["SE_AVOID_STATS"] = "true"  # no network calls from Selenium itself
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages():
    allowed, other = serve_page(), serve_page()
    yield f"http://127.0.0.1:{allowed.server_address[1]}", f"http://127.0.0.1:{other.server_address[1]}"
    allowed.shutdown()
    other.shutdown()


@pytest.fixture(scope="module")
def cors_api(tmp_path_factory, pages):
    """A REST API with GET/PUT /items (MOCK), CORS enabled by the CLI for the allowed page's origin."""
    allowed_origin, _ = pages
    l = launch_standalone(tmp_path_factory.mktemp("cors-standalone"), "cors-standalone")
    data_port = l.proc.argv[l.proc.argv.index("--data-plane-port") + 1]
    c = make_client(l.mgmt_url, Tenant("dev", DEV_ACCOUNT, "test", "test"))
    api = c.create_rest_api(name="cors-browser")
    root = c.get_resources(restApiId=api["id"])["items"][0]["id"]
    items = c.create_resource(restApiId=api["id"], parentId=root, pathPart="items")["id"]
    for method, body in (("GET", '{"items": [1, 2]}'), ("PUT", '{"saved": true}')):
        c.put_method(restApiId=api["id"], resourceId=items, httpMethod=method, authorizationType="NONE")
        c.put_method_response(restApiId=api["id"], resourceId=items, httpMethod=method, statusCode="200")
        c.put_integration(restApiId=api["id"], resourceId=items, httpMethod=method, type="MOCK",
                          requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
        c.put_integration_response(restApiId=api["id"], resourceId=items, httpMethod=method, statusCode="200",
                                   responseTemplates={"application/json": body})  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("APIGW_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
    argv = [APIGW_BIN, "cors", "enable", "--endpoint", l.mgmt_url, "--api", api["id"], "--resource", "/items",
            "--origins", allowed_origin, "--headers", "Content-Type,X-Custom", "--allow-credentials"]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, f"{argv}\n{r.stdout}\n{r.stderr}"
    report = json.loads(r.stdout)
    assert sorted(report["decoratedMethods"]) == ["GET /items", "PUT /items"], report
    assert report["allowMethods"] == "GET,PUT,OPTIONS", report
    assert report["gatewayResponses"] == ["DEFAULT_4XX", "DEFAULT_5XX"], report
    # A second resource allowing two origins, one of them the allowed page's.
    multi = c.create_resource(restApiId=api["id"], parentId=root, pathPart="multi")["id"]
    c.put_method(restApiId=api["id"], resourceId=multi, httpMethod="PUT", authorizationType="NONE")
    c.put_method_response(restApiId=api["id"], resourceId=multi, httpMethod="PUT", statusCode="200")
    c.put_integration(restApiId=api["id"], resourceId=multi, httpMethod="PUT", type="MOCK",
                      requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
    c.put_integration_response(restApiId=api["id"], resourceId=multi, httpMethod="PUT", statusCode="200",
                               responseTemplates={"application/json": '{"multi": true}'})  # fmt: skip
    argv = [APIGW_BIN, "cors", "enable", "--endpoint", l.mgmt_url, "--api", api["id"], "--resource", "/multi",
            "--origins", f"https://elsewhere.example,{allowed_origin}", "--no-gateway-responses"]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, f"{argv}\n{r.stdout}\n{r.stderr}"
    c.create_deployment(restApiId=api["id"], stageName="prod")
    base = f"http://127.0.0.1:{data_port}/restapis/{api['id']}/prod/_user_request_"
    deadline = time.monotonic() + PROPAGATION_TIMEOUT
    import requests

    while requests.get(f"{base}/items", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, f"API not served\n{l.proc.logs()}"
        time.sleep(0.1)  # propagation polling
    yield base
    shutdown(l)


FETCH = """
const [url, init, done] = arguments;
fetch(url, init).then(
  async (r) => done({status: r.status, body: await r.text()}),
  (e) => done({error: e.name + ': ' + e.message}));
"""


def browser_fetch(driver, page: str, url: str, init: dict | None = None) -> dict:
    if driver.current_url.rstrip("/") != page:
        driver.get(page + "/")
    return driver.execute_async_script(FETCH, url, init or {})


def test_simple_get_is_readable_from_the_allowed_origin(browser, pages, cors_api):
    allowed, _ = pages
    r = browser_fetch(browser, allowed, f"{cors_api}/items")
    assert r.get("status") == 200, r
    assert json.loads(r["body"]) == {"items": [1, 2]}


def test_preflighted_put_with_a_custom_header(browser, pages, cors_api):
    allowed, _ = pages
    init = {"method": "PUT", "headers": {"Content-Type": "application/json", "X-Custom": "1"}, "body": "{}"}
    r = browser_fetch(browser, allowed, f"{cors_api}/items", init)
    assert r.get("status") == 200, r
    assert json.loads(r["body"]) == {"saved": True}
    # A header the preflight does not allow: the browser refuses to send the request.
    init["headers"] = {"X-Not-Allowed": "1"}
    r = browser_fetch(browser, allowed, f"{cors_api}/items", init)
    assert r.get("error", "").startswith("TypeError"), r
    # A method the preflight does not allow.
    r = browser_fetch(browser, allowed, f"{cors_api}/items", {"method": "DELETE"})
    assert r.get("error", "").startswith("TypeError"), r


def test_credentialed_request(browser, pages, cors_api):
    allowed, _ = pages
    r = browser_fetch(browser, allowed, f"{cors_api}/items", {"credentials": "include"})
    assert r.get("status") == 200, r


def test_error_response_still_carries_cors_headers(browser, pages, cors_api):
    allowed, _ = pages
    # No such resource: API Gateway answers itself (a DEFAULT_4XX-class gateway response).
    r = browser_fetch(browser, allowed, f"{cors_api}/missing")
    assert r.get("status") == 403, r
    assert "Missing Authentication Token" in r["body"], r


def test_an_origin_that_is_not_allowed_is_refused(browser, pages, cors_api):
    _, other = pages
    r = browser_fetch(browser, other, f"{cors_api}/items")
    assert r.get("error", "").startswith("TypeError"), r
    r = browser_fetch(browser, other, f"{cors_api}/items", {"credentials": "include"})
    assert r.get("error", "").startswith("TypeError"), r


def test_one_of_several_allowed_origins(browser, pages, cors_api):
    allowed, other = pages
    # The preflight echoes the request's Origin when it is on the list.
    r = browser_fetch(browser, allowed, f"{cors_api}/multi", {"method": "PUT", "body": "{}"})
    assert r.get("status") == 200, r
    assert json.loads(r["body"]) == {"multi": True}
    r = browser_fetch(browser, other, f"{cors_api}/multi", {"method": "PUT", "body": "{}"})
    assert r.get("error", "").startswith("TypeError"), r
