//! Lambda integrations through the proxy on a real socket, against a
//! stand-in for Lambda's Invoke API that checks each request's SigV4
//! signature with `apigw-sigv4` and answers per function name.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apigw_data_plane::held::{Held, HeldResource};
use apigw_data_plane::integration::{LambdaClient, LambdaCredentials, LambdaSettings, Services};
use apigw_data_plane::metrics::Metrics;
use apigw_data_plane::proxy;
use apigw_data_plane::runtime::RuntimeHandle;
use apigw_data_plane::subscriber::ConfigSink;
use apigw_proto::snapshot::{ApiSettings, DeploymentSnapshot, Route, StageSnapshot};
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const HOST: &str = "api1.execute-api.example.com";
const ACCOUNT: &str = "123456789012";
const KEY: &str = "AKIDLAMBDA";
const SECRET: &str = "lambda-secret";

/// What the stand-in Lambda received: (function ARN, payload).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

fn answer(status: u16, headers: &[(&str, &str)], body: String) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (n, v) in headers {
        response = response.header(*n, *v);
    }
    response.body(Full::new(Bytes::from(body))).unwrap()
}

async fn lambda(
    request: Request<Incoming>,
    seen: Seen,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let checked = apigw_sigv4::parse(&parts).and_then(|signed| {
        assert_eq!(
            (signed.service.as_str(), signed.access_key_id.as_str()),
            ("lambda", KEY)
        );
        apigw_sigv4::verify(
            &signed,
            &parts,
            &body,
            SECRET,
            chrono::Utc::now(),
            chrono::Duration::minutes(5),
        )
    });
    if let Err(e) = checked {
        return Ok(answer(
            403,
            &[("x-amzn-errortype", "InvalidSignatureException")],
            json!({"message": e.to_string()}).to_string(),
        ));
    }
    let arn = parts
        .uri
        .path()
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|p| p.strip_suffix("/invocations"))
        .map(|f| percent_decode_str(f).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().push((arn.clone(), payload.clone()));
    let name = arn.rsplit("function:").next().unwrap_or("");
    let function_error = [("x-amz-function-error", "Unhandled")];
    Ok(match name {
        "echo" => answer(
            200,
            &[],
            json!({"statusCode": 200, "headers": {"x-echo": "1"}, "body": payload.to_string()}).to_string(),
        ),
        "passthrough" => answer(200, &[], payload.to_string()),
        "malformed" => answer(200, &[], r#"{"statusCode": 200, "wrongValue": "x"}"#.into()),
        "notjson" => answer(200, &[], "hello".into()),
        "binary" => answer(
            200,
            &[],
            r#"{"statusCode": 200, "headers": {"content-type": "image/png"}, "body": "AAEC", "isBase64Encoded": true}"#.into(),
        ),
        "fails" => answer(
            200,
            &function_error,
            json!({"errorMessage": payload.get("fail").and_then(Value::as_str).unwrap_or("Bad: thing"),
                   "errorType": "Exception"})
            .to_string(),
        ),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            answer(200, &[], r#"{"statusCode": 200}"#.into())
        }
        "throttled" => answer(
            429,
            &[("x-amzn-errortype", "TooManyRequestsException")],
            r#"{"Type": "User", "message": "Rate Exceeded."}"#.into(),
        ),
        _ => answer(
            404,
            &[("x-amzn-errortype", "ResourceNotFoundException")],
            json!({"Type": "User", "message": format!("Function not found: {arn}")}).to_string(),
        ),
    })
}

async fn start_lambda() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let state = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = state.clone();
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                TokioIo::new(stream),
                service_fn(move |r| lambda(r, seen.clone())),
            ));
        }
    });
    (addr, seen)
}

fn uri(function: &str) -> String {
    format!(
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:{function}/invocations"
    )
}

fn route(path: &str, method: &str, integration: Value) -> Route {
    Route {
        resource_id: format!("r{}", path.len()),
        path: path.into(),
        http_method: method.into(),
        method: json!({"httpMethod": method, "methodIntegration": integration}),
    }
}

