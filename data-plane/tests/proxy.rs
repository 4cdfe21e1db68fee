//! End to end: the proxy on a real socket, loaded from a hand-built `Held`,
//! in front of a real backend that echoes what it receives.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use apigw_data_plane::held::{Held, HeldResource};
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
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HOST: &str = "api1.execute-api.example.com";

/// Echoes method, path, query, headers and body as JSON; `/sleep` sleeps
/// first; `/status/N` answers status N.
async fn backend(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    if path == "/sleep" {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<_> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        headers.insert(name.to_string(), Value::String(values.join(", ")));
    }
    let echo = json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": parts.uri.query(),
        "headers": headers,
        "bodyLength": body.len(),
    });
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-backend", "yes")
        .header("connection", "x-hop")
        .header("x-hop", "must-not-pass")
        .body(Full::new(Bytes::from(echo.to_string())))
        .unwrap())
}

async fn start_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(backend)),
            );
        }
    });
    addr
}

fn route(path: &str, method: &str, integration: Value) -> Route {
    Route {
        resource_id: format!("r{}", path.len()),
        path: path.into(),
        http_method: method.into(),
        method: json!({"httpMethod": method, "methodIntegration": integration}),
    }
}

fn stage(
    api_id: &str,
    variables: BTreeMap<String, String>,
    routes: Vec<Route>,
    gateway_responses: Value,
) -> StageSnapshot {
    StageSnapshot {
        stage_name: "prod".into(),
        authorizer_cache_generation: 0,
        variables,
        method_settings: BTreeMap::new(),
        usage_plans: Vec::new(),
        deployment: DeploymentSnapshot {
            account_id: "123456789012".into(),
            api_id: api_id.into(),
            deployment_id: "dep1".into(),
            created_epoch_seconds: 0,
            api: ApiSettings::default(),
            routes,
            gateway_responses: serde_json::from_value(gateway_responses).unwrap(),
            models: BTreeMap::new(),
            request_validators: BTreeMap::new(),
            authorizers: BTreeMap::new(),
        },
    }
}

fn held(version: u64, stages: Vec<StageSnapshot>) -> Held {
    Held::new(
        version,
        stages
            .into_iter()
            .map(|s| {
                (
                    format!("{}/{}", s.deployment.api_id, s.stage_name).into(),
                    HeldResource::from_snapshot(version, &s),
                )
            })
            .collect(),
    )
}

