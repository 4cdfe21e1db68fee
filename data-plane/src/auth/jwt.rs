//! COGNITO_USER_POOLS authorizers (reference §7.4): the `Authorization`
//! token is a JWT issued by one of the authorizer's user pools, verified with
//! `jsonwebtoken` against the pool's JWKS (fetched, cached, refetched when a
//! token names an unknown `kid`). Checks: RS256 signature, `iss` = the pool's
//! issuer, `exp`/`nbf`, `token_use` (`id` without method scopes, `access`
//! with them, one scope matching), and `identityValidationExpression`
//! against the client id (`aud` / `client_id`). Any failure → 401
//! `Unauthorized`; the claims reach `requestContext.authorizer.claims`.
//!
//! Issuer and JWKS location are separate settings (decisions.md): the issuer
//! is `{issuer_base}/{poolId}` (AWS's `https://cognito-idp.{region}.amazonaws.com`
//! unless configured) and the keys are read from
//! `{jwks_base}/{poolId}/.well-known/jwks.json` (`jwks_base` defaults to the
//! issuer base), so local user-pool emulators and private OIDC mirrors work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apigw_proto::gateway_response::ResponseType;
use bytes::Bytes;
use http::{HeaderName, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use regex::Regex;
use serde_json::{Map, Value};

use crate::gateway_response::GatewayError;

/// Where user pools publish keys and which issuer their tokens name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtSettings {
    /// `None`: `https://cognito-idp.{region}.amazonaws.com`.
    pub issuer_base_url: Option<String>,
    /// `None`: the issuer base.
    pub jwks_base_url: Option<String>,
}

/// Keys are refetched at least this often, and an unknown `kid` refetches
/// at most this often (a token with a random `kid` must not hammer the pool).
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 256 * 1024;

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

#[derive(Default)]
struct Fetched {
    at: Option<Instant>,
    keys: HashMap<String, Arc<DecodingKey>>,
}

/// A pool's keys, fetched on demand.
pub struct Jwks {
    url: Uri,
    http: HttpClient,
    state: Mutex<Fetched>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").field("url", &self.url).finish()
    }
}

impl Jwks {
    fn new(url: Uri, http: HttpClient) -> Self {
        Self {
            url,
            http,
            state: Mutex::new(Fetched::default()),
        }
    }

    fn cached(&self, kid: &str) -> (Option<Arc<DecodingKey>>, bool) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let age = state.at.map(|at| at.elapsed());
        let key = state.keys.get(kid).cloned();
        let may_fetch = match (age, &key) {
            (None, _) => true,
            (Some(age), Some(_)) => age > JWKS_MAX_AGE,
            (Some(age), None) => age > JWKS_MIN_REFETCH,
        };
        (key, may_fetch)
    }

    /// The key `kid` names: cached, or after (re)fetching the set.
    async fn key(&self, kid: &str) -> Result<Arc<DecodingKey>, String> {
        let (cached, may_fetch) = self.cached(kid);
        if !may_fetch {
            return cached.ok_or_else(|| format!("no key {kid:?} in {}", self.url));
        }
        match self.fetch().await {
            Ok(keys) => {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.at = Some(Instant::now());
                state.keys = keys;
                state
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or_else(|| format!("no key {kid:?} in {}", self.url))
            }
            Err(e) => {
                // Keep serving what we had; try again no sooner than the refetch floor.
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.at.get_or_insert_with(Instant::now);
                cached.ok_or(e)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let request = http::Request::get(self.url.clone())
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("fetching {}: {e}", self.url))?;
            if !response.status().is_success() {
                return Err(format!("fetching {}: HTTP {}", self.url, response.status()));
            }
            Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| format!("reading {}: {e}", self.url))
        };
        let body = tokio::time::timeout(JWKS_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("fetching {} timed out", self.url))??;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| format!("{} is not a JWKS: {e}", self.url))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                continue;
            };
            keys.insert(kid, Arc::new(key));
        }
        Ok(keys)
    }
}

