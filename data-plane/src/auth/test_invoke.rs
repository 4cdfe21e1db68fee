//! TestInvokeAuthorizer (management API): one simulated call of an
//! authorizer outside any stage. For TOKEN and REQUEST authorizers the
//! identity checks, the event and the judgement of the function's reply are
//! the node's own ([`LambdaAuthorizer`]); the caller performs the function
//! call itself, so the control plane can run it on its function host. A
//! COGNITO_USER_POOLS authorizer's token is verified by the node's own
//! [`CognitoAuthorizer`] against the pool's keys ([`cognito`]).
//!
//! As on AWS, the simulated request is a `GET` of `pathWithQueryString` on
//! stage `test-invoke-stage`, with method ARN stage `ESTestInvoke-stage`, and
//! nothing is cached.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use apigw_proto::gateway_response::ResponseType;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use super::AuthRequest;
use super::jwt::{CognitoAuthorizer, JwtSettings};
use super::lambda_authorizer::{LambdaAuthorizer, function_of, judge};
use crate::integration::Services;
use crate::integration::lambda::FunctionArn;
use crate::integration::mapping::{RequestContext, RequestView};

/// The stage the simulated method ARN names (AWS's).
pub const METHOD_ARN_STAGE: &str = "ESTestInvoke-stage";
/// `requestContext.stage` of the simulated request (AWS's).
pub const CONTEXT_STAGE: &str = "test-invoke-stage";
const HTTP_METHOD: &str = "GET";

/// The simulated request, as TestInvokeAuthorizer describes it.
#[derive(Debug, Clone, Copy)]
pub struct Simulated<'a> {
    pub region: &'a str,
    pub account_id: &'a str,
    pub api_id: &'a str,
    pub authorizer_id: &'a str,
    pub request_id: &'a str,
    pub headers: &'a HeaderMap,
    /// `/pets/1?x=y`; `None`: `/`.
    pub path_with_query_string: Option<&'a str>,
    pub stage_variables: &'a BTreeMap<String, String>,
    /// Values for `context.*` identity sources.
    pub additional_context: &'a BTreeMap<String, String>,
}

/// TestInvokeAuthorizerResponse, less what the caller adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// What the caller of a method behind the authorizer would get: 200 when
    /// the function answered with a usable policy, 401, or 500.
    pub client_status: u16,
    pub latency: Duration,
    pub log: String,
    pub principal_id: Option<String>,
    /// The answer's `policyDocument`, as JSON text.
    pub policy: Option<String>,
    /// The answer's `context`, stringified, each value as a one-element list.
    pub authorization: BTreeMap<String, Vec<String>>,
    /// A user pool token's claims, as strings (COGNITO_USER_POOLS only).
    pub claims: BTreeMap<String, String>,
}

/// What the function call produced: its payload, and whether it is the
/// function's error object (`X-Amz-Function-Error`).
#[derive(Debug, Clone)]
pub struct Reply {
    pub function_error: bool,
    pub body: Bytes,
}

/// The first step: either finished (refused before any call) or a call to make.
#[derive(Debug)]
pub enum Step {
    Done(Outcome),
    Call(PendingCall),
}

/// A call to make, then [`PendingCall::finish`] with its result.
#[derive(Debug)]
pub struct PendingCall {
    pub function: FunctionArn,
    pub payload: Bytes,
    log: Log,
}

/// The execution log, in AWS's `{date} : {line}` form.
#[derive(Debug)]
struct Log {
    text: String,
    started: Instant,
    request_id: String,
}

impl Log {
    fn new(request_id: &str) -> Self {
        Self {
            text: format!("Execution log for request {request_id}\n"),
            started: Instant::now(),
            request_id: request_id.to_owned(),
        }
    }

    fn line(&mut self, line: impl AsRef<str>) {
        let now = chrono::Utc::now().format("%a %b %d %H:%M:%S UTC %Y");
        self.text.push_str(&format!("{now} : {}\n", line.as_ref()));
    }

    fn outcome(self, client_status: u16) -> Outcome {
        Outcome {
            client_status,
            latency: self.started.elapsed(),
            log: self.text,
            ..Outcome::default()
        }
    }

    fn refused(mut self, kind: ResponseType, why: &str) -> Outcome {
        let status = kind.default_status().unwrap_or(500);
        if kind == ResponseType::Unauthorized {
            self.line(format!("Unauthorized request: {}", self.request_id));
            self.line("Unauthorized");
        } else {
            self.line(format!(
                "Execution failed due to configuration error: {why}"
            ));
            self.line("AuthorizerConfigurationException");
        }
        self.outcome(status)
    }
}