fn config(backend: SocketAddr, down: SocketAddr) -> Held {
    let vars = BTreeMap::from([
        ("backend".to_string(), backend.to_string()),
        ("env".to_string(), "production".to_string()),
    ]);
    let proxy = |uri: &str| json!({"type": "HTTP_PROXY", "httpMethod": "ANY", "uri": uri});
    let api1 = stage(
        "api1",
        vars,
        vec![
            route(
                "/pets/{id}",
                "GET",
                proxy("http://${stageVariables.backend}/echo/{id}?fixed=1"),
            ),
            route(
                "/files/{proxy+}",
                "ANY",
                proxy("http://${stageVariables.backend}/files/{proxy}"),
            ),
            route(
                "/slow",
                "GET",
                json!({"type": "HTTP_PROXY", "httpMethod": "GET", "uri": format!("http://{backend}/sleep"), "timeoutInMillis": 200}),
            ),
            route("/down", "GET", proxy(&format!("http://{down}/"))),
            route(
                "/mapped/{id}",
                "GET",
                json!({
                    "type": "HTTP", "httpMethod": "POST",
                    "uri": "http://${stageVariables.backend}/things/{thing}",
                    "requestParameters": {
                        "integration.request.path.thing": "method.request.path.id",
                        "integration.request.querystring.search": "method.request.querystring.q",
                        "integration.request.header.x-literal": "'lit'",
                        "integration.request.header.x-env": "stageVariables.env",
                        "integration.request.header.x-request-id": "context.requestId",
                        "integration.request.header.x-from-header": "method.request.header.x-in"
                    },
                    "integrationResponses": {
                        "200": {"statusCode": "200", "responseParameters": {
                            "method.response.header.x-backend-said": "integration.response.header.x-backend",
                            "method.response.header.x-static": "'yes'"
                        }}
                    }
                }),
            ),
            route(
                "/status/{code}",
                "GET",
                json!({
                    "type": "HTTP", "httpMethod": "GET",
                    "uri": "http://${stageVariables.backend}/status/{code}",
                    "requestParameters": {"integration.request.path.code": "method.request.path.code"},
                    "integrationResponses": {
                        "2xx": {"statusCode": "200", "selectionPattern": "2\\d\\d"},
                        "4xx": {"statusCode": "400", "selectionPattern": "4\\d\\d", "responseParameters": {
                            "method.response.header.x-raw-body": "integration.response.body"
                        }}
                    }
                }),
            ),
            route(
                "/mock",
                "GET",
                json!({
                    "type": "MOCK",
                    "requestTemplates": {"application/json": "{\"statusCode\": 201}"},
                    "integrationResponses": {
                        "200": {"statusCode": "200"},
                        "201": {"statusCode": "201", "selectionPattern": "201",
                                "responseParameters": {"method.response.header.x-mock": "'m'"},
                                "responseTemplates": {"application/json": "{\"mocked\":true}"}}
                    }
                }),
            ),
            route(
                "/lambda",
                "GET",
                json!({"type": "AWS_PROXY", "httpMethod": "POST", "uri": "arn:aws:lambda"}),
            ),
        ],
        json!({
            "MISSING_AUTHENTICATION_TOKEN": {
                "statusCode": "404",
                "responseParameters": {
                    "gatewayresponse.header.x-probe": "method.request.header.x-probe",
                    "gatewayresponse.header.x-lit": "'a.b.c'"
                },
                "responseTemplates": {"application/json": "{\"custom\":$context.error.messageString,\"stage\":\"$context.stage\"}"}
            }
        }),
    );
    let api2 = stage(
        "api2",
        BTreeMap::new(),
        vec![route("/only", "GET", json!({"type": "MOCK"}))],
        json!({"DEFAULT_4XX": {"statusCode": "418", "responseParameters": {"gatewayresponse.header.x-default": "'4xx'"}}}),
    );
    held(1, vec![api1, api2])
}

struct Harness {
    addr: SocketAddr,
    runtime: RuntimeHandle,
    client: Client<HttpConnector, Full<Bytes>>,
    backend: SocketAddr,
}

impl Harness {
    async fn start() -> Self {
        let backend = start_backend().await;
        // A port nothing listens on.
        let down = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let runtime = RuntimeHandle::new("example.com");
        runtime.apply(&config(backend, down)).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(proxy::serve(
            listener,
            runtime.clone(),
            Metrics::new(),
            std::future::pending(),
        ));
        Self {
            addr,
            runtime,
            client: Client::builder(TokioExecutor::new()).build_http(),
            backend,
        }
    }

