//! Who may call a method, decided after routing and before the integration
//! (reference §7): the method's `authorizationType` (NONE, AWS_IAM, CUSTOM,
//! COGNITO_USER_POOLS) and the API's resource policy, combined in AWS's order
//! — an explicit Deny anywhere wins; with a resource policy and no other
//! authorization, the policy must Allow.
//!
//! Compiled once per stage ([`StageAuth`], parallel to the routes); a
//! request only evaluates. AWS_IAM methods verify the caller's SigV4
//! signature with the day-scoped keys of the node's principals
//! ([`principals`]), then combine the caller's identity policy with the
//! resource policy as AWS does (reference §7.1): an explicit Deny in either
//! wins; within one account either may allow; across accounts both must.

pub mod arn;
pub mod iam;
pub mod jwt;
pub mod lambda_authorizer;
pub mod policy;
pub mod principals;
pub mod test_invoke;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use apigw_proto::gateway_response::ResponseType;
use apigw_proto::snapshot::StageSnapshot;
use http::HeaderName;
use http::request::Parts;
use serde_json::{Map, Value};

use crate::gateway_response::GatewayError;
use crate::integration::Services;
use crate::integration::mapping::RequestView;
use jwt::{CognitoAuthorizer, JwtSettings};
use lambda_authorizer::LambdaAuthorizer;
use policy::{Decision, Facts, Policy};
use principals::{Principal, Principals};

/// Node-wide settings authorization needs.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The node's region: method ARNs name it.
    pub region: String,
    /// Headers the operator's private network edge sets (and strips from
    /// callers) with the caller's VPC and VPC endpoint ids, read as
    /// `aws:SourceVpc` / `aws:SourceVpce`. `None`: those keys are never present.
    pub source_vpc_header: Option<HeaderName>,
    pub source_vpce_header: Option<HeaderName>,
    /// Where Cognito user pools' keys are fetched and which issuer they name.
    pub jwt: JwtSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            source_vpc_header: None,
            source_vpce_header: None,
            jwt: JwtSettings::default(),
        }
    }
}

/// What a request gains by passing authorization.
#[derive(Debug, Default)]
pub struct Authorized {
    /// `requestContext.authorizer` / `$context.authorizer.*`: `principalId`
    /// and the authorizer's context, stringified.
    pub context: Option<Map<String, Value>>,
    /// A Lambda authorizer's `usageIdentifierKey` (API key source AUTHORIZER).
    pub usage_identifier_key: Option<String>,
    /// The IAM caller of an AWS_IAM method (`$context.identity.userArn` …).
    pub principal: Option<Arc<Principal>>,
}

impl Authorized {
    /// The view with the authorizer's output in its `$context`.
    pub fn attach<'v>(&'v self, mut view: RequestView<'v>) -> RequestView<'v> {
        view.context.authorizer = self.context.as_ref();
        view.context.usage_identifier_key = self.usage_identifier_key.as_deref();
        view.context.principal = self.principal.as_deref();
        view
    }
}

/// What SigV4 verification of an AWS_IAM method needs beyond the view.
pub struct Signed<'a> {
    pub parts: &'a Parts,
    /// The whole body: read before authorization on AWS_IAM methods, whose
    /// signatures cover it ([`StageAuth::needs_body`]).
    pub body: &'a [u8],
    pub principals: &'a Principals,
    /// What [`StageAuth::precheck_signature`] already checked before the
    /// body was read; `None`: [`StageAuth::authorize`] checks it all. Boxed:
    /// every request's authorization future carries this field.
    pub prechecked: Option<Box<iam::Prechecked>>,
}

/// One route's authorization.
#[derive(Debug)]
enum RouteAuth {
    None,
    Iam,
    Custom(Arc<LambdaAuthorizer>),
    /// With the method's `authorizationScopes`.
    Cognito(Arc<CognitoAuthorizer>, Vec<String>),
    /// The method names an authorizer this deployment lacks: 500.
    Broken(String),
}

/// A stage's authorization, compiled.
#[derive(Debug)]
pub struct StageAuth {
    /// Parallel to the deployment's routes.
    routes: Box<[RouteAuth]>,
    /// `Err`: the stored policy does not parse; every request is refused.
    resource_policy: Option<Result<Policy, String>>,
    settings: AuthSettings,
    /// REQUEST authorizers see them (event and identity sources).
    stage_variables: BTreeMap<String, String>,
}

impl Default for StageAuth {
    fn default() -> Self {
        Self {
            routes: Box::new([]),
            resource_policy: None,
            settings: AuthSettings::default(),
            stage_variables: BTreeMap::new(),
        }
    }
}

