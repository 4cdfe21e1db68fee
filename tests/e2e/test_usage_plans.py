"""API keys, usage plans, quotas and throttles end to end, with real Redis.

A control plane on Postgres and three `apigw data-plane` nodes share one Redis database (a random
DB number per run; every key is also scoped by the run's fresh tenant). Requests go round-robin
through the nodes, so every limit asserted here is a region-wide one. The Redis-outage case runs
its own private `redis-server`, and the management rate limit and in-process buckets run on a
standalone gateway.
"""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
import subprocess
import time
from itertools import cycle

import pytest
import requests

from conftest import (
    APIGW_BIN,
    PG_HOST,
    PG_PORT,
    PG_USER,
    ServerProcess,
    add_mock_method,
    create_database,
    drop_database,
    free_port,
    make_client,
    provision_tenant,
    run_aws_cli,
    uid,
)

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PROPAGATION_TIMEOUT = 15.0
DAY = 86_400


def redis_cli(port: int, db: int, *args: str) -> str:
    r = subprocess.run(
        ["redis-cli", "-h", REDIS_HOST, "-p", str(port), "-n", str(db), *args],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def redis_ping(port: int) -> bool:
    r = subprocess.run(["redis-cli", "-h", REDIS_HOST, "-p", str(port), "PING"], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "PONG"


def wait_for(check, what: str, timeout: float = PROPAGATION_TIMEOUT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last is not None and last is not False:
                return last
        except requests.RequestException as e:
            last = e
        time.sleep(0.1)  # propagation polling
    raise AssertionError(f"{what}: not true after {timeout}s (last: {last!r})")


class Node:
    """One `apigw data-plane` process; `extra` are its throttle flags."""

    def __init__(self, name: str, base, grpc_url: str, extra: list[str]):
        self.name = name
        self.port = free_port()
        self.metrics_port = free_port()
        self.base = base
        self.grpc_url = grpc_url
        self.extra = extra
        self.proc = ServerProcess(name, self.argv(), base / "logs", self.metrics_port, cwd=base)

    def argv(self) -> list[str]:
        return [
            APIGW_BIN, "data-plane",
            "--control-plane", self.grpc_url,
            "--node-id", self.name,
            "--region", "us-east-1",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--metrics-port", str(self.metrics_port),
            "--state-dir", str(self.base / self.name),
            "--proxy-workers", "2",  # a Redis connection shared across worker runtimes
            *self.extra,
        ]  # fmt: skip

    def restart(self, extra: list[str]) -> None:
        self.proc.stop()
        self.extra = extra
        self.proc.argv = self.argv()
        self.proc.start()
        self.proc.wait_ready()

    def call(self, api_id: str, stage: str, path: str, key: str | None = None) -> requests.Response:
        headers = {"x-api-key": key} if key is not None else {}
        url = f"http://127.0.0.1:{self.port}/restapis/{api_id}/{stage}/_user_request_{path}"
        return requests.get(url, headers=headers, timeout=30)

    def metric(self, name: str) -> float:
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        assert m, f"{name} not in metrics:\n{text}"
        return float(m.group(1))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("usage")
    db = random.randint(1, 15)
    redis_url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    database, url = create_database()
    mgmt_port, grpc_port = free_port(), free_port()
    admin_token = secrets.token_hex(32)
    cp = ServerProcess(
        "control-plane",
        [
            APIGW_BIN, "control-plane",
            "--database-url", url,
            "--master-key", base64.b64encode(secrets.token_bytes(32)).decode(),
            "--bootstrap-admin-token", admin_token,
            "--host", "127.0.0.1",
            "--management-port", str(mgmt_port),
            "--grpc-port", str(grpc_port),
            "--redis-url", redis_url,
            "--usage-persist-seconds", "1",
        ],
        base / "logs",
        mgmt_port,
        cwd=base,
    )  # fmt: skip
    grpc_url = f"http://127.0.0.1:{grpc_port}"
    node_flags = ["--redis-url", redis_url, "--throttle-node-share", "3"]
    nodes = [Node(f"node-{i}", base, grpc_url, node_flags) for i in (1, 2, 3)]
    try:
        cp.start()
        cp.wait_ready()
        for n in nodes:
            n.proc.start()
        for n in nodes:
            n.proc.wait_ready()
        tenant = provision_tenant(grpc_url, admin_token, "usage")
        yield {
            "nodes": nodes,
            "node_flags": node_flags,
            "client": make_client(f"http://127.0.0.1:{mgmt_port}", tenant),
            "mgmt_url": f"http://127.0.0.1:{mgmt_port}",
            "tenant": tenant,
            "db": db,
            "database": database,
        }
    finally:
        for n in nodes:
            n.proc.stop()
        cp.stop()
        drop_database(database)


def keyed_api(client, *, paths=("pets",), key_required=True, stage="prod") -> dict:
    """An API with a MOCK GET per path (API key required), deployed to `stage`."""
    api = client.create_rest_api(name=uid("usage"))
    ids = {}
    for p in paths:
        r = client.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart=p)
        add_mock_method(client, api["id"], r["id"], "GET", apiKeyRequired=key_required)
        ids[p] = r["id"]
    client.create_deployment(restApiId=api["id"], stageName=stage)
    return {"id": api["id"], "resources": ids}


def new_key(client, enabled=True) -> dict:
    return client.create_api_key(name=uid("key"), enabled=enabled)


def plan_with_key(client, api_id: str, key_id: str, stage="prod", **plan_kw) -> dict:
    """A plan for `api_id:stage` holding the key and a probe key (`plan["probe"]`): the probe has
    its own bucket and quota, so waiting on it to be admitted costs the key nothing."""
    plan = client.create_usage_plan(name=uid("plan"), apiStages=[{"apiId": api_id, "stage": stage}], **plan_kw)
    client.create_usage_plan_key(usagePlanId=plan["id"], keyId=key_id, keyType="API_KEY")
    probe = new_key(client)
    client.create_usage_plan_key(usagePlanId=plan["id"], keyId=probe["id"], keyType="API_KEY")
    plan["probe"] = probe["value"]
    plan["probe_id"] = probe["id"]
    return plan


def wait_plan_on(nodes, api_id: str, plan: dict, path="/pets"):
    for n in nodes:
        wait_for(lambda: n.call(api_id, "prod", path, plan["probe"]).status_code == 200, f"plan on {n.name}")


def round_robin(nodes, n: int, call) -> list[requests.Response]:
    it = cycle(nodes)
    return [call(next(it)) for _ in range(n)]


def assert_forbidden(r: requests.Response):
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.json() == {"message": "Forbidden"}
    assert r.headers.get("x-amzn-ErrorType") == "ForbiddenException"


def test_api_keys_required_missing_invalid_disabled_and_unplanned(cluster):
    c, nodes = cluster["client"], cluster["nodes"]
    api = keyed_api(c)
    key = new_key(c)
    plan_with_key(c, api["id"], key["id"], throttle={"rateLimit": 1000.0, "burstLimit": 1000})
    for n in nodes:
        wait_for(lambda: n.call(api["id"], "prod", "/pets", key["value"]).status_code == 200, f"key admitted on {n.name}")
    assert nodes[0].call(api["id"], "prod", "/pets", key["value"]).json() == {"ok": True}
    assert_forbidden(nodes[0].call(api["id"], "prod", "/pets"))
    assert_forbidden(nodes[1].call(api["id"], "prod", "/pets", "x" * 30))
    # A valid key of the tenant that is in no plan for this stage.
    loose = new_key(c)
    assert_forbidden(nodes[2].call(api["id"], "prod", "/pets", loose["value"]))
    # Disabling the key reaches every node.
    c.update_api_key(apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}])
    for n in nodes:
        wait_for(lambda: n.call(api["id"], "prod", "/pets", key["value"]).status_code == 403, f"disabled on {n.name}")
    c.update_api_key(apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}])
    for n in nodes:
        wait_for(lambda: n.call(api["id"], "prod", "/pets", key["value"]).status_code == 200, f"enabled on {n.name}")
    # Deleting it does too.
    c.delete_api_key(apiKey=key["id"])
    for n in nodes:
        wait_for(lambda: n.call(api["id"], "prod", "/pets", key["value"]).status_code == 403, f"deleted on {n.name}")


