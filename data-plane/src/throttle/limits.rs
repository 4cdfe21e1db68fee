//! Per-stage limit descriptors, compiled once when a stage's configuration
//! loads: for each route, whether it needs an API key and which stage or
//! method bucket it draws from; the stage's usage plans with their
//! per-method overrides; the admitted key digests; and the bucket keys a
//! request without an API key uses, formatted for the node's region so the
//! request path formats none.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use apigw_proto::snapshot::{QuotaLimits, StageSnapshot, ThrottleLimits};
use serde_json::Value;

/// A token bucket as GCRA sees it: one request per `interval_us`, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Microseconds between requests at the steady rate; 0 admits nothing.
    pub interval_us: u64,
    pub burst: u64,
}

impl Rate {
    /// `rate` requests per second, bursts of `burst`; a zero (or negative) rate or burst blocks.
    pub fn new(rate: f64, burst: i64) -> Self {
        let burst = u64::try_from(burst).unwrap_or(0);
        if !(rate.is_finite() && rate > 0.0) || burst == 0 {
            return Self {
                interval_us: 0,
                burst: 0,
            };
        }
        Self {
            interval_us: ((1_000_000.0 / rate).round() as u64).max(1),
            burst,
        }
    }

    /// This rate split between `share` nodes (each node's part in a fallback).
    pub fn share(self, share: u32) -> Self {
        if share <= 1 || self.interval_us == 0 {
            return self;
        }
        Self {
            interval_us: self.interval_us.saturating_mul(u64::from(share)),
            burst: (self.burst / u64::from(share)).max(1),
        }
    }

    fn from_limits(t: &ThrottleLimits) -> Self {
        Self::new(t.rate_limit, t.burst_limit)
    }
}

/// The stage or method bucket a route draws from (`methodSettings`).
#[derive(Debug, Clone)]
pub struct StageLevel {
    /// Key suffix: `s:{api}:{stage}` for `*/*`, `m:{api}:{stage}:{METHOD} {path}` for a method.
    pub suffix: Box<str>,
    pub rate: Rate,
}

/// The bucket keys that do not depend on the caller's API key or the day,
/// formatted once per stage for one region (see [`StageLimits::keys_for`]).
#[derive(Debug, Clone, Default)]
pub struct BucketKeys {
    pub region: Box<str>,
    /// `{account}:region`.
    pub prefix: Box<str>,
    /// The tenant's account-level bucket.
    pub account: Box<str>,
    /// A key of the tenant never written, for unused script slots.
    pub unused: Box<str>,
    /// Parallel to the routes: the full key of the route's stage or method bucket.
    pub stage: Box<[Option<Box<str>>]>,
}