/// Identity values as AWS logs them: all but the last six characters masked.
fn masked(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let shown = chars.len().saturating_sub(6);
    let tail: String = chars[shown..].iter().collect();
    format!("********{tail}")
}

/// Checks the identity and builds the event. `Err`: `authorizer` is not a
/// TOKEN or REQUEST authorizer that compiles.
pub fn prepare(authorizer: &Value, sim: &Simulated<'_>) -> Result<Step, String> {
    let compiled = LambdaAuthorizer::compile(
        authorizer,
        sim.stage_variables,
        sim.account_id,
        &Services::default(),
    )?;
    let mut log = Log::new(sim.request_id);
    log.line(format!(
        "Starting authorizer: {} for request: {}",
        sim.authorizer_id, sim.request_id
    ));
    let target = sim.path_with_query_string.unwrap_or("/");
    let (path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    let method_arn = super::arn::method_arn(
        sim.region,
        sim.account_id,
        sim.api_id,
        METHOD_ARN_STAGE,
        HTTP_METHOD,
        path,
    );
    let epoch_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0);
    let view = RequestView {
        headers: sim.headers,
        raw_query,
        path_parameters: None,
        context: RequestContext {
            request_id: sim.request_id,
            extended_request_id: sim.request_id,
            api_id: sim.api_id,
            stage: CONTEXT_STAGE,
            account_id: sim.account_id,
            deployment_id: "test-invoke-deployment-id",
            resource_id: "test-invoke-resource-id",
            // No method is being called: the simulated path stands for its resource.
            resource_path: path,
            http_method: HTTP_METHOD,
            path,
            protocol: "HTTP/1.1",
            domain_name: "testPrefix.testDomainName",
            source_ip: "test-invoke-source-ip",
            request_time_epoch: epoch_ms,
            authorizer: None,
            usage_identifier_key: None,
            api_key: Some("test-invoke-api-key"),
            api_key_id: Some("test-invoke-api-key-id"),
            principal: None,
        },
    };
    let request = AuthRequest {
        view: &view,
        stage_variables: sim.stage_variables,
        path_after_stage: path,
        method_arn: &method_arn,
        context_overrides: Some(sim.additional_context),
    };
    let identity = match compiled.identity(&request) {
        Ok(identity) => identity,
        Err(e) => {
            log.line(
                "The identity source is missing, empty or fails the identity validation expression",
            );
            return Ok(Step::Done(log.refused(e.kind, "")));
        }
    };
    log.line(format!(
        "Incoming identity: {}",
        identity
            .iter()
            .map(|v| masked(v))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let text = |k: &str| authorizer.get(k).and_then(Value::as_str);
    let function = match function_of(text("authorizerUri"), sim.stage_variables, sim.account_id) {
        Ok(f) => f,
        Err(why) => {
            return Ok(Step::Done(
                log.refused(ResponseType::AuthorizerConfigurationError, &why),
            ));
        }
    };
    let event = compiled.event(&request, &identity);
    let payload = serde_json::to_vec(&event).unwrap_or_default();
    log.line(format!("Endpoint request URI: {function}"));
    log.line(format!(
        "Endpoint request body after transformations: {}",
        String::from_utf8_lossy(&payload)
    ));
    log.line(format!("Sending request to {function}"));
    Ok(Step::Call(PendingCall {
        function,
        payload: Bytes::from(payload),
        log,
    }))
}

/// Verifies the simulated request's token as a node verifies it on a method
/// without `authorizationScopes` (so an ID token is required, as on AWS):
/// 200 with the token's claims, or 401. `Err`: `authorizer` does not
/// compile as a COGNITO_USER_POOLS authorizer.
pub async fn cognito(
    authorizer: &Value,
    settings: &JwtSettings,
    sim: &Simulated<'_>,
) -> Result<Outcome, String> {
    let compiled = CognitoAuthorizer::compile(authorizer, settings)?;
    let mut log = Log::new(sim.request_id);
    log.line(format!(
        "Starting authorizer: {} for request: {}",
        sim.authorizer_id, sim.request_id
    ));
    match compiled.token(sim.headers) {
        Some(token) => log.line(format!("Incoming identity: {}", masked(token))),
        None => log.line("The identity source is missing or empty"),
    }
    let context = match compiled.authorize(sim.headers, &[]).await {
        Ok(context) => context,
        Err(e) => return Ok(log.refused(e.kind, "")),
    };
    // `authorize` hands the claims over as strings (REST's form).
    let claims = context
        .get("claims")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    log.line(format!(
        "Successfully completed authorizer execution for request: {}",
        log.request_id
    ));
    Ok(Outcome {
        claims,
        ..log.outcome(200)
    })
}

impl PendingCall {
    /// Judges the function's reply (`Err`: the call itself failed).
    pub fn finish(self, reply: Result<Reply, String>) -> Outcome {
        let mut log = self.log;
        let reply = match reply {
            Ok(r) => r,
            Err(why) => {
                return log.refused(
                    ResponseType::AuthorizerConfigurationError,
                    &format!("Lambda invocation failed: {why}"),
                );
            }
        };
        log.line(format!(
            "Authorizer result body before parsing: {}",
            String::from_utf8_lossy(&reply.body)
        ));
        let answer = match judge(reply.function_error, &reply.body, log.started.elapsed()) {
            Ok(a) => a,
            Err(refusal) => return log.refused(refusal.kind, &refusal.why),
        };
        log.line(format!(
            "Using valid authorizer policy for principal: {}",
            masked(&answer.principal_id)
        ));
        log.line(format!(
            "Successfully completed authorizer execution for request: {}",
            log.request_id
        ));
        // `judge` accepted the body, so it is a JSON object with a policyDocument.
        let policy = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("policyDocument").map(Value::to_string));
        let authorization = answer
            .context
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "principalId" | "integrationLatency"))
            .filter_map(|(k, v)| Some((k.clone(), vec![v.as_str()?.to_owned()])))
            .collect();
        Outcome {
            principal_id: Some(answer.principal_id),
            policy,
            authorization,
            ..log.outcome(200)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ACCOUNT: &str = "123456789012";

    fn token_authorizer() -> Value {
        json!({"type": "TOKEN", "identitySource": "method.request.header.Authorization",
            "identityValidationExpression": "tok-.*",
            "authorizerUri": format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:{ACCOUNT}:function:${{stageVariables.fn}}/invocations")})
    }

    fn simulate<'a>(
        headers: &'a HeaderMap,
        vars: &'a BTreeMap<String, String>,
        extra: &'a BTreeMap<String, String>,
        path: Option<&'a str>,
    ) -> Simulated<'a> {
        Simulated {
            region: "us-east-1",
            account_id: ACCOUNT,
            api_id: "abc123",
            authorizer_id: "az1",
            request_id: "req-1",
            headers,
            path_with_query_string: path,
            stage_variables: vars,
            additional_context: extra,
        }
    }

    fn call(step: Step) -> PendingCall {
        match step {
            Step::Call(c) => c,
            Step::Done(o) => panic!("refused: {o:?}"),
        }
    }

    #[test]
    fn token_events_name_the_test_stage_and_the_stage_variable_function() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "tok-abcdefghij".parse().unwrap());
        let vars = BTreeMap::from([("fn".to_owned(), "auth".to_owned())]);
        let none = BTreeMap::new();
        let pending = call(
            prepare(
                &token_authorizer(),
                &simulate(&headers, &vars, &none, Some("/pets/1?x=1")),
            )
            .unwrap(),
        );
        assert_eq!(
            pending.function.to_string(),
            format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:auth")
        );
        let event: Value = serde_json::from_slice(&pending.payload).unwrap();
        assert_eq!(
            event,
            json!({"type": "TOKEN", "authorizationToken": "tok-abcdefghij",
                "methodArn": format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/ESTestInvoke-stage/GET/pets/1")})
        );
        // The token is masked in the log.
        assert!(
            pending
                .log
                .text
                .contains("Incoming identity: ********efghij")
        );
        assert!(!pending.log.text.contains("tok-abcdefghij\n"));
    }

    #[test]
    fn a_missing_or_invalid_token_is_401_without_a_call() {
        let vars = BTreeMap::from([("fn".to_owned(), "auth".to_owned())]);
        let none = BTreeMap::new();
        let mut wrong = HeaderMap::new();
        wrong.insert("authorization", "nope".parse().unwrap());
        for headers in [HeaderMap::new(), wrong] {
            match prepare(&token_authorizer(), &simulate(&headers, &vars, &none, None)).unwrap() {
                Step::Done(o) => {
                    assert_eq!(o.client_status, 401);
                    assert!(o.log.contains("Unauthorized request: req-1"), "{}", o.log);
                }
                Step::Call(_) => panic!("called without an identity"),
            }
        }
    }

    #[test]
    fn another_accounts_function_is_500_without_a_call() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "tok-1".parse().unwrap());
        let none = BTreeMap::new();
        let mut a = token_authorizer();
        a["authorizerUri"] = json!(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:999999999999:function:x/invocations"
        );
        match prepare(&a, &simulate(&headers, &none, &none, None)).unwrap() {
            Step::Done(o) => assert_eq!(o.client_status, 500),
            Step::Call(c) => panic!("would call {}", c.function),
        }
    }

    #[test]
    fn request_sources_read_query_stage_variables_and_additional_context() {
        let a = json!({"type": "REQUEST",
            "identitySource": "method.request.header.X-User, method.request.querystring.team, stageVariables.v, context.tenant",
            "authorizerUri": format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:{ACCOUNT}:function:auth/invocations")});
        let mut headers = HeaderMap::new();
        headers.insert("x-user", "ann".parse().unwrap());
        let vars = BTreeMap::from([("v".to_owned(), "1".to_owned())]);
        let extra = BTreeMap::from([("tenant".to_owned(), "t9".to_owned())]);
        let pending =
            call(prepare(&a, &simulate(&headers, &vars, &extra, Some("/x?team=blue"))).unwrap());
        let event: Value = serde_json::from_slice(&pending.payload).unwrap();
        assert_eq!(event["type"], "REQUEST");
        assert_eq!(event["headers"]["x-user"], "ann");
        assert_eq!(event["queryStringParameters"], json!({"team": "blue"}));
        assert_eq!(event["stageVariables"], json!({"v": "1"}));
        assert_eq!(event["requestContext"]["stage"], "test-invoke-stage");
        assert!(event.get("body").is_none());
        // Without the additional context value: 401.
        let none = BTreeMap::new();
        assert!(matches!(
            prepare(&a, &simulate(&headers, &vars, &none, Some("/x?team=blue"))).unwrap(),
            Step::Done(Outcome {
                client_status: 401,
                ..
            })
        ));
    }

    fn finished(reply: Result<Reply, String>) -> Outcome {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "tok-1".parse().unwrap());
        let vars = BTreeMap::from([("fn".to_owned(), "auth".to_owned())]);
        let none = BTreeMap::new();
        call(prepare(&token_authorizer(), &simulate(&headers, &vars, &none, None)).unwrap())
            .finish(reply)
    }

    #[test]
    fn replies_are_judged_as_the_data_plane_does() {
        let body = br#"{"principalId":"u1","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Deny","Resource":"*"}]},"context":{"tier":"gold","n":7}}"#;
        let o = finished(Ok(Reply {
            function_error: false,
            body: Bytes::from_static(body),
        }));
        assert_eq!(o.client_status, 200);
        assert_eq!(o.principal_id.as_deref(), Some("u1"));
        let policy: Value = serde_json::from_str(o.policy.as_deref().unwrap()).unwrap();
        assert_eq!(policy["Statement"][0]["Effect"], "Deny");
        assert_eq!(
            o.authorization,
            BTreeMap::from([
                ("n".to_owned(), vec!["7".to_owned()]),
                ("tier".to_owned(), vec!["gold".to_owned()])
            ])
        );
        let unauthorized = Reply {
            function_error: true,
            body: Bytes::from_static(br#"{"errorMessage":"Unauthorized","errorType":"Exception"}"#),
        };
        assert_eq!(finished(Ok(unauthorized)).client_status, 401);
        let crash = Reply {
            function_error: true,
            body: Bytes::from_static(br#"{"errorMessage":"boom"}"#),
        };
        let o = finished(Ok(crash));
        assert_eq!((o.client_status, o.principal_id), (500, None));
        assert!(o.log.contains("boom"), "{}", o.log);
        let nested = Reply {
            function_error: false,
            body: Bytes::from_static(
                br#"{"principalId":"u","policyDocument":{"Statement":[]},"context":{"o":{"x":1}}}"#,
            ),
        };
        assert_eq!(finished(Ok(nested)).client_status, 500);
        assert_eq!(finished(Err("no such function".into())).client_status, 500);
    }

    // A user pool of our own: a test-only RSA key (testdata/, PKCS#1) whose
    // public half `pool-jwks.json` publishes as kid `test-key-1`.
    const POOL_KEY: &str = include_str!("testdata/pool-key.pem");
    const POOL_JWKS: &str = include_str!("testdata/pool-jwks.json");
    const POOL: &str = "us-east-1_pool";
    const CLIENT: &str = "app-client-a";

    /// Serves the pool's keys at `/{POOL}/.well-known/jwks.json`: the base URL.
    async fn serve_jwks() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let wanted = format!("GET /{POOL}/.well-known/jwks.json ");
                    let (status, body) = if head.starts_with(wanted.as_bytes()) {
                        ("200 OK", POOL_JWKS)
                    } else {
                        ("404 Not Found", "{}")
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}")
    }

    fn sign(claims: &Value) -> String {
        use base64::Engine as _;
        let der: String = POOL_KEY
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(der)
            .unwrap();
        let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("test-key-1".into());
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn id_token(overrides: Value) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({"sub": "s-1", "aud": CLIENT, "token_use": "id",
            "cognito:username": "alice", "email_verified": true, "iat": now, "exp": now + 600,
            "iss": format!("https://cognito-idp.us-east-1.amazonaws.com/{POOL}")});
        for (k, v) in overrides.as_object().unwrap() {
            claims[k] = v.clone();
        }
        sign(&claims)
    }

    async fn cognito_test(header: Option<&str>) -> Outcome {
        let settings = JwtSettings {
            issuer_base_url: None,
            jwks_base_url: Some(serve_jwks().await),
        };
        let a = json!({"type": "COGNITO_USER_POOLS", "identitySource": "method.request.header.X-Token",
            "identityValidationExpression": CLIENT,
            "providerARNs": [format!("arn:aws:cognito-idp:us-east-1:{ACCOUNT}:userpool/{POOL}")]});
        let mut headers = HeaderMap::new();
        if let Some(h) = header {
            headers.insert("x-token", h.parse().unwrap());
        }
        let none = BTreeMap::new();
        cognito(&a, &settings, &simulate(&headers, &none, &none, None))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn cognito_tokens_are_verified_against_the_pools_keys() {
        let token = id_token(json!({}));
        let o = cognito_test(Some(&token)).await;
        assert_eq!(o.client_status, 200, "{}", o.log);
        assert_eq!(o.claims["cognito:username"], "alice");
        assert_eq!(o.claims["aud"], CLIENT);
        // Every claim a string, as on REST APIs.
        assert_eq!(o.claims["email_verified"], "true");
        assert!(o.claims["exp"].parse::<i64>().is_ok());
        assert_eq!((o.principal_id, o.policy), (None, None));
        assert!(o.authorization.is_empty());
        let tail: String = token.chars().skip(token.len() - 6).collect();
        assert!(
            o.log
                .contains(&format!("Incoming identity: ********{tail}\n")),
            "{}",
            o.log
        );
        assert!(!o.log.contains(&token));
        assert!(
            o.log
                .contains("Successfully completed authorizer execution for request: req-1")
        );
        // `Bearer ` is accepted as the nodes accept it.
        let bearer = cognito_test(Some(&format!("Bearer {token}"))).await;
        assert_eq!(bearer.client_status, 200, "{}", bearer.log);
    }

    #[tokio::test]
    async fn bad_cognito_tokens_are_401() {
        let now = chrono::Utc::now().timestamp();
        let (head, _, sig) = {
            let t = id_token(json!({}));
            let mut parts = t.split('.').map(str::to_owned);
            (parts.next().unwrap(), parts.next(), parts.next().unwrap())
        };
        let other_payload = id_token(json!({"cognito:username": "mallory"}));
        let tampered = format!("{head}.{}.{sig}", other_payload.split('.').nth(1).unwrap());
        for (why, token) in [
            ("missing", None),
            ("not a JWT", Some("nope".to_owned())),
            ("expired", Some(id_token(json!({"exp": now - 60})))),
            ("not yet valid", Some(id_token(json!({"nbf": now + 600})))),
            (
                "wrong audience",
                Some(id_token(json!({"aud": "app-client-b"}))),
            ),
            (
                "an access token",
                Some(id_token(json!({"token_use": "access"}))),
            ),
            (
                "another issuer",
                Some(id_token(json!({"iss": "https://evil.example.com/p"}))),
            ),
            ("tampered", Some(tampered)),
        ] {
            let o = cognito_test(token.as_deref()).await;
            assert_eq!(o.client_status, 401, "{why}: {}", o.log);
            assert!(o.claims.is_empty(), "{why}");
            assert!(
                o.log.contains("Unauthorized request: req-1"),
                "{why}: {}",
                o.log
            );
        }
    }
}