def test_method_without_key_requirement_ignores_keys(cluster):
    c, nodes = cluster["client"], cluster["nodes"]
    api = keyed_api(c, key_required=False)
    for n in nodes:
        wait_for(lambda: n.call(api["id"], "prod", "/pets").status_code == 200, f"open method on {n.name}")
    assert nodes[1].call(api["id"], "prod", "/pets", "not-a-key-at-all-000000").status_code == 200


def test_plan_throttle_with_per_method_override_is_region_wide(cluster):
    c, nodes = cluster["client"], cluster["nodes"]
    api = keyed_api(c, paths=("slow", "fast"))
    key = new_key(c)
    # The override comes with the plan, so no node ever knows the key without it.
    override = {"/fast/GET": {"rateLimit": 1000.0, "burstLimit": 400}}
    plan = c.create_usage_plan(
        name=uid("plan"),
        apiStages=[{"apiId": api["id"], "stage": "prod", "throttle": override}],
        throttle={"rateLimit": 0.1, "burstLimit": 3},
    )
    probe = new_key(c)
    for k in (key, probe):
        c.create_usage_plan_key(usagePlanId=plan["id"], keyId=k["id"], keyType="API_KEY")
    plan["probe"] = probe["value"]
    # The patch paths AWS documents, `~1` or plain slashes in the resource path.
    c.update_usage_plan(
        usagePlanId=plan["id"],
        patchOperations=[
            {"op": "replace", "path": f"/apiStages/{api['id']}:prod/throttle/~1fast/GET/rateLimit", "value": "2000"},
            {"op": "replace", "path": f"/apiStages/{api['id']}:prod/throttle/fast/GET/burstLimit", "value": "500"},
        ],
    )
    got = c.get_usage_plan(usagePlanId=plan["id"])
    assert got["apiStages"][0]["throttle"] == {"/fast/GET": {"burstLimit": 500, "rateLimit": 2000.0}}
    wait_plan_on(nodes, api["id"], plan, "/fast")
    fast = round_robin(nodes, 30, lambda n: n.call(api["id"], "prod", "/fast", key["value"]))
    assert [r.status_code for r in fast] == [200] * 30
    # The plan's own bucket: burst 3 across all nodes together, then 429 THROTTLED.
    slow = round_robin(nodes, 9, lambda n: n.call(api["id"], "prod", "/slow", key["value"]))
    codes = [r.status_code for r in slow]
    assert codes.count(200) == 3, codes
    assert codes[:3] == [200] * 3
    refused = [r for r in slow if r.status_code == 429]
    assert refused[0].json() == {"message": "Too Many Requests"}
    assert refused[0].headers.get("x-amzn-ErrorType") == "TooManyRequestsException"