#[derive(Debug)]
struct Pool {
    issuer: String,
    jwks: Jwks,
}

/// A COGNITO_USER_POOLS authorizer, compiled.
#[derive(Debug)]
pub struct CognitoAuthorizer {
    header: HeaderName,
    pools: Vec<Pool>,
    /// Matched against the token's client id.
    client_id: Option<Regex>,
}

fn http_client() -> Result<HttpClient, String> {
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .wrap_connector({
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http
        });
    Ok(Client::builder(TokioExecutor::new()).build(tls))
}

/// `(region, poolId)` of `arn:aws:cognito-idp:{region}:{account}:userpool/{poolId}`.
/// Both end up in the URL keys are fetched from (the region in the default
/// issuer's host name), so only the characters AWS uses in them are accepted:
/// a tenant must not be able to point a node or the control plane at a host
/// of its choosing (`x@10.0.0.1/`).
pub fn user_pool(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("cognito-idp"), Some(region), Some(_account), Some(rest)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let pool = rest.strip_prefix("userpool/")?;
    let region_ok = region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let pool_ok = pool
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (!region.is_empty() && !pool.is_empty() && region_ok && pool_ok).then_some((region, pool))
}

impl CognitoAuthorizer {
    pub fn compile(authorizer: &Value, settings: &JwtSettings) -> Result<Self, String> {
        let source = authorizer
            .get("identitySource")
            .and_then(Value::as_str)
            .unwrap_or("method.request.header.Authorization");
        let header = source
            .strip_prefix("method.request.header.")
            .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .ok_or_else(|| format!("identity source {source:?} is not a header"))?;
        let client_id = match authorizer
            .get("identityValidationExpression")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
        {
            Some(e) => Some(
                Regex::new(&format!("^(?:{e})$"))
                    .map_err(|err| format!("identityValidationExpression: {err}"))?,
            ),
            None => None,
        };
        let http = http_client()?;
        let mut pools = Vec::new();
        for arn in authorizer
            .get("providerARNs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let (region, pool) =
                user_pool(arn).ok_or_else(|| format!("bad provider ARN {arn:?}"))?;
            let aws = format!("https://cognito-idp.{region}.amazonaws.com");
            let issuer_base = settings.issuer_base_url.as_deref().unwrap_or(&aws);
            let jwks_base = settings.jwks_base_url.as_deref().unwrap_or(issuer_base);
            let url = format!(
                "{}/{pool}/.well-known/jwks.json",
                jwks_base.trim_end_matches('/')
            );
            pools.push(Pool {
                issuer: format!("{}/{pool}", issuer_base.trim_end_matches('/')),
                jwks: Jwks::new(
                    url.parse().map_err(|e| format!("JWKS URL {url:?}: {e}"))?,
                    http.clone(),
                ),
            });
        }
        Ok(Self {
            header,
            pools,
            client_id,
        })
    }