fn config() -> Held {
    let proxy = |function: &str| json!({"type": "AWS_PROXY", "httpMethod": "POST", "uri": uri(&format!("{ACCOUNT}:function:{function}"))});
    let selecting = |function: &str| {
        json!({
            "type": "AWS", "httpMethod": "POST",
            "uri": uri(&format!("{ACCOUNT}:function:{function}")),
            "integrationResponses": {
                "200": {"statusCode": "200", "responseParameters": {
                    "method.response.header.x-static": "'yes'"}},
                "400": {"statusCode": "400", "selectionPattern": "Bad:.*"},
                "500": {"statusCode": "500", "selectionPattern": ".*[Ee]xploded.*"}
            }
        })
    };
    let routes = vec![
        route("/echo/{proxy+}", "ANY", proxy("${stageVariables.fn}")),
        route("/malformed", "GET", proxy("malformed")),
        route("/notjson", "GET", proxy("notjson")),
        route("/binary", "GET", proxy("binary")),
        route("/fails", "GET", proxy("fails")),
        route("/throttled", "GET", proxy("throttled")),
        route("/missing", "GET", proxy("missing")),
        route(
            "/slow",
            "GET",
            json!({"type": "AWS_PROXY", "httpMethod": "POST", "timeoutInMillis": 300,
                   "uri": uri(&format!("{ACCOUNT}:function:slow"))}),
        ),
        route(
            "/foreign",
            "GET",
            json!({"type": "AWS_PROXY", "httpMethod": "POST",
                   "uri": uri("210987654321:function:echo")}),
        ),
        route("/custom/ok", "POST", selecting("passthrough")),
        route("/custom/fails", "POST", selecting("fails")),
        route(
            "/custom/nodefault",
            "POST",
            json!({"type": "AWS", "httpMethod": "POST",
                   "uri": uri(&format!("{ACCOUNT}:function:fails")),
                   "integrationResponses": {"400": {"statusCode": "400", "selectionPattern": "Bad:.*"}}}),
        ),
    ];
    let stage = StageSnapshot {
        stage_name: "prod".into(),
        authorizer_cache_generation: 0,
        variables: BTreeMap::from([("fn".to_string(), "echo".to_string())]),
        method_settings: BTreeMap::new(),
        usage_plans: Vec::new(),
        deployment: DeploymentSnapshot {
            account_id: ACCOUNT.into(),
            api_id: "api1".into(),
            deployment_id: "dep1".into(),
            created_epoch_seconds: 0,
            api: ApiSettings {
                binary_media_types: vec!["image/png".into()],
                ..Default::default()
            },
            routes,
            gateway_responses: BTreeMap::new(),
            models: BTreeMap::new(),
            request_validators: BTreeMap::new(),
            authorizers: BTreeMap::new(),
        },
    };
    Held::new(
        1,
        BTreeMap::from([(
            "stage/api1/prod".into(),
            HeldResource::from_snapshot(1, &stage),
        )]),
    )
}

struct Harness {
    addr: SocketAddr,
    seen: Seen,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Harness {
    async fn start() -> Self {
        let (lambda, seen) = start_lambda().await;
        let client = LambdaClient::new(&LambdaSettings {
            default_endpoint: Some(format!("http://{lambda}")),
            endpoints_by_account: BTreeMap::new(),
            credentials: Some(LambdaCredentials {
                access_key_id: KEY.into(),
                secret_access_key: SECRET.into(),
                session_token: None,
            }),
        })
        .unwrap();
        let runtime = RuntimeHandle::with_services(
            "example.com",
            Services {
                lambda: Some(Arc::new(client)),
                auth: Default::default(),
            },
        );
        runtime.apply(&config()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(proxy::serve(
            listener,
            runtime,
            Metrics::new(),
            std::future::pending(),
        ));
        Self {
            addr,
            seen,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &'static [u8],
    ) -> (u16, HeaderMap, Bytes) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("host", HOST);
        for (n, v) in headers {
            request = request.header(*n, *v);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from_static(body))).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

const INTERNAL: &[u8] = br#"{"message": "Internal server error"}"#;

#[tokio::test]
async fn proxy_events_reach_the_function_and_answers_come_back() {
    let h = Harness::start().await;
    let (status, headers, body) = h
        .send(
            "POST",
            "/prod/echo/a/b%20c?x=1&x=2&y=z",
            &[
                ("content-type", "application/json"),
                ("user-agent", "tester/1"),
                ("x-dup", "1"),
                ("x-dup", "2"),
            ],
            b"{\"hello\": \"world\"}",
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers["x-echo"], "1");
    assert_eq!(headers["content-type"], "application/json");
    assert!(
        headers["x-amzn-trace-id"]
            .to_str()
            .unwrap()
            .starts_with("Root=1-")
    );
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["resource"], "/echo/{proxy+}");
    assert_eq!(event["path"], "/echo/a/b%20c");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["pathParameters"], json!({"proxy": "a/b c"}));
    assert_eq!(event["stageVariables"], json!({"fn": "echo"}));
    assert_eq!(event["queryStringParameters"], json!({"x": "2", "y": "z"}));
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"x": ["1", "2"], "y": ["z"]})
    );
    assert_eq!(event["headers"]["x-dup"], "2");
    assert_eq!(event["multiValueHeaders"]["x-dup"], json!(["1", "2"]));
    assert_eq!(event["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(event["headers"]["x-forwarded-proto"], "http");
    assert_eq!(
        event["headers"]["x-amzn-trace-id"],
        headers["x-amzn-trace-id"].to_str().unwrap()
    );
    assert!(event["headers"].get("content-length").is_none());
    assert_eq!(event["body"], "{\"hello\": \"world\"}");
    assert_eq!(event["isBase64Encoded"], false);
    let rc = &event["requestContext"];
    assert_eq!(rc["accountId"], ACCOUNT);
    assert_eq!(rc["apiId"], "api1");
    assert_eq!(rc["stage"], "prod");
    assert_eq!(rc["path"], "/prod/echo/a/b%20c");
    assert_eq!(rc["resourcePath"], "/echo/{proxy+}");
    assert_eq!(rc["deploymentId"], "dep1");
    assert_eq!(rc["domainName"], HOST);
    assert_eq!(rc["domainPrefix"], "api1");
    assert_eq!(
        rc["requestId"],
        headers["x-amzn-requestid"].to_str().unwrap()
    );
    assert_eq!(
        rc["extendedRequestId"],
        headers["x-amz-apigw-id"].to_str().unwrap()
    );
    assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(rc["identity"]["userAgent"], "tester/1");
    assert_eq!(rc["identity"]["user"], Value::Null);
    let epoch = rc["requestTimeEpoch"].as_u64().unwrap();
    let now = chrono::Utc::now().timestamp_millis() as u64;
    assert!(now.abs_diff(epoch) < 60_000, "{epoch} vs {now}");
    assert_eq!(
        h.seen.lock().unwrap()[0].0,
        "arn:aws:lambda:us-east-1:123456789012:function:echo"
    );

    // A binary request body is base64; a base64 answer is decoded for a
    // caller that accepts the binary type, and passed verbatim otherwise.
    let (_, _, body) = h
        .send(
            "PUT",
            "/prod/echo/bin",
            &[("content-type", "image/png")],
            &[0, 1, 2, 255],
        )
        .await;
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (event["body"].as_str(), event["isBase64Encoded"].as_bool()),
        (Some("AAEC/w=="), Some(true))
    );
    let (status, headers, body) = h
        .send("GET", "/prod/binary", &[("accept", "image/png")], b"")
        .await;
    assert_eq!((status, &body[..]), (200, &[0u8, 1, 2][..]));
    assert_eq!(headers["content-type"], "image/png");
    let (_, _, body) = h.send("GET", "/prod/binary", &[], b"").await;
    assert_eq!(&body[..], b"AAEC");
}

