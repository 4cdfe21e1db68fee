#!/usr/bin/env python3
"""bench/config.py: how fast configuration reaches data-plane nodes, and what 10,000 deployed
stages cost a node in memory. See bench/README.md ("Configuration: propagation and memory").

Starts its own cluster: one `apigw control-plane` on a fresh Postgres database and N
`apigw data-plane` nodes (default 3), all on 127.0.0.1 with free ports, then

1. propagation: a REST API with a MOCK `GET /v` whose body names the deployment, stage `p`;
   UpdateStage (`/deploymentId`, alternating between deployments A and B) and CreateDeployment
   (stageName `p`, a fresh body each time), N times each; after each call returns, every node is
   polled concurrently until it answers the new body. Reports the time to the last node
   (p50/p90/p99/max) and per node.
2. memory: one real deployed stage, then (stages - 1) synthetic copies of its stored snapshot
   inserted straight into `config_resources` in one transaction, with one NOTIFY. Reports how
   long the nodes took to apply that version, and each node's RSS before and after.

Needs boto3 and requests (~/.cache/apigw-test-venv/bin/python has both), psql, and Postgres
(trust auth) on BENCH_PG_HOST:BENCH_PG_PORT as BENCH_PG_USER. Exit status 0 when everything was
measured (targets missed are reported, not failures), 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import queue
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

try:
    import boto3
    import requests
    from botocore.config import Config
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(
        f"bench/config.py: needs boto3 and requests ({e}); run it with ~/.cache/apigw-test-venv/bin/python "
        "(tests/run creates it) or pip install boto3 requests"
    )

REPO_DIR = Path(__file__).resolve().parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache/apigw-target")
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
STAGE = "p"
TARGET_MS = 500.0  # propagation: p99 to all nodes
TARGET_RSS_MB = 500.0  # memory: RSS per node with 10,000 stages

# The clients must never read the developer's own AWS configuration.
os.environ["AWS_CONFIG_FILE"] = "/dev/null"
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_API_GATEWAY"):
    os.environ.pop(_var, None)


def say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    print(f"bench/config: {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---- binary, machine, rev -----------------------------------------------------------------


def find_binary() -> tuple[str, str]:
    """(path, build): APIGW_BIN if set, else the release build, else the debug build."""
    explicit = os.environ.get("APIGW_BIN") or os.environ.get("BENCH_APIGW_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise BenchError(f"no executable apigw at {explicit} (APIGW_BIN)")
        build = "debug" if "/debug/" in explicit else ("release" if "/release/" in explicit else "given")
        return explicit, build
    release = TARGET_DIR / "release/apigw"
    if os.access(release, os.X_OK):
        return str(release), "release"
    debug = TARGET_DIR / "debug/apigw"
    if os.access(debug, os.X_OK):
        warn(f"no release binary at {release}; falling back to the DEBUG build {debug}")
        warn("numbers from a debug build are NOT results (cargo build --release, or set APIGW_BIN)")
        return str(debug), "debug"
    raise BenchError(f"no apigw binary at {release} or {debug} (cargo build --release, or set APIGW_BIN)")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}"


def git_rev() -> str:
    """The checkout's HEAD, read from .git without running git."""
    try:
        git = REPO_DIR / ".git"
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head[5:]
        common = git
        if (git / "commondir").exists():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).exists():
                return (base / ref).read_text().strip()[:7]
        packed = common / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0][:7]
        return f"unknown ({ref} has no commit)"
    except OSError:
        return "unknown"


# ---- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env() -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("APIGW_") and k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("AWS_")
    }
    env["RUST_LOG"] = os.environ.get("BENCH_APIGW_RUST_LOG", "warn")
    env["NO_COLOR"] = "1"
    return env