    /// The token in the identity source header, as sent (`Bearer ` kept).
    pub fn token<'h>(&self, headers: &'h http::HeaderMap) -> Option<&'h str> {
        headers
            .get(&self.header)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// Verifies the request's token; `Ok` is the `requestContext.authorizer`.
    pub async fn authorize(
        &self,
        headers: &http::HeaderMap,
        scopes: &[String],
    ) -> Result<Map<String, Value>, GatewayError> {
        let unauthorized = |why: &str| {
            tracing::debug!(reason = why, "Cognito token refused");
            GatewayError::new(ResponseType::Unauthorized)
        };
        let raw = self
            .token(headers)
            .ok_or_else(|| unauthorized("no token"))?;
        let token = raw.strip_prefix("Bearer ").unwrap_or(raw);
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauthorized("not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthorized("not RS256"));
        }
        let kid = header.kid.ok_or_else(|| unauthorized("no kid"))?;
        // The issuer picks the pool (and so the keys); the signature is
        // checked with that pool's key before anything else is believed.
        let issuer = unverified_issuer(token).ok_or_else(|| unauthorized("no iss"))?;
        let pool = self
            .pools
            .iter()
            .find(|p| p.issuer == issuer)
            .ok_or_else(|| unauthorized("issuer of no configured pool"))?;
        let key = pool.jwks.key(&kid).await.map_err(|e| {
            tracing::warn!(error = %e, "user pool keys unavailable");
            unauthorized("no key")
        })?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&pool.issuer]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss"]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| unauthorized(&e.to_string()))?
            .claims;
        let token_use = claims.get("token_use").and_then(Value::as_str);
        let client = claims
            .get("aud")
            .or_else(|| claims.get("client_id"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if self.client_id.as_ref().is_some_and(|r| !r.is_match(client)) {
            return Err(unauthorized("client id does not match"));
        }
        if scopes.is_empty() {
            if token_use != Some("id") {
                return Err(unauthorized("an ID token is required"));
            }
        } else {
            let granted = claims.get("scope").and_then(Value::as_str).unwrap_or("");
            if token_use != Some("access")
                || !granted.split(' ').any(|s| scopes.iter().any(|w| w == s))
            {
                return Err(unauthorized("no required scope"));
            }
        }
        // REST exposes claims as strings.
        let claims: Map<String, Value> = claims
            .into_iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, Value::String(s))
            })
            .collect();
        let mut context = Map::new();
        context.insert("claims".into(), Value::Object(claims));
        Ok(context)
    }
}

/// `iss` from the payload, unverified: used only to choose the keys.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_and_jwks_urls_follow_settings() {
        let a = serde_json::json!({"type": "COGNITO_USER_POOLS", "identitySource": "method.request.header.Authorization",
            "providerARNs": ["arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc"]});
        let c = CognitoAuthorizer::compile(&a, &JwtSettings::default()).unwrap();
        assert_eq!(
            c.pools[0].issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
        assert_eq!(
            c.pools[0].jwks.url.to_string(),
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json"
        );
        let local = JwtSettings {
            issuer_base_url: None,
            jwks_base_url: Some("http://127.0.0.1:5000/".into()),
        };
        let c = CognitoAuthorizer::compile(&a, &local).unwrap();
        assert_eq!(
            c.pools[0].issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        );
        assert_eq!(
            c.pools[0].jwks.url.to_string(),
            "http://127.0.0.1:5000/eu-west-1_abc/.well-known/jwks.json"
        );
        assert!(user_pool("arn:aws:cognito-idp:r:1:userpool/").is_none());
        assert!(user_pool("arn:aws:s3:r:1:userpool/x").is_none());
        // Nothing that could move the key URL to another host or path.
        for arn in [
            "arn:aws:cognito-idp:x@10.0.0.1/:1:userpool/p",
            "arn:aws:cognito-idp:us-east-1:1:userpool/..",
            "arn:aws:cognito-idp:us-east-1:1:userpool/p?x=1",
            "arn:aws:cognito-idp:us-east-1:1:userpool/p#x",
            "arn:aws:cognito-idp:US-EAST-1:1:userpool/p",
        ] {
            assert!(user_pool(arn).is_none(), "{arn}");
        }
        assert_eq!(
            user_pool("arn:aws:cognito-idp:us-east-1:1:userpool/us-east-1_aB9-x"),
            Some(("us-east-1", "us-east-1_aB9-x"))
        );
    }

    #[tokio::test]
    async fn refuses_without_calling_anyone() {
        let a = serde_json::json!({"type": "COGNITO_USER_POOLS", "identitySource": "method.request.header.Authorization",
            "providerARNs": ["arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_abc"]});
        let c = CognitoAuthorizer::compile(&a, &JwtSettings::default()).unwrap();
        let mut headers = http::HeaderMap::new();
        for token in ["", "x", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x", "Bearer   "] {
            headers.insert("authorization", http::HeaderValue::from_str(token).unwrap());
            let e = c.authorize(&headers, &[]).await.unwrap_err();
            assert_eq!(e.kind, ResponseType::Unauthorized, "{token}");
        }
    }
}