/// The request as an authorizer sees it.
pub struct AuthRequest<'a> {
    pub view: &'a RequestView<'a>,
    pub stage_variables: &'a BTreeMap<String, String>,
    pub path_after_stage: &'a str,
    pub method_arn: &'a str,
    /// `context.*` identity sources read here first (TestInvokeAuthorizer's
    /// `additionalContext`); `None` on the request path.
    pub context_overrides: Option<&'a BTreeMap<String, String>>,
}

impl StageAuth {
    pub fn compile(snapshot: &StageSnapshot, services: &Services) -> Result<Self, String> {
        let deployment = &snapshot.deployment;
        let mut authorizers: HashMap<&str, Arc<LambdaAuthorizer>> = HashMap::new();
        let mut pools: HashMap<&str, Arc<CognitoAuthorizer>> = HashMap::new();
        for (id, a) in &deployment.authorizers {
            if a.get("type").and_then(Value::as_str) == Some("COGNITO_USER_POOLS") {
                let compiled = CognitoAuthorizer::compile(a, &services.auth.jwt)
                    .map_err(|e| format!("authorizer {id}: {e}"))?;
                pools.insert(id, Arc::new(compiled));
            } else if matches!(
                a.get("type").and_then(Value::as_str),
                Some("TOKEN" | "REQUEST")
            ) {
                let compiled = LambdaAuthorizer::compile(
                    a,
                    &snapshot.variables,
                    &deployment.account_id,
                    services,
                )
                .map_err(|e| format!("authorizer {id}: {e}"))?;
                authorizers.insert(id, Arc::new(compiled));
            }
        }
        let routes = deployment
            .routes
            .iter()
            .map(|route| {
                let m = &route.method;
                let id = m.get("authorizerId").and_then(Value::as_str);
                match m.get("authorizationType").and_then(Value::as_str) {
                    None | Some("NONE") => RouteAuth::None,
                    Some("AWS_IAM") => RouteAuth::Iam,
                    Some("CUSTOM") => match id.and_then(|id| authorizers.get(id)) {
                        Some(a) => RouteAuth::Custom(a.clone()),
                        None => RouteAuth::Broken(format!("authorizer {id:?} is not deployed")),
                    },
                    Some("COGNITO_USER_POOLS") => match id.and_then(|id| pools.get(id)) {
                        Some(a) => {
                            let scopes = m
                                .get("authorizationScopes")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect();
                            RouteAuth::Cognito(a.clone(), scopes)
                        }
                        None => RouteAuth::Broken(format!("authorizer {id:?} is not deployed")),
                    },
                    Some(other) => RouteAuth::Broken(format!("authorizationType {other}")),
                }
            })
            .collect();
        let resource_policy = deployment
            .api
            .policy
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let api_arn = format!(
                    "arn:aws:execute-api:{}:{}:{}",
                    services.auth.region, deployment.account_id, deployment.api_id
                );
                Policy::parse(p)
                    .map(|p| p.expand_api_shorthand(&api_arn))
                    .map_err(|e| e.to_string())
            });
        Ok(Self {
            routes,
            resource_policy,
            settings: services.auth.clone(),
            stage_variables: snapshot.variables.clone(),
        })
    }

    /// Whether the route verifies a signature over the body (AWS_IAM), so
    /// the body must be read before [`Self::authorize`].
    pub fn needs_body(&self, route_index: usize) -> bool {
        matches!(self.routes.get(route_index), Some(RouteAuth::Iam))
    }

    /// On an AWS_IAM route, refuses what no body could make valid (no or a
    /// malformed signature, an unknown key, a stale date) before the body
    /// is read; [`Self::authorize`] then checks the rest.
    pub fn precheck_signature(
        &self,
        parts: &Parts,
        principals: &Principals,
    ) -> Result<iam::Prechecked, GatewayError> {
        iam::precheck(
            parts,
            &self.settings.region,
            chrono::Utc::now(),
            |id, day| principals.get(id)?.signing_key(day),
        )
    }

    /// Whether anyone may call the route at `route_index`: no authorizer, no
    /// resource policy. [`Self::authorize`] would let every request through.
    pub fn is_open(&self, route_index: usize) -> bool {
        matches!(
            self.routes.get(route_index).unwrap_or(&RouteAuth::None),
            RouteAuth::None
        ) && self.resource_policy.is_none()
    }

    /// Decides whether the request at `route_index` may proceed.
    pub async fn authorize(
        &self,
        route_index: usize,
        view: &RequestView<'_>,
        signed: Signed<'_>,
    ) -> Result<Authorized, GatewayError> {
        if self.is_open(route_index) {
            return Ok(Authorized::default());
        }
        let route = self.routes.get(route_index).unwrap_or(&RouteAuth::None);
        let c = &view.context;
        let path_after_stage =
            crate::integration::lambda::path_after_stage(c.path, c.api_id, c.stage);
        let method_arn = arn::method_arn(
            &self.settings.region,
            c.account_id,
            c.api_id,
            c.stage,
            c.http_method,
            path_after_stage,
        );
        let header = |h: &Option<HeaderName>| {
            h.as_ref()
                .and_then(|h| view.headers.get(h))
                .and_then(|v| v.to_str().ok())
        };
        let facts = Facts {
            action: "execute-api:Invoke",
            resource: &method_arn,
            source_ip: c.source_ip.parse::<IpAddr>().ok(),
            source_vpc: header(&self.settings.source_vpc_header),
            source_vpce: header(&self.settings.source_vpce_header),
            caller: None,
        };
        // Resource policy, first pass: an explicit Deny stops everything
        // before any authorizer runs. IAM callers are judged once their
        // identity is known, since the policy may name it.
        let resource = match &self.resource_policy {
            None => Decision::Silent,
            Some(_) if matches!(route, RouteAuth::Iam) => Decision::Silent,
            Some(Err(why)) => {
                tracing::warn!(api_id = c.api_id, error = %why, "resource policy does not parse; refusing");
                return Err(anonymous_denied(&method_arn, true));
            }
            Some(Ok(policy)) => policy.evaluate(&facts),
        };
        if resource == Decision::ExplicitDeny {
            return Err(anonymous_denied(&method_arn, true));
        }
        match route {
            RouteAuth::None => {
                // With a resource policy and nothing else, it must Allow.
                if resource == Decision::Allow {
                    Ok(Authorized::default())
                } else {
                    Err(anonymous_denied(&method_arn, false))
                }
            }
            RouteAuth::Iam => self.authorize_iam(&facts, &method_arn, c.account_id, signed),
            RouteAuth::Cognito(authorizer, scopes) => {
                let context = authorizer.authorize(view.headers, scopes).await?;
                Ok(Authorized {
                    context: Some(context),
                    ..Authorized::default()
                })
            }
            RouteAuth::Broken(why) => {
                tracing::warn!(api_id = c.api_id, error = %why, "method authorization misconfigured");
                Err(GatewayError::new(
                    ResponseType::AuthorizerConfigurationError,
                ))
            }
            RouteAuth::Custom(authorizer) => {
                let request = AuthRequest {
                    view,
                    stage_variables: &self.stage_variables,
                    path_after_stage,
                    method_arn: &method_arn,
                    context_overrides: None,
                };
                let answer = authorizer.answer(&request).await?;
                match answer.policy.evaluate(&Facts {
                    caller: None,
                    ..facts
                }) {
                    Decision::Allow => Ok(Authorized {
                        context: Some(answer.context.clone()),
                        usage_identifier_key: answer.usage_identifier_key.clone(),
                        principal: None,
                    }),
                    Decision::ExplicitDeny => Err(GatewayError::with_message(
                        ResponseType::AccessDenied,
                        "User is not authorized to access this resource with an explicit deny",
                    )),
                    Decision::Silent => Err(GatewayError::new(ResponseType::AccessDenied)),
                }
            }
        }
    }
}