impl BucketKeys {
    pub fn new(account_id: &str, region: &str, routes: &[RouteLimits]) -> Self {
        let prefix = apigw_proto::usage::prefix(account_id, region);
        Self {
            region: region.into(),
            account: format!("{prefix}:g:a").into(),
            unused: format!("{prefix}:-").into(),
            stage: routes
                .iter()
                .map(|r| {
                    r.stage_level
                        .as_ref()
                        .map(|s| format!("{prefix}:g:{}", s.suffix).into())
                })
                .collect(),
            prefix: prefix.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RouteLimits {
    pub api_key_required: bool,
    pub stage_level: Option<StageLevel>,
}

#[derive(Debug, Clone)]
pub struct PlanLimits {
    pub id: Arc<str>,
    pub throttle: Option<Rate>,
    pub quota: Option<QuotaLimits>,
    /// The plan's first quota period starts in the period holding this day.
    pub created_day: apigw_proto::usage::Day,
    /// Parallel to the routes: the plan's override for that method, if any.
    pub method: Box<[Option<Rate>]>,
}

#[derive(Debug, Clone)]
pub struct KeyRef {
    pub plan: usize,
    pub id: Arc<str>,
}

/// Everything a stage's requests are limited by, except the account level.
#[derive(Debug, Clone, Default)]
pub struct StageLimits {
    pub account_id: Arc<str>,
    pub routes: Box<[RouteLimits]>,
    pub plans: Box<[PlanLimits]>,
    /// Hex SHA-256 of a key value → the key and its plan for this stage.
    pub keys: HashMap<Box<str>, KeyRef>,
    /// Bucket keys for the region the stage was compiled in.
    pub bucket_keys: BucketKeys,
    /// The API's `apiKeySource` is AUTHORIZER: a Lambda authorizer's
    /// `usageIdentifierKey` is the key, not the `x-api-key` header.
    pub key_from_authorizer: bool,
}

/// `methodSettings` keys name a method as `{path without leading /}/{METHOD}`,
/// its slashes either plain or `~1` (both occur); `*/*` is the whole stage.
pub fn normalise_setting_key(key: &str) -> Option<(String, String)> {
    let (path, method) = key.rsplit_once('/')?;
    if method.is_empty() {
        return None;
    }
    let path = path.replace("~1", "/");
    let trimmed = path.trim_start_matches('/');
    Some((format!("/{trimmed}"), method.to_owned()))
}

fn setting_rate(setting: &Value) -> Option<Rate> {
    let rate = setting.get("throttlingRateLimit")?.as_f64()?;
    let burst = setting.get("throttlingBurstLimit")?.as_i64()?;
    Some(Rate::new(rate, burst))
}

impl StageLimits {
    /// Compiles `snapshot`'s limits, with bucket keys for a node in `region`.
    pub fn compile(snapshot: &StageSnapshot, region: &str) -> Self {
        let deployment = &snapshot.deployment;
        let (api, stage) = (&deployment.api_id, &snapshot.stage_name);
        let mut per_method: HashMap<(String, String), Rate> = HashMap::new();
        let mut whole_stage = None;
        for (key, setting) in &snapshot.method_settings {
            let Some(rate) = setting_rate(setting) else {
                continue;
            };
            if key == "*/*" {
                whole_stage = Some(rate);
            } else if let Some(k) = normalise_setting_key(key) {
                per_method.insert(k, rate);
            }
        }
        let routes = deployment
            .routes
            .iter()
            .map(|route| {
                let method_key = (route.path.clone(), route.http_method.clone());
                let stage_level = match per_method.get(&method_key) {
                    Some(rate) => Some(StageLevel {
                        suffix: format!("m:{api}:{stage}:{} {}", route.http_method, route.path)
                            .into(),
                        rate: *rate,
                    }),
                    None => whole_stage.map(|rate| StageLevel {
                        suffix: format!("s:{api}:{stage}").into(),
                        rate,
                    }),
                };
                RouteLimits {
                    api_key_required: route.method["apiKeyRequired"].as_bool().unwrap_or(false),
                    stage_level,
                }
            })
            .collect();
        let mut keys = HashMap::new();
        let plans = snapshot
            .usage_plans
            .iter()
            .enumerate()
            .map(|(index, plan)| {
                for key in &plan.keys {
                    keys.insert(
                        key.sha256.to_ascii_lowercase().into_boxed_str(),
                        KeyRef {
                            plan: index,
                            id: key.id.as_str().into(),
                        },
                    );
                }
                let method = deployment
                    .routes
                    .iter()
                    .map(|route| {
                        plan.method_throttle
                            .get(&format!("{}/{}", route.path, route.http_method))
                            .map(Rate::from_limits)
                    })
                    .collect();
                PlanLimits {
                    id: plan.id.as_str().into(),
                    throttle: plan.throttle.as_ref().map(Rate::from_limits),
                    quota: plan.quota.clone(),
                    created_day: apigw_proto::usage::Day(plan.created_day),
                    method,
                }
            })
            .collect();
        let routes: Box<[RouteLimits]> = routes;
        Self {
            account_id: deployment.account_id.as_str().into(),
            bucket_keys: BucketKeys::new(&deployment.account_id, region, &routes),
            routes,
            plans,
            keys,
            key_from_authorizer: deployment.api.api_key_source == "AUTHORIZER",
        }
    }

    /// Whether the route at `route_index` requires an API key (only then is
    /// the request's key looked up).
    pub fn key_required(&self, route_index: usize) -> bool {
        self.routes
            .get(route_index)
            .is_some_and(|r| r.api_key_required)
    }

    /// The bucket keys for `region`: those compiled in, unless the limiter
    /// runs for another region than the stage was compiled for.
    pub fn keys_for(&self, region: &str) -> Cow<'_, BucketKeys> {
        if *self.bucket_keys.region == *region {
            Cow::Borrowed(&self.bucket_keys)
        } else {
            Cow::Owned(BucketKeys::new(&self.account_id, region, &self.routes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_keys_normalise_both_spellings() {
        assert_eq!(
            normalise_setting_key("~1pets/GET"),
            Some(("/pets".into(), "GET".into()))
        );
        assert_eq!(
            normalise_setting_key("pets/GET"),
            Some(("/pets".into(), "GET".into()))
        );
        assert_eq!(
            normalise_setting_key("pets~1{id}/PUT"),
            Some(("/pets/{id}".into(), "PUT".into()))
        );
        assert_eq!(
            normalise_setting_key("~1/GET"),
            Some(("/".into(), "GET".into()))
        );
        assert_eq!(normalise_setting_key("GET"), None);
    }

    #[test]
    fn bucket_keys_are_formatted_once_per_stage_and_region() {
        use std::collections::BTreeMap;

        use apigw_proto::snapshot::{ApiSettings, DeploymentSnapshot, Route};
        use serde_json::json;

        let route = |path: &str| Route {
            resource_id: path.into(),
            path: path.into(),
            http_method: "GET".into(),
            method: json!({"httpMethod": "GET"}),
        };
        let snapshot = StageSnapshot {
            stage_name: "prod".into(),
            variables: BTreeMap::new(),
            method_settings: BTreeMap::from([
                (
                    "~1a/GET".to_string(),
                    json!({"throttlingRateLimit": 1.0, "throttlingBurstLimit": 2}),
                ),
                (
                    "*/*".to_string(),
                    json!({"throttlingRateLimit": 5.0, "throttlingBurstLimit": 5}),
                ),
            ]),
            deployment: DeploymentSnapshot {
                account_id: "123456789012".into(),
                api_id: "api1".into(),
                deployment_id: "d1".into(),
                created_epoch_seconds: 0,
                api: ApiSettings::default(),
                routes: vec![route("/a"), route("/b")],
                gateway_responses: BTreeMap::new(),
                models: BTreeMap::new(),
                request_validators: BTreeMap::new(),
                authorizers: BTreeMap::new(),
            },
            usage_plans: Vec::new(),
            authorizer_cache_generation: 0,
        };
        let limits = StageLimits::compile(&snapshot, "eu-west-1");
        let keys = limits.keys_for("eu-west-1");
        assert!(matches!(keys, Cow::Borrowed(_)));
        assert_eq!(&*keys.prefix, "{123456789012}:eu-west-1");
        assert_eq!(&*keys.account, "{123456789012}:eu-west-1:g:a");
        assert_eq!(&*keys.unused, "{123456789012}:eu-west-1:-");
        assert_eq!(
            keys.stage.iter().map(|k| k.as_deref()).collect::<Vec<_>>(),
            [
                Some("{123456789012}:eu-west-1:g:m:api1:prod:GET /a"),
                Some("{123456789012}:eu-west-1:g:s:api1:prod"),
            ]
        );
        // A limiter in another region than the stage was compiled for still
        // gets that region's keys.
        let other = limits.keys_for("us-east-1");
        assert!(matches!(other, Cow::Owned(_)));
        assert_eq!(&*other.account, "{123456789012}:us-east-1:g:a");
        assert_eq!(
            other.stage[1].as_deref(),
            Some("{123456789012}:us-east-1:g:s:api1:prod")
        );
    }

    #[test]
    fn rates_and_shares() {
        assert_eq!(
            Rate::new(200.0, 100),
            Rate {
                interval_us: 5000,
                burst: 100
            }
        );
        assert_eq!(Rate::new(0.0, 10).interval_us, 0);
        assert_eq!(Rate::new(10.0, 0).burst, 0);
        assert_eq!(
            Rate::new(300.0, 90).share(3),
            Rate {
                interval_us: 9_999,
                burst: 30
            }
        );
    }
}