#[tokio::test]
async fn function_faults_are_502_and_invoke_failures_500() {
    let h = Harness::start().await;
    for (path, status) in [
        ("/prod/malformed", 502),
        ("/prod/notjson", 502),
        ("/prod/fails", 502),
        ("/prod/throttled", 500),
        ("/prod/missing", 500),
    ] {
        let (got, headers, body) = h.send("GET", path, &[], b"").await;
        assert_eq!((got, &body[..]), (status, INTERNAL), "{path}");
        assert_eq!(
            headers["x-amzn-errortype"], "InternalServerErrorException",
            "{path}"
        );
        assert_eq!(headers["content-type"], "application/json", "{path}");
    }

    let started = std::time::Instant::now();
    let (status, headers, body) = h.send("GET", "/prod/slow", &[], b"").await;
    assert_eq!(status, 504);
    assert_eq!(&body[..], br#"{"message":"Endpoint request timed out"}"#);
    assert_eq!(headers["x-amzn-errortype"], "InternalServerErrorException");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // Another account's function is never called.
    let before = h.calls();
    let (status, _, _) = h.send("GET", "/prod/foreign", &[], b"").await;
    assert_eq!(status, 500);
    assert_eq!(h.calls(), before);
}

#[tokio::test]
async fn non_proxy_selects_by_error_message() {
    let h = Harness::start().await;
    let (status, headers, body) = h.send("POST", "/prod/custom/ok", &[], br#"{"n": 1}"#).await;
    assert_eq!((status, &body[..]), (200, &br#"{"n":1}"#[..]));
    assert_eq!(headers["x-static"], "yes");
    assert_eq!(headers["content-type"], "application/json");
    // An empty request body is sent as {}.
    let (_, _, body) = h.send("POST", "/prod/custom/ok", &[], b"").await;
    assert_eq!(&body[..], b"{}");

    let (status, _, body) = h
        .send(
            "POST",
            "/prod/custom/fails",
            &[],
            br#"{"fail": "Bad: input"}"#,
        )
        .await;
    assert_eq!(status, 400);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["errorMessage"], "Bad: input");
    let (status, _, _) = h
        .send(
            "POST",
            "/prod/custom/fails",
            &[],
            br#"{"fail": "it Exploded"}"#,
        )
        .await;
    assert_eq!(status, 500);
    // An unmapped error takes the default response, error and all.
    let (status, _, body) = h
        .send("POST", "/prod/custom/fails", &[], br#"{"fail": "other"}"#)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["errorMessage"],
        "other"
    );
    // No match and no default: a configuration error.
    let (status, _, body) = h
        .send(
            "POST",
            "/prod/custom/nodefault",
            &[],
            br#"{"fail": "other"}"#,
        )
        .await;
    assert_eq!(
        (status, &body[..]),
        (500, &br#"{"message":"Internal server error"}"#[..])
    );
}