class Proc:
    def __init__(self, name: str, argv: list[str], log_dir: Path, health_port: int):
        self.name, self.argv, self.health_port = name, argv, health_port
        self.log = log_dir / f"{name}.log"
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=server_env()
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.popen.returncode} before it was ready (log: {self.log})")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name}: GET {url} not 200 after {timeout:.0f} s (log: {self.log})")

    def rss_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in kB."""
        rss = hwm = 0
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
        return rss, hwm

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def psql(sql: str, database: str, tuples: bool = False) -> str:
    argv = ["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-q"]
    if tuples:
        argv += ["-A", "-t"]
    r = subprocess.run(argv + ["-c", sql], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise BenchError(f"psql failed: {r.stderr.strip()}\nSQL: {sql[:500]}")
    return r.stdout.strip()


class Node:
    def __init__(self, bin_: str, name: str, grpc_url: str, tmp: Path):
        self.name = name
        self.port = free_port()
        self.metrics_port = free_port()
        argv = [
            bin_, "data-plane",
            "--control-plane", grpc_url,
            "--node-id", name,
            "--region", "us-east-1",
            "--endpoint-class", "public",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--metrics-port", str(self.metrics_port),
            "--state-dir", str(tmp / f"state-{name}"),
        ]  # fmt: skip
        self.proc = Proc(name, argv, tmp / "logs", self.metrics_port)

    def url(self, api_id: str, path: str, stage: str = STAGE) -> str:
        return f"http://127.0.0.1:{self.port}/restapis/{api_id}/{stage}/_user_request_{path}"

    def config_version(self, session: requests.Session | None = None) -> int:
        get = (session or requests).get
        text = get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith("apigw_config_version"):
                return int(float(line.split()[-1]))
        return -1


class Cluster:
    def __init__(self, bin_: str, nodes: int, tmp: Path):
        self.bin, self.tmp = bin_, tmp
        (tmp / "logs").mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.database: str | None = None
        self.n_nodes = nodes
        self.nodes: list[Node] = []

    def start(self) -> None:
        self.database = f"apigw_bench_{uuid.uuid4().hex[:12]}"
        psql(f"CREATE DATABASE {self.database}", "postgres")
        mgmt, grpc = free_port(), free_port()
        self.admin_token = secrets.token_hex(32)
        say(f"control plane on database {self.database} (management :{mgmt}, gRPC :{grpc})")
        cp = Proc(
            "control-plane",
            [
                self.bin, "control-plane",
                "--database-url", f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}",
                "--master-key", base64.b64encode(secrets.token_bytes(32)).decode(),
                "--bootstrap-admin-token", self.admin_token,
                "--host", "127.0.0.1",
                "--management-port", str(mgmt),
                "--grpc-port", str(grpc),
            ],  # fmt: skip
            self.tmp / "logs",
            mgmt,
        )
        self.procs.append(cp)
        self.cp = cp
        cp.wait_ready()
        self.mgmt_url = f"http://127.0.0.1:{mgmt}"
        self.grpc_url = f"http://127.0.0.1:{grpc}"
        for i in range(1, self.n_nodes + 1):
            n = Node(self.bin, f"n{i}", self.grpc_url, self.tmp)
            self.procs.append(n.proc)
            self.nodes.append(n)
        for n in self.nodes:
            n.proc.wait_ready()
        say(f"{len(self.nodes)} data-plane nodes up: " + ", ".join(f"{n.name} :{n.port}" for n in self.nodes))
        tenant = self.admin("tenant", "create", "--name", "bench")
        key = self.admin("key", "create", "--tenant", tenant["accountId"])
        self.account_id = tenant["accountId"]
        self.client = boto3.session.Session().client(
            "apigateway",
            endpoint_url=self.mgmt_url,
            region_name="us-east-1",
            aws_access_key_id=key["accessKeyId"],
            aws_secret_access_key=key["secretAccessKey"],
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=120),
        )

    def admin(self, *args: str) -> dict:
        r = subprocess.run(
            [self.bin, "admin", "--control-plane", self.grpc_url, "--admin-token", self.admin_token, *args],
            capture_output=True, text=True, timeout=60, env=server_env(),
        )  # fmt: skip
        if r.returncode != 0:
            raise BenchError(f"apigw admin {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def stop(self) -> None:
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                warn(f"stopping {p.name}: {e}")
        if self.database:
            try:
                psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)", "postgres")
            except BenchError as e:
                warn(f"could not drop database {self.database}: {e}")


# ---- API helpers --------------------------------------------------------------------------


def mock_get(c, api_id: str, resource_id: str, body: str) -> None:
    c.put_method(restApiId=api_id, resourceId=resource_id, httpMethod="GET", authorizationType="NONE")
    c.put_integration(restApiId=api_id, resourceId=resource_id, httpMethod="GET", type="MOCK",
                      requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
    c.put_method_response(restApiId=api_id, resourceId=resource_id, httpMethod="GET", statusCode="200")
    set_body(c, api_id, resource_id, body)


def set_body(c, api_id: str, resource_id: str, body: str) -> None:
    c.put_integration_response(restApiId=api_id, resourceId=resource_id, httpMethod="GET", statusCode="200",
                               responseTemplates={"application/json": body})  # fmt: skip


def wait_all_serve(nodes: list[Node], api_id: str, path: str, body: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for n in nodes:
        last = None
        while True:
            try:
                r = requests.get(n.url(api_id, path), timeout=5)
                last = f"HTTP {r.status_code} {r.text[:100]!r}"
                if r.status_code == 200 and r.text == body:
                    break
            except requests.RequestException as e:
                last = repr(e)
            if time.monotonic() > deadline:
                raise BenchError(f"{n.name} does not serve {body!r} on {api_id}{path} after {timeout:.0f} s (last: {last})")
            time.sleep(0.05)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


# ---- 1. propagation -----------------------------------------------------------------------


class Poller(threading.Thread):
    """Polls one node for a wanted body whenever the main thread hands it (body, t0)."""

    def __init__(self, node: Node, api_id: str, interval: float, timeout: float, results: queue.Queue):
        super().__init__(daemon=True)
        self.node, self.interval, self.timeout, self.results = node, interval, timeout, results
        self.url = node.url(api_id, "/v")
        self.jobs: queue.Queue = queue.Queue()
        self.session = requests.Session()

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            want, t0 = job
            seen = None
            polls = 0
            while True:
                try:
                    r = self.session.get(self.url, timeout=5)
                    now = time.monotonic()
                    polls += 1
                    if r.status_code == 200 and r.text == want:
                        seen = now - t0
                        break
                except requests.RequestException:
                    now = time.monotonic()
                if now - t0 > self.timeout:
                    break
                time.sleep(self.interval)
            self.results.put((self.node.name, seen, polls))


def propagation(cl: Cluster, updates: int, interval: float, timeout: float) -> dict:
    c = cl.client
    api = c.create_rest_api(name="bench-propagation")
    api_id = api["id"]
    res = c.create_resource(restApiId=api_id, parentId=api["rootResourceId"], pathPart="v")
    mock_get(c, api_id, res["id"], "A")
    dep_a = c.create_deployment(restApiId=api_id, stageName=STAGE)["id"]
    set_body(c, api_id, res["id"], "B")
    dep_b = c.create_deployment(restApiId=api_id)["id"]
    wait_all_serve(cl.nodes, api_id, "/v", "A")
    say(f"propagation: API {api_id}, deployments A={dep_a} B={dep_b}, stage {STAGE}; {updates} updates of each kind")

    results: queue.Queue = queue.Queue()
    pollers = [Poller(n, api_id, interval, timeout, results) for n in cl.nodes]
    for p in pollers:
        p.start()

    state = {"current": "A"}

    def flip(_i: int) -> str:
        nxt = "B" if state["current"] == "A" else "A"
        c.update_stage(restApiId=api_id, stageName=STAGE,
                       patchOperations=[{"op": "replace", "path": "/deploymentId", "value": dep_a if nxt == "A" else dep_b}])  # fmt: skip
        state["current"] = nxt
        return nxt

    def deploy(i: int) -> str:
        body = f"deployment-{i + 1}"
        set_body(c, api_id, res["id"], body)  # edits the API only: nothing reaches the nodes
        c.create_deployment(restApiId=api_id, stageName=STAGE)
        return body

    # `change` issues the call and returns the body to wait for; t0 is taken right after it returns.
    out = []
    for kind, fn in (("UpdateStage /deploymentId", flip), ("CreateDeployment stageName", deploy)):
        say(f"propagation: {kind} x {updates}")
        out.append(measure_after(kind, fn, pollers, results, updates, timeout, cl))
    # The pollers stay up: main() measures UpdateStage again once the memory part loaded its stages.
    return {"api_id": api_id, "kinds": out, "pollers": pollers, "results": results, "flip": flip}


def propagation_loaded(cl: Cluster, prop: dict, stages: int, updates: int, timeout: float) -> None:
    kind = f"UpdateStage, {stages} stages"
    say(f"propagation with {stages} stages loaded: {kind} x {updates}")
    prop["kinds"].append(measure_after(kind, prop["flip"], prop["pollers"], prop["results"], updates, timeout, cl))


def stop_pollers(prop: dict | None) -> None:
    for p in (prop or {}).get("pollers", []):
        p.jobs.put(None)


def measure_after(kind, change, pollers, results, updates, timeout, cl) -> dict:
    lasts, per_node, timeouts, polls = [], {n.name: [] for n in cl.nodes}, 0, 0
    for i in range(updates):
        want = change(i)
        t0 = time.monotonic()
        for p in pollers:
            p.jobs.put((want, t0))
        secs = []
        for _ in pollers:
            name, seen, n_polls = results.get()
            polls += n_polls
            if seen is None:
                timeouts += 1
                continue
            per_node[name].append(seen * 1000)
            secs.append(seen * 1000)
        if len(secs) == len(pollers):
            lasts.append(max(secs))
        else:
            warn(f"{kind} #{i + 1}: not every node served {want!r} within {timeout:.0f} s")
        time.sleep(0.02)  # let the nodes settle between updates
    return {"kind": kind, "last": lasts, "per_node": per_node, "timeouts": timeouts, "polls": polls}


# ---- 2. memory ----------------------------------------------------------------------------


def memory(cl: Cluster, stages: int, timeout: float) -> dict:
    c = cl.client
    # One real API, a little richer than a single route so the snapshot is not trivially small.
    api = c.create_rest_api(name="bench-memory")
    api_id, root = api["id"], api["rootResourceId"]
    v = c.create_resource(restApiId=api_id, parentId=root, pathPart="v")
    mock_get(c, api_id, v["id"], '{"bench": "memory"}')
    items = c.create_resource(restApiId=api_id, parentId=root, pathPart="items")
    item = c.create_resource(restApiId=api_id, parentId=items["id"], pathPart="{id}")
    proxy = c.create_resource(restApiId=api_id, parentId=root, pathPart="{proxy+}")
    backend = "http://127.0.0.1:9"  # never called
    for rid, method, uri, params in (
        (items["id"], "GET", f"{backend}/items", {}),
        (items["id"], "POST", f"{backend}/items", {}),
        (item["id"], "GET", f"{backend}/items/{{id}}", {"integration.request.path.id": "method.request.path.id"}),
        (item["id"], "PUT", f"{backend}/items/{{id}}", {"integration.request.path.id": "method.request.path.id"}),
        (item["id"], "DELETE", f"{backend}/items/{{id}}", {"integration.request.path.id": "method.request.path.id"}),
        (proxy["id"], "ANY", f"{backend}/{{proxy}}", {"integration.request.path.proxy": "method.request.path.proxy"}),
    ):
        mparams = {f"method.request.path.{k.rsplit('.', 1)[1]}": True for k in params}
        c.put_method(restApiId=api_id, resourceId=rid, httpMethod=method, authorizationType="NONE",
                     requestParameters=mparams)  # fmt: skip
        c.put_integration(restApiId=api_id, resourceId=rid, httpMethod=method, type="HTTP_PROXY",
                          integrationHttpMethod=method, uri=uri, requestParameters=params)  # fmt: skip
    c.create_deployment(restApiId=api_id, stageName=STAGE)
    real_key = f"stage/{cl.account_id}/{api_id}/{STAGE}"
    deadline = time.monotonic() + 60
    for n in cl.nodes:
        while True:
            try:
                r = requests.get(n.url(api_id, "/v"), timeout=5)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{n.name} does not serve the real memory API {api_id}")
            time.sleep(0.05)
    real_body_text = r.text
    body_bytes = int(psql(f"SELECT length(body) FROM config_resources WHERE resource_key = '{real_key}'", cl.database, tuples=True) or 0)
    if not body_bytes:
        raise BenchError(f"no stored snapshot under {real_key}")
    routes = len(json.loads(psql(f"SELECT body FROM config_resources WHERE resource_key = '{real_key}'", cl.database, tuples=True))["deployment"]["routes"])

    time.sleep(1.0)  # let the nodes go idle before the baseline
    before = {n.name: n.proc.rss_kb() for n in cl.nodes}
    cp_before = cl.cp.rss_kb()
    v_before = {n.name: n.config_version() for n in cl.nodes}

    extra = stages - 1
    say(f"memory: real stage {real_key} ({routes} routes, snapshot {body_bytes} bytes); inserting {extra} synthetic copies")
    # api ids: 'bench' + 5 digits = 10 lowercase alphanumerics, like AWS's REST API ids.
    sql = f"""