def test_stage_method_settings_throttle_every_node_together(cluster):
    c, nodes = cluster["client"], cluster["nodes"]
    api = keyed_api(c, paths=("pets", "toys", "probe"), key_required=False)
    # `~1pets/GET` is stored as AWS stores it; `*/*` covers the other methods.
    c.update_stage(
        restApiId=api["id"],
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/~1pets/GET/throttling/burstLimit", "value": "4"},
            {"op": "replace", "path": "/~1pets/GET/throttling/rateLimit", "value": "0.1"},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "6"},
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "0.1"},
            # A method with burst 0 refuses everything: it shows the settings arrived.
            {"op": "replace", "path": "/probe/GET/throttling/burstLimit", "value": "0"},
        ],
    )
    for n in nodes:
        wait_for(lambda: n.call(api["id"], "prod", "/probe").status_code == 429, f"settings on {n.name}")
    pets = round_robin(nodes, 12, lambda n: n.call(api["id"], "prod", "/pets"))
    assert [r.status_code for r in pets].count(200) == 4, [r.status_code for r in pets]
    toys = round_robin(nodes, 12, lambda n: n.call(api["id"], "prod", "/toys"))
    assert [r.status_code for r in toys].count(200) == 6, [r.status_code for r in toys]


def usage_of(c, plan_id: str, key_id: str, start: str, end: str) -> list:
    r = c.get_usage(usagePlanId=plan_id, keyId=key_id, startDate=start, endDate=end)
    assert r["usagePlanId"] == plan_id
    return r["items"].get(key_id, [])