impl StageAuth {
    /// An AWS_IAM method: the signature, then the caller's identity policy
    /// and the resource policy, combined as AWS does (reference §7.1).
    fn authorize_iam(
        &self,
        facts: &Facts<'_>,
        method_arn: &str,
        api_account: &str,
        signed: Signed<'_>,
    ) -> Result<Authorized, GatewayError> {
        let prechecked = match signed.prechecked {
            Some(p) => *p,
            None => self.precheck_signature(signed.parts, signed.principals)?,
        };
        let signer = prechecked.finish(signed.parts, signed.body)?;
        let principal = signed
            .principals
            .get(signer.access_key_id.as_str())
            .cloned()
            .ok_or_else(|| {
                GatewayError::with_message(
                    ResponseType::AccessDenied,
                    "The security token included in the request is invalid.",
                )
            })?;
        let facts = Facts {
            caller: Some(&principal.caller),
            ..facts.clone()
        };
        let resource = match &self.resource_policy {
            None => Decision::Silent,
            Some(Ok(policy)) => policy.evaluate(&facts),
            Some(Err(why)) => {
                tracing::warn!(error = %why, "resource policy does not parse; refusing");
                Decision::ExplicitDeny
            }
        };
        let identity = principal.identity_decision(&facts);
        let own_account = api_account == principal.account_id;
        let why = match (identity, resource) {
            (Decision::ExplicitDeny, _) | (_, Decision::ExplicitDeny) => {
                Some(" with an explicit deny")
            }
            (Decision::Allow, Decision::Allow) => None,
            (Decision::Allow, Decision::Silent) if own_account => None,
            (Decision::Silent, Decision::Allow) if own_account => None,
            (Decision::Allow, Decision::Silent) => {
                Some(" because no resource-based policy allows the execute-api:Invoke action")
            }
            (Decision::Silent, _) => {
                Some(" because no identity-based policy allows the execute-api:Invoke action")
            }
        };
        match why {
            Some(why) => Err(iam_denied(&principal, method_arn, why)),
            None => Ok(Authorized {
                principal: Some(principal),
                ..Authorized::default()
            }),
        }
    }
}

