//! The host against real processes speaking the real Runtime API: small
//! `bootstrap`s (Python stdlib, or sh + curl) written at test time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::code::tests::make_zip;
use crate::{FunctionHost, FunctionSpec, HostConfig, HostError, InvokeRequest, inspect};

/// A custom runtime in Python's stdlib. The event's `action` picks a behaviour.
const PY_BOOTSTRAP: &str = r#"#!/usr/bin/env python3
import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
print("init", os.environ["AWS_LAMBDA_FUNCTION_NAME"], flush=True)
def post(path, body, headers=None):
    req = urllib.request.Request(api + path, data=body, method="POST", headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.status
while True:
    with urllib.request.urlopen(api + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        headers = {k.lower(): v for k, v in r.headers.items()}
        event = json.loads(r.read() or b"null")
    action = event.get("action") if isinstance(event, dict) else None
    print("handling", rid, action, flush=True)
    print("to stderr", rid, file=sys.stderr, flush=True)
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "crash":
        sys.exit(3)
    if action == "alloc":
        hog = bytearray(event["mb"] * 1024 * 1024)
    if action == "spam":
        for i in range(event["lines"]):
            print(f"line {i:05d} " + "x" * 90, flush=True)
    if action == "touch":
        open(event["path"], "w").write(rid)
    if action == "error":
        body = json.dumps({"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}).encode()
        post(f"/invocation/{rid}/error", body, {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
        continue
    names = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
             "AWS_REGION", "AWS_DEFAULT_REGION", "_HANDLER", "LAMBDA_TASK_ROOT", "TZ", "GREETING",
             "AWS_LAMBDA_LOG_GROUP_NAME", "CARGO_PKG_NAME")
    out = {"pid": os.getpid(), "event": event, "headers": headers, "cwd": os.getcwd(),
           "env": {k: os.environ.get(k) for k in names}}
    status = post(f"/invocation/{rid}/response", json.dumps(out).encode())
    print("posted", status, flush=True)
"#;

const INIT_ERROR_BOOTSTRAP: &str = r#"#!/usr/bin/env python3
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
body = json.dumps({"errorMessage": "cannot load config", "errorType": "Runtime.ConfigError"}).encode()
req = urllib.request.Request(api + "/init/error", data=body, method="POST",
                             headers={"Lambda-Runtime-Function-Error-Type": "Runtime.ConfigError"})
urllib.request.urlopen(req).read()
raise SystemExit(1)
"#;

/// The classic shell + curl custom runtime from Lambda's tutorial.
const SH_BOOTSTRAP: &str = r#"#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  EVENT=$(curl -sS -D "$HEADERS" "$API/invocation/next")
  ID=$(grep -i '^lambda-runtime-aws-request-id:' "$HEADERS" | cut -d' ' -f2 | tr -d '\r\n')
  CT=$(grep -i '^content-type:' "$HEADERS" | cut -d' ' -f2 | tr -d '\r\n')
  rm -f "$HEADERS"
  echo "sh got $ID"
  curl -sS -o /dev/null -X POST "$API/invocation/$ID/response" -d "{\"id\":\"$ID\",\"ct\":\"$CT\",\"event\":$EVENT}"
done
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    host: FunctionHost,
}

fn fixture(tune: impl FnOnce(&mut HostConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(dir.path().join("code"));
    tune(&mut config);
    Fixture {
        host: FunctionHost::new(config),
        _dir: dir,
    }
}

async fn deploy(host: &FunctionHost, account: &str, name: &str, bootstrap: &str) -> FunctionSpec {
    let zip = make_zip(&[("bootstrap", 0o755, bootstrap)]);
    let info = inspect(&zip).unwrap();
    host.install(account, &info.sha256, Bytes::from(zip))
        .await
        .unwrap();
    FunctionSpec {
        account_id: account.into(),
        name: name.into(),
        region: "eu-west-1".into(),
        arn: format!("arn:aws:lambda:eu-west-1:{account}:function:{name}"),
        runtime: "provided.al2023".into(),
        handler: Some("not.used".into()),
        timeout: Duration::from_secs(3),
        memory_mb: 128,
        environment: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
        code_sha256: info.sha256,
        revision: "r1".into(),
    }
}

fn event(v: Value) -> InvokeRequest {
    InvokeRequest {
        payload: Bytes::from(v.to_string()),
        ..Default::default()
    }
}

fn body(payload: &Bytes) -> Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(payload)))
}

#[tokio::test]
async fn round_trip_with_lambda_headers_environment_and_warm_reuse() {
    let f = fixture(|_| {});
    let spec = deploy(&f.host, "111111111111", "echo", PY_BOOTSTRAP).await;
    let before = chrono::Utc::now().timestamp_millis();
    let first = f.host.invoke(&spec, event(json!({"n": 1}))).await.unwrap();
    assert!(!first.function_error, "{first:?}");
    let out = body(&first.payload);
    assert_eq!(out["event"], json!({"n": 1}));
    let headers = &out["headers"];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["lambda-runtime-aws-request-id"],
        first.request_id.as_str()
    );
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        spec.arn.as_str()
    );
    assert!(
        headers["lambda-runtime-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    let deadline: i64 = headers["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(deadline >= before + 3000 && deadline <= chrono::Utc::now().timestamp_millis() + 3000);
    let env = &out["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "echo");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_REGION"], "eu-west-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
    assert_eq!(env["_HANDLER"], "not.used");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/echo");
    // The host's own environment (here: cargo's) never reaches a function.
    assert_eq!(env["CARGO_PKG_NAME"], Value::Null);
    assert_eq!(env["LAMBDA_TASK_ROOT"], out["cwd"]);
    assert!(out["cwd"].as_str().unwrap().contains("111111111111"));

    let second = f.host.invoke(&spec, event(json!({"n": 2}))).await.unwrap();
    let out2 = body(&second.payload);
    assert_eq!(out2["event"], json!({"n": 2}));
    assert_eq!(out2["pid"], out["pid"], "a warm instance is reused");
    assert_ne!(second.request_id, first.request_id);
    assert_eq!(f.host.warm_instances("111111111111", "echo"), 1);

    // A new revision (configuration changed) does not reuse the old instance.
    let mut changed = spec.clone();
    changed.revision = "r2".into();
    changed.environment.insert("GREETING".into(), "bye".into());
    let third = f.host.invoke(&changed, event(json!({}))).await.unwrap();
    let out3 = body(&third.payload);
    assert_ne!(out3["pid"], out["pid"]);
    assert_eq!(out3["env"]["GREETING"], "bye");
}

#[tokio::test]
async fn shell_and_curl_bootstrap_works() {
    let f = fixture(|_| {});
    let spec = deploy(&f.host, "111111111111", "sh", SH_BOOTSTRAP).await;
    let out = f
        .host
        .invoke(&spec, event(json!({"k": "v"})))
        .await
        .unwrap();
    assert!(!out.function_error, "{out:?}");
    let v = body(&out.payload);
    assert_eq!(v["id"], out.request_id.as_str());
    assert_eq!(v["ct"], "application/json");
    assert_eq!(v["event"], json!({"k": "v"}));
}

#[tokio::test]
async fn function_error_keeps_the_instance() {
    let f = fixture(|_| {});
    let spec = deploy(&f.host, "111111111111", "err", PY_BOOTSTRAP).await;
    let out = f
        .host
        .invoke(&spec, event(json!({"action": "error"})))
        .await
        .unwrap();
    assert!(out.function_error);
    assert_eq!(
        body(&out.payload),
        json!({"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []})
    );
    assert_eq!(f.host.warm_instances("111111111111", "err"), 1);
    let ok = f.host.invoke(&spec, event(json!({}))).await.unwrap();
    assert!(!ok.function_error);
}

#[tokio::test]
async fn timeout_kills_the_instance_and_reports_lambdas_error() {
    let f = fixture(|_| {});
    let mut spec = deploy(&f.host, "111111111111", "slow", PY_BOOTSTRAP).await;
    spec.timeout = Duration::from_secs(1);
    let warm = f.host.invoke(&spec, event(json!({}))).await.unwrap();
    let pid = body(&warm.payload)["pid"].clone();
    let started = Instant::now();
    let out = f
        .host
        .invoke(&spec, event(json!({"action": "sleep", "seconds": 30})))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(out.function_error);
    assert_eq!(
        body(&out.payload),
        json!({
            "errorType": "Sandbox.Timedout",
            "errorMessage": format!("RequestId: {} Error: Task timed out after 1.00 seconds", out.request_id),
        })
    );
    assert_eq!(f.host.warm_instances("111111111111", "slow"), 0);
    let next = f.host.invoke(&spec, event(json!({}))).await.unwrap();
    assert!(!next.function_error);
    assert_ne!(
        body(&next.payload)["pid"],
        pid,
        "the timed-out instance is gone"
    );
}

#[tokio::test]
async fn crash_is_runtime_exit_error() {
    let f = fixture(|_| {});
    let spec = deploy(&f.host, "111111111111", "crash", PY_BOOTSTRAP).await;
    let out = f
        .host
        .invoke(&spec, event(json!({"action": "crash"})))
        .await
        .unwrap();
    assert!(out.function_error);
    assert_eq!(
        body(&out.payload),
        json!({
            "errorType": "Runtime.ExitError",
            "errorMessage": format!("RequestId: {} Error: Runtime exited with error: exit status 3", out.request_id),
        })
    );
    assert_eq!(f.host.warm_instances("111111111111", "crash"), 0);
    // The next invocation starts a fresh instance.
    let ok = f.host.invoke(&spec, event(json!({}))).await.unwrap();
    assert!(!ok.function_error, "{ok:?}");
}

#[tokio::test]
async fn init_error_is_returned_as_the_function_error() {
    let f = fixture(|_| {});
    let spec = deploy(&f.host, "111111111111", "badinit", INIT_ERROR_BOOTSTRAP).await;
    let out = f.host.invoke(&spec, event(json!({}))).await.unwrap();
    assert!(out.function_error);
    assert_eq!(
        body(&out.payload),
        json!({"errorMessage": "cannot load config", "errorType": "Runtime.ConfigError"})
    );
    assert_eq!(f.host.warm_instances("111111111111", "badinit"), 0);
}

#[tokio::test]
async fn missing_or_unrunnable_bootstrap_is_invalid_entrypoint() {
    let f = fixture(|_| {});
    let zip = make_zip(&[("handler.txt", 0o644, "no bootstrap here")]);
    let info = inspect(&zip).unwrap();
    f.host
        .install("111111111111", &info.sha256, Bytes::from(zip))
        .await
        .unwrap();
    let mut spec = deploy(&f.host, "111111111111", "nobootstrap", PY_BOOTSTRAP).await;
    spec.code_sha256 = info.sha256;
    let out = f.host.invoke(&spec, event(json!({}))).await.unwrap();
    assert!(out.function_error);
    let v = body(&out.payload);
    assert_eq!(v["errorType"], "Runtime.InvalidEntrypoint");
    let message = v["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "RequestId: {} Error: Couldn't find valid bootstrap(s): [",
            out.request_id
        )),
        "{message}"
    );

    // A bootstrap without the executable bit.
    let zip = make_zip(&[("bootstrap", 0o644, PY_BOOTSTRAP)]);
    let info = inspect(&zip).unwrap();
    f.host
        .install("111111111111", &info.sha256, Bytes::from(zip))
        .await
        .unwrap();
    spec.code_sha256 = info.sha256;
    let out = f.host.invoke(&spec, event(json!({}))).await.unwrap();
    let v = body(&out.payload);
    assert_eq!(v["errorType"], "Runtime.InvalidEntrypoint");
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("/bootstrap: permission denied"),
        "{v}"
    );
}

#[tokio::test]
async fn concurrency_limit_answers_too_many_requests() {
    let f = fixture(|c| c.concurrency_per_function = 2);
    let spec = deploy(&f.host, "111111111111", "busy", PY_BOOTSTRAP).await;
    let slow = || {
        let host = f.host.clone();
        let spec = spec.clone();
        tokio::spawn(async move {
            host.invoke(&spec, event(json!({"action": "sleep", "seconds": 1.5})))
                .await
        })
    };
    let (a, b) = (slow(), slow());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = f.host.invoke(&spec, event(json!({}))).await;
    assert!(
        matches!(third, Err(HostError::TooManyRequests)),
        "{third:?}"
    );
    // Another function (and another tenant) has its own limit.
    let other = deploy(&f.host, "222222222222", "busy", PY_BOOTSTRAP).await;
    assert!(
        !f.host
            .invoke(&other, event(json!({})))
            .await
            .unwrap()
            .function_error
    );
    for h in [a, b] {
        assert!(!h.await.unwrap().unwrap().function_error);
    }
    assert!(
        !f.host
            .invoke(&spec, event(json!({})))
            .await
            .unwrap()
            .function_error
    );
    assert_eq!(f.host.warm_instances("111111111111", "busy"), 2);
}

#[tokio::test]
async fn tail_log_has_start_output_end_and_report() {
    let f = fixture(|_| {});
    let spec = deploy(&f.host, "111111111111", "logs", PY_BOOTSTRAP).await;
    let mut request = event(json!({"action": "print"}));
    request.tail_log = true;
    let out = f.host.invoke(&spec, request).await.unwrap();
    let log = String::from_utf8(BASE64.decode(out.log_result.unwrap()).unwrap()).unwrap();
    let id = &out.request_id;
    assert!(
        log.starts_with(&format!("START RequestId: {id} Version: $LATEST\n")),
        "{log}"
    );
    assert!(log.contains(&format!("handling {id} print\n")), "{log}");
    assert!(log.contains(&format!("to stderr {id}\n")), "{log}");
    assert!(log.contains(&format!("END RequestId: {id}\n")), "{log}");
    assert!(
        log.contains(&format!("REPORT RequestId: {id}\tDuration: ")),
        "{log}"
    );
    assert!(log.contains("Memory Size: 128 MB"), "{log}");
    // Without Tail nothing is returned.
    let plain = f.host.invoke(&spec, event(json!({}))).await.unwrap();
    assert!(plain.log_result.is_none());
}

#[tokio::test]
async fn tail_log_is_the_last_4kb() {
    let f = fixture(|_| {});
    let spec = deploy(&f.host, "111111111111", "chatty", PY_BOOTSTRAP).await;
    let mut request = event(json!({"action": "spam", "lines": 200}));
    request.tail_log = true;
    let out = f.host.invoke(&spec, request).await.unwrap();
    let log = String::from_utf8(BASE64.decode(out.log_result.unwrap()).unwrap()).unwrap();
    assert!(
        log.len() <= crate::LOG_TAIL_BYTES && log.len() > 3500,
        "{}",
        log.len()
    );
    assert!(log.contains("line 00199 "), "{log}");
    assert!(
        !log.contains("line 00000 ") && !log.contains("START RequestId"),
        "{log}"
    );
    assert!(
        log.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("REPORT RequestId: "),
        "{log}"
    );
}

#[tokio::test]
async fn event_invocations_run_in_the_background() {
    let f = fixture(|_| {});
    let spec = deploy(&f.host, "111111111111", "bg", PY_BOOTSTRAP).await;
    let marker = f._dir.path().join("touched");
    f.host.invoke_event(
        spec.clone(),
        event(json!({"action": "touch", "path": marker.display().to_string()})),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the event never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn memory_size_is_enforced() {
    let f = fixture(|_| {});
    if f.host.inner_has_prlimit() {
        let spec = deploy(&f.host, "111111111111", "hog", PY_BOOTSTRAP).await;
        let small = f
            .host
            .invoke(&spec, event(json!({"action": "alloc", "mb": 16})))
            .await
            .unwrap();
        assert!(!small.function_error, "{small:?}");
        let big = f
            .host
            .invoke(&spec, event(json!({"action": "alloc", "mb": 512})))
            .await
            .unwrap();
        assert!(
            big.function_error,
            "a 512 MB allocation must fail at 128 MB"
        );
        assert_eq!(body(&big.payload)["errorType"], "Runtime.ExitError");
    } else {
        panic!("prlimit (util-linux) is needed to enforce MemorySize");
    }
}

#[tokio::test]
async fn idle_instances_are_reaped_and_removed_functions_stopped() {
    let f = fixture(|c| c.idle_timeout = Duration::from_millis(300));
    let spec = deploy(&f.host, "111111111111", "idle", PY_BOOTSTRAP).await;
    f.host.invoke(&spec, event(json!({}))).await.unwrap();
    assert_eq!(f.host.warm_instances("111111111111", "idle"), 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(f.host.warm_instances("111111111111", "idle"), 0);

    f.host.invoke(&spec, event(json!({}))).await.unwrap();
    f.host.remove("111111111111", "idle");
    assert_eq!(f.host.warm_instances("111111111111", "idle"), 0);
}

#[tokio::test]
async fn code_is_per_tenant_and_must_match_its_digest() {
    let f = fixture(|_| {});
    let zip = make_zip(&[("bootstrap", 0o755, PY_BOOTSTRAP)]);
    let info = inspect(&zip).unwrap();
    f.host
        .install("111111111111", &info.sha256, Bytes::from(zip.clone()))
        .await
        .unwrap();
    assert!(f.host.is_installed("111111111111", &info.sha256));
    assert!(!f.host.is_installed("222222222222", &info.sha256));
    let other = inspect(&make_zip(&[("x", 0o644, "y")])).unwrap();
    assert!(matches!(
        f.host
            .install("111111111111", &other.sha256, Bytes::from(zip))
            .await,
        Err(HostError::DigestMismatch)
    ));
    // A function whose code this host lacks is refused, not run.
    let mut spec = deploy(&f.host, "111111111111", "x", PY_BOOTSTRAP).await;
    spec.account_id = "222222222222".into();
    assert!(matches!(
        f.host.invoke(&spec, event(json!({}))).await,
        Err(HostError::CodeNotInstalled(_))
    ));
}