def test_quota_usage_update_and_period_boundary(cluster):
    c, nodes = cluster["client"], cluster["nodes"]
    api = keyed_api(c)
    key = new_key(c)
    plan = plan_with_key(
        c, api["id"], key["id"],
        throttle={"rateLimit": 1000.0, "burstLimit": 1000},
        quota={"limit": 5, "offset": 0, "period": "DAY"},
    )  # fmt: skip
    wait_plan_on(nodes, api["id"], plan)
    answers = round_robin(nodes, 8, lambda n: n.call(api["id"], "prod", "/pets", key["value"]))
    codes = [r.status_code for r in answers]
    assert codes == [200] * 5 + [429] * 3, codes
    assert answers[-1].json() == {"message": "Limit Exceeded"}
    assert answers[-1].headers.get("x-amzn-ErrorType") == "LimitExceededException"

    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert usage_of(c, plan["id"], key["id"], today, today) == [[5, 0]]

    # UpdateUsage grants two more for this period; usage keeps counting what was admitted.
    granted = c.update_usage(
        usagePlanId=plan["id"],
        keyId=key["id"],
        patchOperations=[{"op": "replace", "path": f"/keys/{key['id']}/remaining", "value": "2"}],
    )
    assert granted["items"] == {key["id"]: [[5, 2]]}
    more = round_robin(nodes, 4, lambda n: n.call(api["id"], "prod", "/pets", key["value"]))
    assert [r.status_code for r in more] == [200, 200, 429, 429]
    assert usage_of(c, plan["id"], key["id"], today, today) == [[7, 0]]

    # Across the period boundary (a node whose clock is a day ahead) the quota starts over.
    node = nodes[0]
    node.restart(cluster["node_flags"] + ["--usage-clock-offset-seconds", str(DAY)])
    try:
        wait_for(lambda: node.call(api["id"], "prod", "/pets", key["value"]).status_code == 200, "next day")
        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + DAY))
        assert usage_of(c, plan["id"], key["id"], today, tomorrow) == [[7, 0], [1, 4]]
    finally:
        node.restart(cluster["node_flags"])

    # GetUsage survives Redis losing the counters: what it read was persisted.
    tag = "{" + cluster["tenant"].account_id + "}"
    for k in redis_cli(REDIS_PORT, cluster["db"], "--scan", "--pattern", f"{tag}:*:u:*").split():
        redis_cli(REDIS_PORT, cluster["db"], "DEL", k)
    assert usage_of(c, plan["id"], key["id"], today, tomorrow) == [[7, 0], [1, 4]]


def test_quota_offset_reduces_the_first_period(cluster):
    """AWS's `offset`: requests subtracted from the limit in the plan's first period."""
    c, nodes = cluster["client"], cluster["nodes"]
    api = keyed_api(c)
    key = new_key(c)
    plan = plan_with_key(
        c, api["id"], key["id"],
        throttle={"rateLimit": 1000.0, "burstLimit": 1000},
        quota={"limit": 5, "offset": 2, "period": "DAY"},
    )  # fmt: skip
    wait_plan_on(nodes, api["id"], plan)
    answers = round_robin(nodes, 5, lambda n: n.call(api["id"], "prod", "/pets", key["value"]))
    assert [r.status_code for r in answers] == [200] * 3 + [429] * 2
    assert answers[-1].json() == {"message": "Limit Exceeded"}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert usage_of(c, plan["id"], key["id"], today, today) == [[3, 0]]