/// AWS's resource-policy refusal of a caller without an IAM identity.
fn anonymous_denied(method_arn: &str, explicit: bool) -> GatewayError {
    GatewayError::with_message(
        ResponseType::AccessDenied,
        format!(
            "User: anonymous is not authorized to perform: execute-api:Invoke on resource: {method_arn}{}",
            if explicit {
                " with an explicit deny"
            } else {
                ""
            }
        ),
    )
}

/// AWS's refusal of an IAM caller (reference §7.1).
fn iam_denied(principal: &Principal, method_arn: &str, why: &str) -> GatewayError {
    GatewayError::with_message(
        ResponseType::AccessDenied,
        format!(
            "User: {} is not authorized to perform: execute-api:Invoke on resource: {method_arn}{why}",
            principal.arn
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use http::HeaderMap;
    use serde_json::json;

    use super::*;
    use crate::integration::mapping::{RequestContext, Side, ValueSource};

    #[test]
    fn authorizer_output_reaches_context_mappings() {
        let output = json!({"principalId": "u1", "n": "7", "claims": {"email": "a@b.c", "exp": 5}});
        let authorized = Authorized {
            context: output.as_object().cloned(),
            usage_identifier_key: Some("key".into()),
            principal: None,
        };
        let headers = HeaderMap::new();
        let view = authorized.attach(RequestView {
            headers: &headers,
            raw_query: None,
            path_parameters: None,
            context: RequestContext::default(),
        });
        assert_eq!(view.context.usage_identifier_key, Some("key"));
        let vars = BTreeMap::new();
        let resolve = |expr: &str| {
            ValueSource::parse(expr, Side::IntegrationRequest, &vars)
                .unwrap()
                .resolve(&view, None)
                .map(|v| v.into_owned())
        };
        assert_eq!(
            resolve("context.authorizer.principalId").as_deref(),
            Some("u1")
        );
        assert_eq!(
            resolve("context.authorizer.claims.email").as_deref(),
            Some("a@b.c")
        );
        assert_eq!(
            resolve("context.authorizer.claims.exp").as_deref(),
            Some("5")
        );
        assert_eq!(resolve("context.authorizer.missing"), None);
        assert_eq!(resolve("context.authorizer.principalId.deeper"), None);
    }

    #[tokio::test]
    async fn routes_without_authorization_or_policy_pass_untouched() {
        let auth = StageAuth::default();
        let headers = HeaderMap::new();
        let view = RequestView {
            headers: &headers,
            raw_query: None,
            path_parameters: None,
            context: RequestContext::default(),
        };
        let parts = http::Request::new(()).into_parts().0;
        let principals = Principals::new();
        let signed = Signed {
            parts: &parts,
            body: b"",
            principals: &principals,
            prechecked: None,
        };
        let out = auth.authorize(0, &view, signed).await.unwrap();
        assert!(out.context.is_none());
    }

    /// AWS_IAM decisions (reference §7.1) with SDK-signed requests: within an
    /// account the identity or the resource policy may allow; across
    /// accounts both must; an explicit Deny anywhere wins.
    #[tokio::test]
    async fn iam_callers_are_judged_by_both_policies() {
        use super::iam::testing::signed_by;

        const API: &str = "arn:aws:execute-api:us-east-1:111111111111:abc";
        let now = chrono::Utc::now();
        let principal = |key: &str, account: &str, name: &str, policy: Option<&str>| {
            let arn = if name == "root" {
                format!("arn:aws:iam::{account}:root")
            } else {
                format!("arn:aws:iam::{account}:user/{name}")
            };
            let day = now.format("%Y%m%d").to_string();
            let body = serde_json::json!({
                "accessKeyId": key, "accountId": account, "arn": arn, "uniqueId": format!("AIDA{name}"),
                "admin": policy.is_none(), "policy": policy,
                "signingKeys": {day: hex::encode(iam::derive_key(key, now, "us-east-1"))},
            });
            let p = Principal::compile(&serde_json::to_vec(&body).unwrap()).unwrap();
            (Arc::<str>::from(key), Arc::new(p))
        };
        let allow_all =
            r#"{"Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}]}"#;
        let nothing = r#"{"Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:zzz/*"}]}"#;
        let deny_all =
            r#"{"Statement":[{"Effect":"Deny","Action":"execute-api:*","Resource":"*"}]}"#;
        let principals: Principals = [
            principal("AKIAOWNALL", "111111111111", "own-all", Some(allow_all)),
            principal("AKIAOWNNONE", "111111111111", "own-none", Some(nothing)),
            principal("AKIAOWNDENY", "111111111111", "own-deny", Some(deny_all)),
            principal("AKIAOTHERALL", "222222222222", "other-all", Some(allow_all)),
            principal("AKIAOTHERROOT", "222222222222", "root", None),
        ]
        .into_iter()
        .collect();
        let auth = |policy: Option<&str>| StageAuth {
            routes: Box::new([RouteAuth::Iam]),
            resource_policy: policy.map(|p| Ok(Policy::parse(p).unwrap())),
            ..StageAuth::default()
        };
        async fn judge(
            auth: &StageAuth,
            principals: &Principals,
            key: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<Option<String>, String> {
            let uri = "http://abc.execute-api.localhost/prod/pets";
            let parts = signed_by((key, key), "GET", uri, b"", now, "execute-api");
            let view = RequestView {
                headers: &parts.headers,
                raw_query: None,
                path_parameters: None,
                context: RequestContext {
                    account_id: "111111111111",
                    api_id: "abc",
                    stage: "prod",
                    http_method: "GET",
                    path: "/prod/pets",
                    ..Default::default()
                },
            };
            let signed = Signed {
                parts: &parts,
                body: b"",
                principals,
                prechecked: None,
            };
            auth.authorize(0, &view, signed)
                .await
                .map(|a| a.principal.map(|p| p.arn.clone()))
                .map_err(|e| e.message)
        }
        let decide = |auth, key| judge(auth, &principals, key, now);
        let none = auth(None);
        assert_eq!(
            decide(&none, "AKIAOWNALL").await,
            Ok(Some("arn:aws:iam::111111111111:user/own-all".into()))
        );
        let e = decide(&none, "AKIAOWNNONE").await.unwrap_err();
        assert!(e.ends_with(&format!("{API}/prod/GET/pets because no identity-based policy allows the execute-api:Invoke action")), "{e}");
        assert!(
            decide(&none, "AKIAOWNDENY")
                .await
                .unwrap_err()
                .ends_with("with an explicit deny")
        );
        let e = decide(&none, "AKIAOTHERALL").await.unwrap_err();
        assert!(
            e.ends_with("because no resource-based policy allows the execute-api:Invoke action"),
            "{e}"
        );
        assert!(decide(&none, "AKIAOTHERROOT").await.is_err());

        // The resource policy names the own-account user and the other account.
        let grant = auth(Some(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111111111111:user/own-none","222222222222"]},"Action":"execute-api:Invoke","Resource":"*"}]}"#,
        ));
        assert!(decide(&grant, "AKIAOWNNONE").await.is_ok());
        assert!(decide(&grant, "AKIAOTHERALL").await.is_ok());
        assert!(decide(&grant, "AKIAOTHERROOT").await.is_ok());
        assert!(
            decide(&grant, "AKIAOWNDENY")
                .await
                .unwrap_err()
                .ends_with("with an explicit deny")
        );

        // A resource-policy Deny binds administrators too.
        let fence = auth(Some(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"222222222222"},"Action":"execute-api:Invoke","Resource":"*"}]}"#,
        ));
        assert!(decide(&fence, "AKIAOWNNONE").await.is_ok());
        assert!(
            decide(&fence, "AKIAOTHERROOT")
                .await
                .unwrap_err()
                .ends_with("with an explicit deny")
        );
        // Unknown keys and unsigned requests never get this far.
        assert_eq!(
            decide(&none, "AKIAUNKNOWN").await.unwrap_err(),
            "The security token included in the request is invalid."
        );
    }
}