    async fn send(
        &self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> (u16, HeaderMap, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("host", host);
        for (n, v) in headers {
            request = request.header(*n, *v);
        }
        let response = self
            .client
            .request(request.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, path: &str) -> (u16, HeaderMap, String) {
        self.send("GET", HOST, path, &[], Bytes::new()).await
    }
}

fn assert_ids(headers: &HeaderMap) {
    let rid = headers["x-amzn-requestid"].to_str().unwrap();
    assert_eq!(rid.len(), 36, "{rid}");
    assert!(headers["x-amz-apigw-id"].to_str().unwrap().ends_with('='));
}

#[tokio::test]
async fn routing_misses() {
    let h = Harness::start().await;
    let (status, headers, body) = h
        .send(
            "GET",
            "nope.execute-api.example.com",
            "/prod/pets/1",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!((status, body.as_str()), (403, r#"{"message":"Forbidden"}"#));
    assert_eq!(headers["x-amzn-errortype"], "ForbiddenException");
    assert_ids(&headers);
    let (status, _, _) = h.get("/staging/pets/1").await;
    assert_eq!(status, 403);

    // api2 has no customised MISSING_AUTHENTICATION_TOKEN, but a DEFAULT_4XX.
    let (status, headers, body) = h
        .send(
            "GET",
            "api2.execute-api.example.com",
            "/prod/elsewhere",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (418, r#"{"message":"Missing Authentication Token"}"#)
    );
    assert_eq!(
        headers["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(headers["x-default"], "4xx");
    assert_ids(&headers);

    // api1 customised MISSING_AUTHENTICATION_TOKEN: status, headers, template.
    let (status, headers, body) = h
        .send(
            "GET",
            HOST,
            "/prod/nowhere",
            &[("x-probe", "p1")],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (
            404,
            r#"{"custom":"Missing Authentication Token","stage":"prod"}"#
        )
    );
    assert_eq!(headers["x-probe"], "p1");
    assert_eq!(headers["x-lit"], "a.b.c");
    assert_ids(&headers);
    // The path form reaches the same API.
    let (status, _, _) = h
        .send(
            "GET",
            "anything",
            "/restapis/api1/prod/_user_request_/nowhere",
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn http_proxy_passes_the_request_through() {
    let h = Harness::start().await;
    let (status, headers, body) = h
        .send(
            "GET",
            HOST,
            "/prod/pets/a%20b?x=1&y=two",
            &[
                ("x-custom", "c"),
                ("connection", "keep-alive, x-drop"),
                ("x-drop", "gone"),
                ("keep-alive", "timeout=5"),
                ("x-forwarded-for", "10.0.0.1"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_ids(&headers);
    assert_eq!(headers["x-backend"], "yes");
    assert!(
        headers.get("x-hop").is_none(),
        "connection-listed response header leaked"
    );
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/echo/a%20b");
    assert_eq!(echo["query"], "fixed=1&x=1&y=two");
    let sent = &echo["headers"];
    assert_eq!(sent["x-custom"], "c");
    assert!(sent.get("x-drop").is_none() && sent.get("keep-alive").is_none());
    assert_eq!(sent["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    assert_eq!(sent["x-forwarded-proto"], "http");
    assert_eq!(sent["x-forwarded-port"], h.addr.port().to_string());
    assert_eq!(sent["host"], h.backend.to_string());

    // Greedy path, ANY method, body.
    let (status, _, body) = h
        .send(
            "PUT",
            HOST,
            "/prod/files/a/b/c.txt",
            &[],
            Bytes::from_static(b"hello"),
        )
        .await;
    assert_eq!(status, 200);
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/files/a/b/c.txt");
    assert_eq!(echo["bodyLength"], 5);
}

#[tokio::test]
async fn http_non_proxy_maps_parameters_and_selects_responses() {
    let h = Harness::start().await;
    let (status, headers, body) = h
        .send(
            "GET",
            HOST,
            "/prod/mapped/42?q=find%20me&other=no",
            &[("x-in", "from-caller"), ("x-not-mapped", "1")],
            Bytes::new(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-backend-said"], "yes");
    assert_eq!(headers["x-static"], "yes");
    assert!(headers.get("x-hop").is_none());
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/things/42");
    assert_eq!(echo["query"], "search=find%20me");
    let sent = &echo["headers"];
    assert_eq!(sent["x-literal"], "lit");
    assert_eq!(sent["x-env"], "production");
    assert_eq!(sent["x-from-header"], "from-caller");
    assert_eq!(
        sent["x-request-id"],
        headers["x-amzn-requestid"].to_str().unwrap()
    );
    assert!(sent.get("x-not-mapped").is_none());

    let (status, headers, _) = h.get("/prod/status/201").await;
    assert_eq!(status, 200);
    assert!(headers.get("x-raw-body").is_none());
    let (status, headers, body) = h.get("/prod/status/404").await;
    assert_eq!(status, 400);
    assert_eq!(headers["x-raw-body"].to_str().unwrap(), body);
    // No pattern matches 500 and there is no default.
    let (status, headers, body) = h.get("/prod/status/500").await;
    assert_eq!(
        (status, body.as_str()),
        (500, r#"{"message":"Internal server error"}"#)
    );
    assert_ids(&headers);
}

#[tokio::test]
async fn mock_and_unsupported_integrations() {
    let h = Harness::start().await;
    let (status, headers, body) = h.get("/prod/mock").await;
    assert_eq!((status, body.as_str()), (201, r#"{"mocked":true}"#));
    assert_eq!(headers["x-mock"], "m");
    assert_eq!(headers["content-type"], "application/json");
    assert_ids(&headers);
    let (status, _, body) = h.get("/prod/lambda").await;
    assert_eq!(
        (status, body.as_str()),
        (500, r#"{"message":"Internal server error"}"#)
    );
}

#[tokio::test]
async fn backend_timeout_and_failure() {
    let h = Harness::start().await;
    let started = std::time::Instant::now();
    let (status, headers, body) = h.get("/prod/slow").await;
    assert_eq!(
        (status, body.as_str()),
        (504, r#"{"message":"Endpoint request timed out"}"#)
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(headers["x-amzn-errortype"], "InternalServerErrorException");
    let (status, headers, body) = h.get("/prod/down").await;
    assert_eq!(
        (status, body.as_str()),
        (504, r#"{"message":"Internal server error"}"#)
    );
    assert_eq!(headers["x-amzn-errortype"], "InternalServerErrorException");
}

async fn raw(addr: SocketAddr, head: String, body_chunks: usize) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 1024 * 1024];
    for _ in 0..body_chunks {
        let frame = format!("{:x}\r\n", chunk.len());
        if stream.write_all(frame.as_bytes()).await.is_err()
            || stream.write_all(&chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    if body_chunks > 0 {
        let _ = stream.write_all(b"0\r\n\r\n").await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn size_limits() {
    let h = Harness::start().await;
    // Declared too large: refused before reading.
    let answer = raw(
        h.addr,
        format!("POST /prod/files/x HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 10485761\r\nConnection: close\r\n\r\n"),
        0,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#"{"message":"Request Too Long"}"#));
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-amzn-errortype: requesttoolargeexception")
    );
    // Chunked past the limit: cut off at 10 MB.
    let answer = raw(
        h.addr,
        format!("POST /prod/files/x HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"),
        11,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Headers over 10,240 bytes.
    let big = "x".repeat(11_000);
    let answer = raw(
        h.addr,
        format!(
            "GET /prod/pets/1 HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {big}\r\nConnection: close\r\n\r\n"
        ),
        0,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.contains(r#"{"message":"Request Header Fields Too Large"}"#));
    assert!(answer.to_ascii_lowercase().contains("x-amzn-requestid"));
}

#[tokio::test]
async fn a_bad_update_is_refused_and_the_old_config_serves() {
    let h = Harness::start().await;
    let bad = held(
        2,
        vec![stage(
            "api1",
            BTreeMap::new(),
            vec![route(
                "/mock",
                "GET",
                json!({"type": "MOCK", "integrationResponses": {"200": {"statusCode": "200", "selectionPattern": "(("}}}),
            )],
            json!({}),
        )],
    );
    let reason = h.runtime.apply(&bad).unwrap_err();
    assert!(reason.contains("selectionPattern"), "{reason}");
    assert_eq!(h.runtime.load().version(), 1);
    let (status, _, body) = h.get("/prod/mock").await;
    assert_eq!((status, body.as_str()), (201, r#"{"mocked":true}"#));
}

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    // Not 10 s in a test: just check a half-sent head does not get an answer quickly
    // and a complete one on a fresh connection does.
    let h = Harness::start().await;
    let mut stream = TcpStream::connect(h.addr).await.unwrap();
    stream
        .write_all(b"GET /prod/mock HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let early = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
    assert!(early.is_err(), "answered a partial head");
}