def persisted_usage(database: str, key_id: str) -> int | None:
    r = subprocess.run(
        ["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", database, "-tA", "-c",
         f"SELECT COALESCE(SUM(used), -1) FROM usage_daily WHERE key_id = '{key_id}'"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    used = int(r.stdout.strip())
    return None if used < 0 else used


def test_control_plane_persists_usage_by_itself(cluster):
    """Nobody asks for usage; the control plane still copies the counters (every second here),
    so GetUsage answers after Redis lost them."""
    c, nodes = cluster["client"], cluster["nodes"]
    api = keyed_api(c)
    key = new_key(c)
    plan = plan_with_key(c, api["id"], key["id"], quota={"limit": 10, "offset": 0, "period": "MONTH"})
    wait_plan_on(nodes, api["id"], plan)
    codes = [r.status_code for r in round_robin(nodes, 4, lambda n: n.call(api["id"], "prod", "/pets", key["value"]))]
    assert codes == [200] * 4
    wait_for(lambda: persisted_usage(cluster["database"], key["id"]) == 4, "usage persisted")
    tag = "{" + cluster["tenant"].account_id + "}"
    for k in redis_cli(REDIS_PORT, cluster["db"], "--scan", "--pattern", f"{tag}:*:u:*:{key['id']}:*").split():
        redis_cli(REDIS_PORT, cluster["db"], "DEL", k)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert usage_of(c, plan["id"], key["id"], today, today)[0][0] == 4


def test_three_nodes_share_one_budget(cluster):
    c, nodes = cluster["client"], cluster["nodes"]
    api = keyed_api(c)
    key = new_key(c)
    plan = plan_with_key(c, api["id"], key["id"], throttle={"rateLimit": 2.0, "burstLimit": 10})
    wait_plan_on(nodes, api["id"], plan)
    started = time.monotonic()
    answers = round_robin(nodes, 45, lambda n: n.call(api["id"], "prod", "/pets", key["value"]))
    elapsed = time.monotonic() - started
    admitted = sum(r.status_code == 200 for r in answers)
    # One bucket for all three nodes: the burst plus what refilled meanwhile, not three bursts.
    assert 10 <= admitted <= 10 + int(2.0 * elapsed) + 1, (admitted, elapsed)
    assert all(r.status_code in (200, 429) for r in answers)


def test_redis_outage_falls_back_per_setting_and_recovers(cluster, tmp_path):
    c = cluster["client"]
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nodes = []
    try:
        wait_for(lambda: redis_ping(port), "private redis up")
        url = f"redis://{REDIS_HOST}:{port}/0"
        common = ["--redis-url", url, "--throttle-node-share", "2", "--throttle-probe-ms", "200"]
        grpc = cluster["nodes"][0].grpc_url
        open_node = Node("open-node", tmp_path, grpc, common + ["--throttle-on-redis-failure", "open"])
        closed_node = Node("closed-node", tmp_path, grpc, common + ["--throttle-on-redis-failure", "closed"])
        nodes = [open_node, closed_node]
        for n in nodes:
            n.proc.start()
        for n in nodes:
            n.proc.wait_ready()
        api = keyed_api(c)
        key = new_key(c)
        plan = plan_with_key(c, api["id"], key["id"], throttle={"rateLimit": 0.1, "burstLimit": 4})
        wait_plan_on(nodes, api["id"], plan)
        codes = [n.call(api["id"], "prod", "/pets", key["value"]).status_code for n in nodes * 4]
        assert codes.count(200) == 4, codes  # one region-wide bucket through Redis
        assert open_node.metric("apigw_throttle_redis_up") == 1

        redis.terminate()
        redis.wait(timeout=10)
        # Fail-open: this node's share (burst 4 / 2 nodes) from local buckets; fail-closed: 429.
        open_codes = [open_node.call(api["id"], "prod", "/pets", key["value"]).status_code for _ in range(6)]
        assert open_codes == [200, 200, 429, 429, 429, 429], open_codes
        closed = closed_node.call(api["id"], "prod", "/pets", key["value"])
        assert closed.status_code == 429 and closed.json() == {"message": "Too Many Requests"}
        assert open_node.metric("apigw_throttle_redis_up") == 0
        assert open_node.metric("apigw_throttle_fallbacks_total") == 1
        assert open_node.metric("apigw_throttle_fallback_decisions_total") >= 6

        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: redis_ping(port), "private redis back")
        # Back to Redis by itself: a fresh Redis has a full region-wide bucket again.
        wait_for(lambda: closed_node.call(api["id"], "prod", "/pets", key["value"]).status_code == 200, "recovered")
        def open_node_back():
            open_node.call(api["id"], "prod", "/pets", plan["probe"])  # a request probes Redis
            return open_node.metric("apigw_throttle_redis_up") == 1

        wait_for(open_node_back, "open node back on redis")
    finally:
        for n in nodes:
            n.proc.stop()
        redis.terminate()
        redis.wait(timeout=10)


def test_cli_manages_keys_and_plans(cluster, tmp_path):
    t, url = cluster["tenant"], cluster["mgmt_url"]

    def cli(*args):
        r = run_aws_cli(url, t, *args)
        assert r.returncode == 0, str(r)
        return r.json

    api = keyed_api(cluster["client"])
    key = cli("create-api-key", "--name", "cli-key", "--value", "cli-key-value-0123456789", "--enabled")
    assert key["value"] == "cli-key-value-0123456789" and key["enabled"] is True
    got = cli("get-api-key", "--api-key", key["id"])
    assert "value" not in got
    got = cli("get-api-key", "--api-key", key["id"], "--include-value")
    assert got["value"] == "cli-key-value-0123456789"
    listed = cli("get-api-keys", "--name-query", "cli-", "--include-values")
    assert [k["value"] for k in listed["items"]] == ["cli-key-value-0123456789"]
    upd = cli("update-api-key", "--api-key", key["id"],
              "--patch-operations", "op=replace,path=/description,value=from-cli")  # fmt: skip
    assert upd["description"] == "from-cli"

    plan = cli("create-usage-plan", "--name", "cli-plan",
               "--throttle", "burstLimit=10,rateLimit=5",
               "--quota", "limit=100,offset=0,period=WEEK",
               "--api-stages", f"apiId={api['id']},stage=prod")  # fmt: skip
    assert plan["throttle"] == {"burstLimit": 10, "rateLimit": 5.0}
    assert plan["quota"] == {"limit": 100, "offset": 0, "period": "WEEK"}
    pk = cli("create-usage-plan-key", "--usage-plan-id", plan["id"], "--key-id", key["id"], "--key-type", "API_KEY")
    assert pk == {"id": key["id"], "type": "API_KEY", "value": "cli-key-value-0123456789", "name": "cli-key"}
    assert [k["id"] for k in cli("get-usage-plan-keys", "--usage-plan-id", plan["id"])["items"]] == [key["id"]]
    plans = cli("get-usage-plans", "--key-id", key["id"])
    assert [p["id"] for p in plans["items"]] == [plan["id"]]
    updated = cli("update-usage-plan", "--usage-plan-id", plan["id"], "--patch-operations",
                  "op=replace,path=/quota/limit,value=50", "op=replace,path=/throttle/rateLimit,value=7.5")  # fmt: skip
    assert updated["quota"]["limit"] == 50 and updated["throttle"]["rateLimit"] == 7.5
    usage = cli("get-usage", "--usage-plan-id", plan["id"], "--start-date", "2026-01-01", "--end-date", "2026-01-02")
    assert usage["items"] == {key["id"]: [[0, 50], [0, 50]]}

    csv = tmp_path / "keys.csv"
    csv.write_text(
        "Name,key,description,Enabled,usageplanIds\n"
        f"imp-a,imported-key-value-aaaaaaaa,first,true,{plan['id']}\n"
        "imp-b,imported-key-value-bbbbbbbb,second,false,\n"
    )
    imported = cli("import-api-keys", "--body", f"fileb://{csv}", "--format", "csv")
    assert len(imported["ids"]) == 2 and imported.get("warnings", []) == []
    keys = {k["name"]: k for k in cli("get-api-keys", "--name-query", "imp-")["items"]}
    assert keys["imp-a"]["enabled"] is True and keys["imp-b"]["enabled"] is False
    assert sorted(k["id"] for k in cli("get-usage-plan-keys", "--usage-plan-id", plan["id"])["items"]) == sorted(
        [key["id"], keys["imp-a"]["id"]]
    )

    # Errors in AWS's shapes.
    r = run_aws_cli(url, t, "get-usage-plan", "--usage-plan-id", "nope00")
    assert r.returncode != 0 and r.error_code() == "NotFoundException", str(r)
    r = run_aws_cli(url, t, "create-api-key", "--name", "short", "--value", "tooshort")
    assert r.error_code() == "BadRequestException" and "at least 20 characters" in r.stderr
    r = run_aws_cli(url, t, "update-api-key", "--api-key", key["id"], "--patch-operations", "op=replace,path=/id,value=x")
    assert r.error_code() == "BadRequestException" and "Must be one of: [/description, /enabled, /name, /customerId]" in r.stderr

    cli("delete-usage-plan-key", "--usage-plan-id", plan["id"], "--key-id", key["id"])
    cli("delete-usage-plan", "--usage-plan-id", plan["id"])
    cli("delete-api-key", "--api-key", key["id"])
    r = run_aws_cli(url, t, "get-api-key", "--api-key", key["id"])
    assert r.error_code() == "NotFoundException"


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """Standalone with in-process buckets and a tight management limit."""
    base = tmp_path_factory.mktemp("usage-standalone")
    data_port, mgmt_port, grpc_port = free_port(), free_port(), free_port()
    proc = ServerProcess(
        "standalone",
        [
            APIGW_BIN, "standalone",
            "--data-dir", str(base / "data"),
            "--host", "127.0.0.1",
            "--data-plane-port", str(data_port),
            "--management-port", str(mgmt_port),
            "--grpc-port", str(grpc_port),
            "--metrics-port", str(free_port()),
            "--management-rate-limit", "2",
            "--management-burst-limit", "25",
        ],
        base / "logs",
        mgmt_port,
        cwd=base,
    )  # fmt: skip
    proc.start()
    try:
        proc.wait_ready()
        from conftest import DEV_ACCOUNT, Tenant

        tenant = Tenant(name="dev", account_id=DEV_ACCOUNT, access_key="test", secret_key="test")
        yield {"client": make_client(f"http://127.0.0.1:{mgmt_port}", tenant), "port": data_port}
    finally:
        proc.stop()


def test_standalone_counts_usage_in_process_and_limits_management(standalone):
    c, port = standalone["client"], standalone["port"]
    api = keyed_api(c)
    key = new_key(c)
    plan = plan_with_key(c, api["id"], key["id"], quota={"limit": 3, "offset": 0, "period": "MONTH"})
    url = f"http://127.0.0.1:{port}/restapis/{api['id']}/prod/_user_request_/pets"
    wait_for(
        lambda: requests.get(url, headers={"x-api-key": plan["probe"]}, timeout=10).status_code == 200,
        "plan in the data plane",
    )
    codes = [requests.get(url, headers={"x-api-key": key["value"]}, timeout=10).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    r = c.get_usage(usagePlanId=plan["id"], startDate=today, endDate=today)
    # The probe key's one request counts for it alone.
    assert r["items"] == {key["id"]: [[3, 0]], plan["probe_id"]: [[1, 2]]}
    # The tenant's management bucket (burst 25, 2/s) runs dry under a quick loop.
    from botocore.exceptions import ClientError

    errors = []
    for _ in range(40):
        try:
            c.get_api_keys()
        except ClientError as e:
            errors.append(e.response)
    assert errors, "no management call was throttled"
    assert errors[0]["Error"]["Code"] == "TooManyRequestsException"
    assert errors[0]["ResponseMetadata"]["HTTPStatusCode"] == 429
