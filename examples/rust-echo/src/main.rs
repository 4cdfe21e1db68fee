//! An echo function for apigw's Lambda integrations.
//!
//! - A proxy event (payload 1.0, or 2.0 when it says `"version": "2.0"`) is
//!   deserialised into `ApiGatewayProxyRequest` / `ApiGatewayV2httpRequest`
//!   and answered with `{"parsed": <that value re-serialised>, "raw": <the
//!   event as received>}` in the body. The `behaviour` query parameter (or a
//!   path ending in `/behaviour/{name}`) picks another answer instead:
//!   `malformed` (an invalid proxy answer), `error` (a function error),
//!   `sleep` (sleeps `ms` milliseconds, then echoes), `exit` (the process
//!   dies mid-invocation), `status` (answers with status `code`), `binary`
//!   (a base64 body, `isBase64Encoded: true`), `headers` (single and
//!   multi-value headers).
//! - Any other event (a non-proxy `AWS` integration) is answered as is, unless
//!   it is `{"fail": "<message>"}`: then the function fails with that
//!   `errorMessage`, for `selectionPattern` tests.

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// What the caller asked this invocation to do.
fn behaviour(event: &Value) -> Option<(String, Value)> {
    let query = event
        .get("queryStringParameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let from_query = query
        .get("behaviour")
        .and_then(Value::as_str)
        .map(str::to_string);
    let from_path = ["path", "rawPath"]
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_str))
        .and_then(|p| p.split("/behaviour/").nth(1))
        .map(|b| b.trim_end_matches('/').to_string());
    from_query.or(from_path).map(|b| (b, Value::Object(query)))
}

fn param(query: &Value, name: &str) -> Option<u64> {
    query
        .get(name)
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (raw, context) = event.into_parts();
    let is_proxy = raw.get("requestContext").is_some();
    if !is_proxy {
        if let Some(message) = raw.get("fail").and_then(Value::as_str) {
            return Err(message.to_string().into());
        }
        return Ok(raw);
    }
    let v2 = raw.get("version").and_then(Value::as_str) == Some("2.0");
    let parsed = if v2 {
        serde_json::to_value(serde_json::from_value::<ApiGatewayV2httpRequest>(
            raw.clone(),
        )?)?
    } else {
        serde_json::to_value(serde_json::from_value::<ApiGatewayProxyRequest>(
            raw.clone(),
        )?)?
    };
    let echo = json!({
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-echo-request-id": context.request_id},
        "body": json!({"parsed": parsed, "raw": raw}).to_string(),
    });
    let Some((behaviour, query)) = behaviour(&raw) else {
        return Ok(echo);
    };
    match behaviour.as_str() {
        "malformed" => Ok(json!({"statusCode": 200, "wrongValue": "x"})),
        "error" => Err("the function failed on purpose".into()),
        "sleep" => {
            let ms = param(&query, "ms").unwrap_or(3_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(echo)
        }
        "exit" => std::process::exit(3),
        "status" => Ok(json!({
            "statusCode": param(&query, "code").unwrap_or(418),
            "body": "status on request",
        })),
        "binary" => Ok(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": "AAECA/8=",
            "isBase64Encoded": true,
        })),
        "headers" => Ok(json!({
            "statusCode": 200,
            "headers": {"x-single": "solo", "x-both": "single", "x-bool": true},
            "multiValueHeaders": {"x-multi": ["one", "two"], "x-both": ["multi"]},
            "body": "",
        })),
        _ => Ok(echo),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handle)).await
}
