#!/usr/bin/env python3
"""bench/throttle.py: region-wide throttling accuracy and the cost of the throttled path.

Starts a control plane on a fresh Postgres database and three `apigw data-plane` nodes sharing one
Redis (DB --redis-db, default 13; keys are scoped by a fresh tenant). Every route is a MOCK
integration, so the numbers are the gateway's own cost.

Accuracy: a usage plan of --rate rps / --burst burst (default 200 / 100) on an API key; one `wrk`
per node, all at once, far above the limit, for --duration seconds (default 20). Admitted =
2xx answers. The plan admits `burst + rate × duration` at most; the report gives the admitted
rate (excluding the initial burst) and its error against --rate.

Cost: on one node, the same MOCK method plain (no key, no limits) and throttled (API key + plan
+ stage method throttle, all far above the load), each a `wrk` run of --duration seconds; the
report gives throttled / plain requests per second (target ≥ 0.70).

Usage: bench/throttle.py [--rate R] [--burst B] [--duration S] [--connections C] [--markdown FILE]
Env: BENCH_APIGW_BIN (default: cargo build --release -p apigw), CARGO_TARGET_DIR,
     APIGW_E2E_PG_HOST/PORT/USER (Postgres, default 127.0.0.1:5432 postgres), REDIS_HOST/PORT.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = (os.environ.get("APIGW_E2E_PG_HOST", "127.0.0.1"), os.environ.get("APIGW_E2E_PG_PORT", "5432"),
      os.environ.get("APIGW_E2E_PG_USER", "postgres"))  # fmt: skip
REDIS = (os.environ.get("REDIS_HOST", "127.0.0.1"), int(os.environ.get("REDIS_PORT", "6379")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def apigw_bin() -> str:
    if os.environ.get("BENCH_APIGW_BIN"):
        return os.environ["BENCH_APIGW_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/apigw-target"))
    subprocess.run(["cargo", "build", "--release", "-p", "apigw"], cwd=ROOT, check=True)
    return f"{target}/release/apigw"


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", PG[0], "-p", PG[1], "-U", PG[2], "-d", "postgres", "-c", sql],
                   check=True, capture_output=True)  # fmt: skip


def wait_http(url: str, ok=lambda status: status == 200, timeout=60.0, headers=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if ok(r.status):
                    return
        except urllib.error.HTTPError as e:
            if ok(e.code):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def wrk(url: str, seconds: int, connections: int, key: str | None = None) -> tuple[int, int, float]:
    """(requests, non-2xx, req/s) of one wrk run."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    if key:
        argv[1:1] = ["-H", f"x-api-key: {key}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return total, int(m.group(1)) if m else 0, rps


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--redis-db", type=int, default=13)
    ap.add_argument("--markdown")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("needs wrk (apt-get install wrk)", file=sys.stderr)
        return 1
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    import boto3  # the venv's (tests/run creates it)
    from botocore.config import Config

    binary = apigw_bin()
    tmp = Path(tempfile.mkdtemp(prefix="apigw-throttle-bench-"))
    db = f"apigw_bench_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE DATABASE {db}")
    procs = []
    redis_url = f"redis://{REDIS[0]}:{REDIS[1]}/{args.redis_db}"
    try:
        mgmt, grpc = free_port(), free_port()
        token = secrets.token_hex(24)
        procs.append(subprocess.Popen([
            binary, "control-plane", "--database-url", f"postgres://{PG[2]}@{PG[0]}:{PG[1]}/{db}",
            "--master-key", base64.b64encode(secrets.token_bytes(32)).decode(),
            "--bootstrap-admin-token", token, "--management-port", str(mgmt), "--grpc-port", str(grpc),
            "--redis-url", redis_url,
        ], stdout=subprocess.DEVNULL, stderr=open(tmp / "cp.log", "w")))  # fmt: skip
        wait_http(f"http://127.0.0.1:{mgmt}/healthz")
        ports = []
        for i in range(3):
            port, metrics = free_port(), free_port()
            ports.append(port)
            procs.append(subprocess.Popen([
                binary, "data-plane", "--control-plane", f"http://127.0.0.1:{grpc}", "--node-id", f"bench-{i}",
                "--port", str(port), "--metrics-port", str(metrics), "--state-dir", str(tmp / f"n{i}"),
                "--redis-url", redis_url, "--throttle-node-share", "3", "--proxy-workers", "1",
            ], stdout=subprocess.DEVNULL, stderr=open(tmp / f"n{i}.log", "w")))  # fmt: skip
            wait_http(f"http://127.0.0.1:{metrics}/healthz")
        admin = lambda *a: json.loads(subprocess.run(  # noqa: E731
            [binary, "admin", "--control-plane", f"http://127.0.0.1:{grpc}", "--admin-token", token, *a],
            capture_output=True, text=True, check=True).stdout)  # fmt: skip
        tenant = admin("tenant", "create", "--name", "bench")
        key = admin("key", "create", "--tenant", tenant["accountId"])
        c = boto3.client("apigateway", endpoint_url=f"http://127.0.0.1:{mgmt}", region_name="us-east-1",
                         aws_access_key_id=key["accessKeyId"], aws_secret_access_key=key["secretAccessKey"],
                         config=Config(retries={"total_max_attempts": 1}))  # fmt: skip

        api = c.create_rest_api(name="throttle-bench")
        for part, keyed in (("plain", False), ("limited", True), ("accuracy", True)):
            r = c.create_resource(restApiId=api["id"], parentId=api["rootResourceId"], pathPart=part)
            c.put_method(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", authorizationType="NONE",
                         apiKeyRequired=keyed)  # fmt: skip
            c.put_integration(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", type="MOCK",
                              requestTemplates={"application/json": '{"statusCode": 200}'})  # fmt: skip
            c.put_method_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode="200")
            c.put_integration_response(restApiId=api["id"], resourceId=r["id"], httpMethod="GET", statusCode="200",
                                       responseTemplates={"application/json": "ok"})  # fmt: skip
        c.create_deployment(restApiId=api["id"], stageName="bench")
        c.update_stage(restApiId=api["id"], stageName="bench", patchOperations=[
            {"op": "replace", "path": "/~1limited/GET/throttling/rateLimit", "value": "1000000"},
            {"op": "replace", "path": "/~1limited/GET/throttling/burstLimit", "value": "1000000"},
        ])  # fmt: skip
        fast_key = c.create_api_key(name="fast", enabled=True)
        slow_key = c.create_api_key(name="accuracy", enabled=True)
        fast = c.create_usage_plan(name="fast", apiStages=[{"apiId": api["id"], "stage": "bench"}],
                                   throttle={"rateLimit": 1000000.0, "burstLimit": 1000000})  # fmt: skip
        c.create_usage_plan_key(usagePlanId=fast["id"], keyId=fast_key["id"], keyType="API_KEY")
        slow = c.create_usage_plan(name="accuracy", apiStages=[{"apiId": api["id"], "stage": "bench"}],
                                   throttle={"rateLimit": args.rate, "burstLimit": args.burst})  # fmt: skip
        c.create_usage_plan_key(usagePlanId=slow["id"], keyId=slow_key["id"], keyType="API_KEY")
        url = lambda port, p: f"http://127.0.0.1:{port}/restapis/{api['id']}/bench/_user_request_/{p}"  # noqa: E731
        for port in ports:
            wait_http(url(port, "limited"), headers={"x-api-key": fast_key["value"]})
        # The account bucket (10,000/5,000) is far above this machine's rate, so it never decides.

        plain = wrk(url(ports[0], "plain"), args.duration, args.connections)
        limited = wrk(url(ports[0], "limited"), args.duration, args.connections, fast_key["value"])

        time.sleep(1.0)  # the accuracy bucket is full: nothing has touched it
        runs = [subprocess.Popen(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "-H", f"x-api-key: {slow_key['value']}",
             url(port, "accuracy")], stdout=subprocess.PIPE, text=True) for port in ports]  # fmt: skip
        outs = [r.communicate()[0] for r in runs]
        total = sum(int(re.search(r"(\d+) requests in", o).group(1)) for o in outs)
        refused = sum(int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", o)) else 0 for o in outs)
        admitted = total - refused
        steady = (admitted - args.burst) / args.duration
        error = (steady - args.rate) / args.rate * 100

        lines = [
            f"plain MOCK (1 node):            {plain[2]:10.0f} req/s",
            f"key + plan + stage throttle:    {limited[2]:10.0f} req/s   ratio {limited[2] / plain[2]:.2f} (target >= 0.70)",
            f"accuracy: {args.rate:g} rps / burst {args.burst}, 3 nodes x wrk -c{args.connections}, {args.duration}s: "
            f"{total} requests, {admitted} admitted -> {steady:.1f} rps after the burst ({error:+.1f} %, target +-5 %)",
        ]  # fmt: skip
        print("\n".join(lines))
        if args.markdown:
            Path(args.markdown).write_text("```\n" + "\n".join(lines) + "\n```\n")
        return 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
