#!/usr/bin/env python3
"""bench/lambda.py: what the gateway adds to a warm Lambda invocation, and cold starts.

Starts `apigw standalone` (release build) on a fresh data dir, creates the Rust example function
(`examples/rust-echo`, runtime provided.al2023) with the built-in function host, wires it to a REST
API with an AWS_PROXY integration, then measures, one request at a time over a keep-alive
connection (so latency, not throughput, is what is measured):

  function   the function's own run time: `Duration` of the REPORT line that the host returns
             in `X-Amz-Log-Result` (LogType Tail)
  invoke     a direct `Invoke` on the lambda API (SigV4-signed once; the signature stays valid)
  gateway    GET through the data plane (AWS_PROXY event in, proxy response out)

and prints p50/p90/p99 of each plus gateway − function and gateway − invoke at p50.
Cold start: the first Invoke after each configuration change (a new revision starts a new
instance), for the Rust bootstrap and, when `awslambdaric` is importable, a Python handler.

Usage: bench/lambda.py [--requests N] [--cold N] [--markdown FILE]
Env: BENCH_APIGW_BIN (default: cargo build --release), CARGO_TARGET_DIR.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config

REPO = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
ACCOUNT = "000000000000"
CREDS = botocore.credentials.Credentials("test", "test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "apigw-target")


def build(manifest: Path | None, what: str) -> None:
    argv = ["cargo", "build", "--release"] + (["--manifest-path", str(manifest)] if manifest else [])
    env = dict(os.environ)
    if manifest:
        env["CARGO_TARGET_DIR"] = str(target_dir() / "examples")
    print(f"==> building {what} (release)", file=sys.stderr)
    subprocess.run(argv, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def rust_zip() -> bytes:
    build(REPO / "examples" / "rust-echo" / "Cargo.toml", "examples/rust-echo")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, (target_dir() / "examples" / "release" / "bootstrap").read_bytes())
    return buf.getvalue()


def python_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(REPO / "examples" / "python-echo" / "app.py", "app.py")
    return buf.getvalue()


def percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {"p50": statistics.median(s), "p90": pick(0.90), "p99": pick(0.99), "n": len(s)}


class Gateway:
    def __init__(self, binary: Path, workdir: Path):
        self.mgmt_port, self.data_port, grpc, metrics = (free_port() for _ in range(4))
        self.log = open(workdir / "apigw.log", "wb")
        self.proc = subprocess.Popen(
            [str(binary), "standalone", "--data-dir", str(workdir / "data"),
             "--data-plane-port", str(self.data_port), "--management-port", str(self.mgmt_port),
             "--grpc-port", str(grpc), "--metrics-port", str(metrics),
             "--function-python", sys.executable],  # fmt: skip
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("apigw standalone did not start (see apigw.log)")
        url = f"http://127.0.0.1:{self.mgmt_port}"
        kw = dict(endpoint_url=url, region_name=REGION, aws_access_key_id="test",
                  aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))  # fmt: skip
        self.apigw = boto3.client("apigateway", **kw)
        self.lam = boto3.client("lambda", **kw)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()

    def create_function(self, name: str, code: bytes, runtime: str, handler: str) -> str:
        out = self.lam.create_function(FunctionName=name, Runtime=runtime, Handler=handler,
                                       Role=f"arn:aws:iam::{ACCOUNT}:role/bench", Timeout=10,
                                       Code={"ZipFile": code})  # fmt: skip
        return out["FunctionArn"]

    def proxy_api(self, arn: str) -> str:
        api = self.apigw.create_rest_api(name="lambda-bench")["id"]
        root = next(r for r in self.apigw.get_resources(restApiId=api)["items"] if r["path"] == "/")
        res = self.apigw.create_resource(restApiId=api, parentId=root["id"], pathPart="{proxy+}")
        self.apigw.put_method(restApiId=api, resourceId=res["id"], httpMethod="ANY", authorizationType="NONE")
        uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations"
        self.apigw.put_integration(restApiId=api, resourceId=res["id"], httpMethod="ANY", type="AWS_PROXY",
                                   integrationHttpMethod="POST", uri=uri)  # fmt: skip
        self.apigw.create_deployment(restApiId=api, stageName="bench")
        return f"/restapis/{api}/bench/_user_request_/hello"

    def signed_invoke(self, name: str, tail: bool) -> tuple[str, dict[str, str], bytes]:
        path = f"/2015-03-31/functions/{name}/invocations"
        body = b"{}"
        req = botocore.awsrequest.AWSRequest(method="POST", url=f"http://127.0.0.1:{self.mgmt_port}{path}",
                                             data=body, headers={"Content-Type": "application/json"})  # fmt: skip
        if tail:
            req.headers["X-Amz-Log-Type"] = "Tail"
        botocore.auth.SigV4Auth(CREDS, "lambda", REGION).add_auth(req)
        return path, dict(req.headers.items()), body


def timed(conn: http.client.HTTPConnection, method: str, path: str, headers=None, body=None):
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    elapsed = (time.perf_counter() - start) * 1000
    if r.status != 200:
        raise SystemExit(f"{method} {path} answered {r.status}: {data[:300]!r}")
    return elapsed, r, data


REPORT = re.compile(r"REPORT RequestId: \S+\s+Duration: ([0-9.]+) ms")


def warm(gw: Gateway, name: str, gateway_path: str, n: int) -> dict[str, dict[str, float]]:
    data = http.client.HTTPConnection("127.0.0.1", gw.data_port)
    mgmt = http.client.HTTPConnection("127.0.0.1", gw.mgmt_port)
    deadline = time.monotonic() + 30
    while True:  # the deployment reaches the data plane asynchronously
        data.request("GET", gateway_path)
        r = data.getresponse()
        r.read()
        if r.status == 200:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"gateway never served {gateway_path} (last {r.status})")
        time.sleep(0.1)
    plain = gw.signed_invoke(name, tail=False)
    tail = gw.signed_invoke(name, tail=True)
    for _ in range(200):  # warm-up: instance started, connections pooled
        timed(data, "GET", gateway_path)
        timed(mgmt, "POST", plain[0], plain[1], plain[2])
    gateway, invoke, function = [], [], []
    for _ in range(n):
        gateway.append(timed(data, "GET", gateway_path)[0])
        invoke.append(timed(mgmt, "POST", plain[0], plain[1], plain[2])[0])
    for _ in range(min(n, 500)):
        _, r, _ = timed(mgmt, "POST", tail[0], tail[1], tail[2])
        log = base64.b64decode(r.getheader("X-Amz-Log-Result") or "").decode(errors="replace")
        m = REPORT.search(log)
        if m:
            function.append(float(m.group(1)))
    out = {"gateway": percentiles(gateway), "invoke": percentiles(invoke)}
    if function:
        out["function"] = percentiles(function)
    return out


def cold(gw: Gateway, name: str, rounds: int) -> list[float]:
    times = []
    for i in range(rounds):
        # A configuration change is a new revision: the next Invoke starts a new instance.
        gw.lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"ROUND": str(i)}})
        path, headers, body = gw.signed_invoke(name, tail=False)
        conn = http.client.HTTPConnection("127.0.0.1", gw.mgmt_port)
        times.append(timed(conn, "POST", path, headers, body)[0])
        conn.close()
    return times


def awslambdaric_available() -> bool:
    return subprocess.run([sys.executable, "-c", "import awslambdaric"], capture_output=True).returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--markdown")
    args = ap.parse_args()

    binary = os.environ.get("BENCH_APIGW_BIN")
    if not binary:
        build(None, "apigw")
        binary = str(target_dir() / "release" / "apigw")
    code = rust_zip()
    work = Path(tempfile.mkdtemp(prefix="apigw-lambda-bench."))
    gw = Gateway(Path(binary), work)
    try:
        arn = gw.create_function("echo", code, "provided.al2023", "bootstrap")
        path = gw.proxy_api(arn)
        results = warm(gw, "echo", path, args.requests)
        cold_rust = cold(gw, "echo", args.cold)
        cold_py = None
        if awslambdaric_available():
            gw.create_function("pyecho", python_zip(), "python3.12", "app.handler")
            cold_py = cold(gw, "pyecho", args.cold)
    finally:
        gw.stop()
        shutil.rmtree(work, ignore_errors=True)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    machine = f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}"
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    lines = [
        f"machine: {machine}; apigw rev {rev}; {args.requests} sequential requests per row, keep-alive",
        "",
        "| path | p50 ms | p90 ms | p99 ms | n |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {"function": "function's own run time (REPORT Duration)", "invoke": "direct Invoke (lambda API)",
              "gateway": "through the gateway (AWS_PROXY)"}  # fmt: skip
    for key in ("function", "invoke", "gateway"):
        if key in results:
            r = results[key]
            lines.append(f"| {labels[key]} | {r['p50']:.3f} | {r['p90']:.3f} | {r['p99']:.3f} | {r['n']} |")
    g = results["gateway"]["p50"]
    lines.append("")
    if "function" in results:
        lines.append(f"gateway − function at p50: **{g - results['function']['p50']:.3f} ms** (target < 1 ms)")
    lines.append(f"gateway − direct Invoke at p50: {g - results['invoke']['p50']:.3f} ms")
    lines.append("")
    lines.append(f"cold start, Rust bootstrap (first Invoke of a new revision), ms: "
                 f"median {statistics.median(cold_rust):.1f}, all {[round(t, 1) for t in cold_rust]}")  # fmt: skip
    if cold_py:
        lines.append(f"cold start, Python via awslambdaric, ms: "
                     f"median {statistics.median(cold_py):.1f}, all {[round(t, 1) for t in cold_py]}")  # fmt: skip
    else:
        lines.append("cold start, Python: skipped (awslambdaric is not importable by this python)")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