WITH src AS (
    SELECT body::jsonb AS b, account_id, endpoint_type FROM config_resources WHERE resource_key = '{real_key}'
), v AS (
    UPDATE config_version SET version = version + {extra} WHERE id = 1 RETURNING version - {extra} AS base
)
INSERT INTO config_resources (resource_key, version, account_id, endpoint_type, body)
SELECT 'stage/' || src.account_id || '/' || a.api || '/{STAGE}', v.base + g, src.account_id, src.endpoint_type,
       jsonb_set(src.b, '{{deployment,apiId}}', to_jsonb(a.api))::text
FROM src, v, generate_series(1, {extra}) AS g,
     LATERAL (SELECT 'bench' || lpad(g::text, 5, '0') AS api) AS a;
SELECT pg_notify('apigw_config', 'bench');
"""
    t_sql = time.monotonic()
    psql(sql, cl.database)
    t0 = time.monotonic()  # committed: NOTIFY delivered from here
    insert_s = t0 - t_sql
    target = int(psql("SELECT version FROM config_version WHERE id = 1", cl.database, tuples=True))
    live = int(psql("SELECT count(*) FROM config_resources WHERE body IS NOT NULL", cl.database, tuples=True))

    applied: dict[str, float | None] = {}

    def wait(n: Node) -> None:
        s = requests.Session()
        while time.monotonic() - t0 < timeout:
            try:
                if n.config_version(s) >= target:
                    applied[n.name] = time.monotonic() - t0
                    return
            except requests.RequestException:
                pass
            time.sleep(0.01)
        applied[n.name] = None

    threads = [threading.Thread(target=wait, args=(n,), daemon=True) for n in cl.nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    missing = [k for k, v in applied.items() if v is None]
    if missing:
        raise BenchError(f"nodes {missing} did not reach config version {target} within {timeout:.0f} s")

    # Spot check: 3 random synthetic APIs answer, as themselves, through random nodes.
    checks = []
    for g in random.sample(range(1, extra + 1), min(3, extra)):
        sid = f"bench{g:05d}"
        n = random.choice(cl.nodes)
        r = requests.get(n.url(sid, "/v"), timeout=5)
        ok = r.status_code == 200 and r.text == real_body_text
        checks.append((sid, n.name, r.status_code, r.text[:80], ok))
    # Negative control: an api id that was not inserted is not served.
    n = random.choice(cl.nodes)
    r = requests.get(n.url(f"bench{extra + 1:05d}", "/v"), timeout=5)
    checks.append((f"bench{extra + 1:05d} (not inserted)", n.name, r.status_code, r.text[:80], r.status_code == 403))
    if not all(ch[4] for ch in checks):
        raise BenchError(f"spot check failed: {checks}")

    time.sleep(2.0)  # let allocators settle before reading RSS
    after = {n.name: n.proc.rss_kb() for n in cl.nodes}
    cp_after = cl.cp.rss_kb()
    return {
        "real_key": real_key,
        "routes": routes,
        "body_bytes": body_bytes,
        "stages": stages,
        "live": live,
        "insert_s": insert_s,
        "target": target,
        "v_before": v_before,
        "applied": applied,
        "before": before,
        "after": after,
        "cp_before": cp_before,
        "cp_after": cp_after,
        "checks": checks,
    }


# ---- report -------------------------------------------------------------------------------


def mb(kb: int) -> float:
    return kb / 1024.0


def report(info: dict, prop: dict | None, mem: dict | None, errors: list[str], md_path: str | None) -> None:
    lines, md = [], []
    lines += ["", f"machine:  {info['machine']}", f"apigw:    {info['apigw']}"]
    if info["build"] == "debug":
        lines.append("          DEBUG BUILD: the numbers below prove the benchmark works; they are NOT results")
    lines.append(f"cluster:  1 control plane (Postgres {PG_HOST}:{PG_PORT}) + {info['nodes']} data-plane nodes, one machine, loopback")
    md += [f"### Configuration propagation and memory ({info['build']} build)", ""]
    if info["build"] == "debug":
        md += ["**Debug build: these numbers prove the benchmark runs; they are not results.**", ""]

    if prop:
        lines += ["", f"propagation: management call returns -> every node serves the new body "
                  f"(n updates of each kind, polled every {info['interval_ms']:g} ms; target p99 < {TARGET_MS:.0f} ms to all nodes)", ""]
        hdr = f"{'change':<32} {'to':<9} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lost':>5}"
        lines.append(hdr)
        md += [f"Propagation (n updates of each kind, nodes polled every {info['interval_ms']:g} ms; "
               f"time from the management call's return until the node serves the new body):", "",
               "| change | to | n | p50 ms | p90 ms | p99 ms | max ms | not served |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for k in prop["kinds"]:
            rows = [("all nodes", k["last"])] + [(name, v) for name, v in k["per_node"].items()]
            for i, (who, vals) in enumerate(rows):
                label = k["kind"] if i == 0 else ""
                lost = str(k["timeouts"]) if i == 0 else ""
                if vals:
                    nums = [pct(vals, 50), pct(vals, 90), pct(vals, 99), max(vals)]
                    lines.append(f"{label:<32} {who:<9} {len(vals):>4} " + " ".join(f"{x:8.1f}" for x in nums) + f" {lost:>5}")
                    md.append(f"| {label} | {who} | {len(vals)} | " + " | ".join(f"{x:.1f}" for x in nums) + f" | {lost} |")
                else:
                    lines.append(f"{label:<32} {who:<9} {0:>4}   (nothing served)")
                    md.append(f"| {label} | {who} | 0 | - | - | - | - | {lost} |")
            if k["last"]:
                p99 = pct(k["last"], 99)
                verdict = "meets" if p99 < TARGET_MS and not k["timeouts"] else "MISSES"
                lines.append(f"{'':<32} -> p99 to all nodes {p99:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
        md.append("")

    if mem:
        lines += ["", f"memory: {mem['stages']} deployed stages per node (1 created through the API, "
                  f"{mem['stages'] - 1} synthetic copies inserted into config_resources; target < {TARGET_RSS_MB:.0f} MB RSS per node)",
                  "        the synthetic copies are streamed by the control plane exactly as API-created stages; "
                  "they are inserted because creating 10,000 stages through the management API takes ~50,000 calls",
                  f"        stage snapshot: {mem['routes']} routes, {mem['body_bytes']} bytes of JSON; live stage resources in the store: {mem['live']}",
                  f"        insert + NOTIFY ({mem['stages'] - 1} rows, one transaction): {mem['insert_s'] * 1000:.0f} ms; config version -> {mem['target']}",
                  ""]
        lines.append(f"{'process':<16} {'RSS before MB':>14} {'RSS after MB':>13} {'peak (HWM) MB':>14} {'applied in ms':>14}")
        md += [f"Memory with {mem['stages']} deployed stages ({mem['stages'] - 1} of them synthetic copies of one real stage "
               f"snapshot of {mem['routes']} routes / {mem['body_bytes']} bytes, inserted into `config_resources`; "
               "the control plane streams them exactly as API-created ones):", "",
               f"| process | RSS before MB | RSS after MB | peak (VmHWM) MB | {mem['stages']}-stage update applied in ms |",
               "|---|---:|---:|---:|---:|"]
        for name, (rss_b, _) in mem["before"].items():
            rss_a, hwm = mem["after"][name]
            ms = mem["applied"][name] * 1000
            lines.append(f"{'node ' + name:<16} {mb(rss_b):14.1f} {mb(rss_a):13.1f} {mb(hwm):14.1f} {ms:14.0f}")
            md.append(f"| node {name} | {mb(rss_b):.1f} | {mb(rss_a):.1f} | {mb(hwm):.1f} | {ms:.0f} |")
        cb, ca = mem["cp_before"], mem["cp_after"]
        lines.append(f"{'control plane':<16} {mb(cb[0]):14.1f} {mb(ca[0]):13.1f} {mb(ca[1]):14.1f} {'-':>14}")
        md.append(f"| control plane | {mb(cb[0]):.1f} | {mb(ca[0]):.1f} | {mb(ca[1]):.1f} | - |")
        worst = max(mb(v[0]) for v in mem["after"].values())
        verdict = "meets" if worst < TARGET_RSS_MB else "MISSES"
        lines.append(f"{'':<16} -> largest node RSS {worst:.1f} MB: {verdict} the {TARGET_RSS_MB:.0f} MB target")
        lines.append("        spot check: " + ", ".join(f"{sid} via {n}: HTTP {st} {body}" for sid, n, st, body, _ in mem["checks"]))
        md += ["", "- the synthetic stages are copies of the real stage's stored snapshot with their own API id "
               "(creating 10,000 stages through the management API takes ~50,000 calls)",
               "- applied in: from the insert's commit (with `pg_notify`) until the node's `apigw_config_version` reaches the new version"]

    if errors:
        lines += ["", *[f"FAILED: {e}" for e in errors]]
        md += ["", *[f"- FAILED: {e}" for e in errors]]
    md += [f"- machine: {info['machine']}", f"- apigw: {info['apigw']}", ""]
    print("\n".join(lines), flush=True)
    if md_path:
        with open(md_path, "a") as f:
            f.write("\n".join(md) + "\n")
        say(f"markdown appended to {md_path}")


def main() -> int:
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=int(env("BENCH_CONFIG_UPDATES", "50")), help="updates of each kind (50)")
    ap.add_argument("--loaded-updates", type=int, default=int(env("BENCH_CONFIG_LOADED_UPDATES", "10")),
                    help="UpdateStage flips again after the memory part loaded its stages (10; 0: skip)")
    ap.add_argument("--stages", type=int, default=int(env("BENCH_CONFIG_STAGES", "10000")), help="stages for the memory part (10000)")
    ap.add_argument("--nodes", type=int, default=int(env("BENCH_CONFIG_NODES", "3")), help="data-plane nodes (3)")
    ap.add_argument("--poll-ms", type=float, default=float(env("BENCH_CONFIG_POLL_MS", "2")), help="poll interval per node (2 ms)")
    ap.add_argument("--timeout", type=float, default=float(env("BENCH_CONFIG_TIMEOUT", "30")), help="seconds to wait for one change (30)")
    ap.add_argument("--only", choices=("propagation", "memory"), default=env("BENCH_CONFIG_ONLY") or None)
    ap.add_argument("--markdown-out", default=env("BENCH_MARKDOWN_OUT") or None, help="append markdown tables to this file")
    ap.add_argument("--keep-tmp", action="store_true", default=env("BENCH_KEEP_TMP") == "1")
    args = ap.parse_args()
    if not 2 <= args.stages <= 99999:
        ap.error("--stages must be between 2 and 99999 (synthetic api ids are 'bench' + 5 digits)")
    if not shutil.which("psql"):
        warn("needs psql on PATH (Debian/Ubuntu: apt-get install -y postgresql-client)")
        return 1

    try:
        bin_, build = find_binary()
    except BenchError as e:
        warn(str(e))
        return 1
    version = subprocess.run([bin_, "--version"], capture_output=True, text=True).stdout.strip() or "apigw"
    info = {
        "machine": machine(),
        "apigw": f"{version} (rev {git_rev()}, {build} build: {bin_})",
        "build": build,
        "nodes": args.nodes,
        "updates": args.updates,
        "interval_ms": args.poll_ms,
    }
    tmp = Path(tempfile.mkdtemp(prefix="apigw-bench-config."))
    cl = Cluster(bin_, args.nodes, tmp)
    prop = mem = None
    errors: list[str] = []
    failed = False

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        cl.start()
        if args.only in (None, "propagation"):
            try:
                prop = propagation(cl, args.updates, args.poll_ms / 1000.0, args.timeout)
            except (BenchError, Exception) as e:  # noqa: BLE001 - report and go on to memory
                errors.append(f"propagation: {e}")
        if args.only in (None, "memory"):
            try:
                mem = memory(cl, args.stages, max(args.timeout, 120.0))
            except (BenchError, Exception) as e:  # noqa: BLE001
                errors.append(f"memory: {e}")
        if prop and mem and args.loaded_updates > 0:
            try:
                propagation_loaded(cl, prop, mem["live"], args.loaded_updates, args.timeout)
            except (BenchError, Exception) as e:  # noqa: BLE001
                errors.append(f"propagation with {args.stages} stages: {e}")
    except BenchError as e:
        errors.append(str(e))
    except KeyboardInterrupt:
        errors.append("interrupted")
    finally:
        stop_pollers(prop)
        failed = bool(errors)
        dead = [p.name for p in cl.procs if p.popen.poll() is not None]
        if dead:
            errors.append(f"processes exited during the run: {', '.join(dead)}")
            failed = True
        cl.stop()
    report(info, prop, mem, errors, args.markdown_out)
    if failed or args.keep_tmp:
        warn(f"logs kept in {tmp}/logs")
        for p in cl.procs:
            if failed and p.log.exists():
                tail = p.log.read_bytes()[-3000:].decode("utf-8", "replace")
                if tail.strip():
                    print(f"----- {p.name} log (tail): {p.log}\n{tail}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
