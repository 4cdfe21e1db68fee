//! API keys, usage plans, quotas and throttles on the request path.
//!
//! Each request that matched a route is decided here before its body is
//! read: the API key (when the method requires one), then every limit that
//! applies, in one decision: the usage plan's per-key bucket (or its
//! per-method override), the stage's method or `*/*` bucket, and the
//! tenant's account bucket, plus the key's quota for the period.
//!
//! With Redis the decision is region-wide: one Lua script, one round trip
//! (see `redis_backend`). When Redis is unreachable the node decides with
//! local buckets at its share of each rate (fail-open) or refuses (fail-
//! closed), logs the transition once, counts it, and probes Redis again at
//! most every `probe_interval`. Without Redis (standalone) local buckets are
//! the only state, with the same semantics.

pub mod limits;
mod local;
mod redis_backend;

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apigw_proto::usage::{self as names, Day};
use arc_swap::ArcSwapOption;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use smallvec::SmallVec;

pub use limits::{BucketKeys, Rate, StageLimits};
use local::LocalBuckets;
use redis_backend::RedisBackend;

/// What a node does with limited requests while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisFailure {
    /// Decide with local buckets at this node's share of every rate.
    Open,
    /// Refuse them (429 Too Many Requests).
    Closed,
}

impl std::str::FromStr for RedisFailure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            other => Err(format!("expected open or closed, got {other}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// `redis://host:port/db`; `None`: in-process buckets only.
    pub redis_url: Option<String>,
    /// Keys are scoped `{account}:{region}`.
    pub region: String,
    /// The account level per tenant per region (AWS: 10,000 rps, burst 5,000).
    pub account_rate: f64,
    pub account_burst: i64,
    pub on_redis_failure: RedisFailure,
    /// How many nodes share the region's budget: a fallback node takes 1/share.
    pub node_share: u32,
    /// While Redis is down, one request per interval tries it again.
    pub probe_interval: Duration,
    /// Bounds every Redis call (connect and reply).
    pub redis_timeout: Duration,
    /// Added to the wall clock for quota periods and usage days (tests).
    pub clock_offset_seconds: i64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            region: "us-east-1".into(),
            account_rate: 10_000.0,
            account_burst: 5_000,
            on_redis_failure: RedisFailure::Open,
            node_share: 1,
            probe_interval: Duration::from_millis(1000),
            redis_timeout: Duration::from_millis(500),
            clock_offset_seconds: 0,
        }
    }
}

/// One bucket a request must fit in.
#[derive(Debug, Clone)]
pub struct Level<'k> {
    /// Borrowed from the stage's compiled limits where it can be.
    pub key: Cow<'k, str>,
    pub rate: Rate,
}

/// The most levels one request draws from: the plan (or its method
/// override), the stage (or method), the account.
pub const MAX_LEVELS: usize = 3;

/// A request's levels, in order, held inline (no allocation per request).
pub type Levels<'k> = SmallVec<[Level<'k>; MAX_LEVELS]>;

#[derive(Debug, Clone)]
pub struct QuotaCheck {
    pub key: String,
    pub limit: i64,
    pub ttl_seconds: i64,
}

/// Everything one request is decided on.
#[derive(Debug, Clone, Default)]
pub struct Check<'k> {
    pub levels: Levels<'k>,
    pub quota: Option<QuotaCheck>,
    /// The per-day usage counter of the request's key, if it has one.
    pub daily: Option<String>,
    /// A key of the tenant never written, passed for unused script slots.
    pub unused_key: Cow<'k, str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Admitted,
    Throttled,
    QuotaExceeded,
}

/// Why a request is refused; each is a gateway response type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// 403 `Forbidden` (`INVALID_API_KEY`).
    InvalidApiKey,
    /// 429 `Too Many Requests` (`THROTTLED`).
    Throttled,
    /// 429 `Limit Exceeded` (`QUOTA_EXCEEDED`).
    QuotaExceeded,
}

/// The gateway response a rejection renders as (the stage may customise it).
pub fn gateway_error(rejection: Rejection) -> crate::gateway_response::GatewayError {
    use apigw_proto::gateway_response::ResponseType;
    crate::gateway_response::GatewayError::new(match rejection {
        Rejection::InvalidApiKey => ResponseType::InvalidApiKey,
        Rejection::Throttled => ResponseType::Throttled,
        Rejection::QuotaExceeded => ResponseType::QuotaExceeded,
    })
}

/// Metrics of the Redis fallback.
#[derive(Debug, Clone, Default)]
pub struct ThrottleMetrics {
    redis_up: Gauge,
    fallbacks: Counter,
    fallback_decisions: Counter,
}

impl ThrottleMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "apigw_throttle_redis_up",
            "1 while throttle decisions are region-wide through Redis",
            m.redis_up.clone(),
        );
        registry.register(
            "apigw_throttle_fallbacks",
            "Times Redis became unreachable and the node fell back",
            m.fallbacks.clone(),
        );
        registry.register(
            "apigw_throttle_fallback_decisions",
            "Requests decided without Redis while it was unreachable",
            m.fallback_decisions.clone(),
        );
        m
    }
}

struct Redis {
    backend: RedisBackend,
    connection: ArcSwapOption<ConnectionManager>,
    up: AtomicBool,
    /// Milliseconds (since `LocalBuckets`' origin) before which nobody probes.
    next_probe_ms: AtomicU64,
    /// One connect attempt at a time.
    connecting: tokio::sync::Mutex<()>,
}

/// The node's limiter; shared by every proxy worker.
pub struct Throttle {
    config: ThrottleConfig,
    account: Rate,
    local: LocalBuckets,
    redis: Option<Redis>,
    metrics: ThrottleMetrics,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid Redis URL: {0}")]
pub struct ThrottleConfigError(#[from] redis::RedisError);

impl Throttle {
    pub fn new(
        config: ThrottleConfig,
        metrics: ThrottleMetrics,
    ) -> Result<Self, ThrottleConfigError> {
        let redis = match &config.redis_url {
            Some(url) => Some(Redis {
                backend: RedisBackend::new(url, config.redis_timeout)?,
                connection: ArcSwapOption::empty(),
                // Optimistic until the first call says otherwise.
                up: AtomicBool::new(true),
                next_probe_ms: AtomicU64::new(0),
                connecting: tokio::sync::Mutex::new(()),
            }),
            None => None,
        };
        metrics.redis_up.set(i64::from(redis.is_some()));
        Ok(Self {
            account: Rate::new(config.account_rate, config.account_burst),
            config,
            local: LocalBuckets::default(),
            redis,
            metrics,
        })
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Today (UTC) by the node's clock plus the configured offset.
    pub fn today(&self) -> Day {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        Day::from_epoch_seconds(now + self.config.clock_offset_seconds)
    }

    /// Decides a matched request now: `Ok` lets it through.
    /// `api_key` is the request's key from the API's key source (the
    /// `x-api-key` header, or an authorizer's `usageIdentifierKey`).
    pub async fn check(
        &self,
        limits: &StageLimits,
        route_index: usize,
        api_key: Option<&str>,
    ) -> Result<Option<Arc<str>>, Rejection> {
        self.check_at(limits, route_index, api_key, Instant::now())
            .await
    }

    /// [`Throttle::check`] for a request that arrived at `arrived`: the
    /// proxy's own clock reading, so that buckets need none of their own.
    pub async fn check_at(
        &self,
        limits: &StageLimits,
        route_index: usize,
        api_key: Option<&str>,
        arrived: Instant,
    ) -> Result<Option<Arc<str>>, Rejection> {
        let Some(route) = limits.routes.get(route_index) else {
            return Ok(None);
        };
        // The admitted key's id, for `$context.identity.apiKeyId`.
        let mut key_id = None;
        let keys = limits.keys_for(&self.config.region);
        let keys = &*keys;
        let prefix = &keys.prefix;
        let mut check = Check {
            unused_key: Cow::Borrowed(&keys.unused),
            ..Default::default()
        };
        if route.api_key_required {
            let key = api_key
                .filter(|v| !v.is_empty())
                .ok_or(Rejection::InvalidApiKey)?;
            let digest = hex::encode(Sha256::digest(key.as_bytes()));
            let key = limits
                .keys
                .get(digest.as_str())
                .ok_or(Rejection::InvalidApiKey)?;
            key_id = Some(key.id.clone());
            let plan = &limits.plans[key.plan];
            match plan.method.get(route_index).copied().flatten() {
                Some(rate) => check.levels.push(Level {
                    key: format!("{prefix}:g:pm:{}:{}:{route_index}", plan.id, key.id).into(),
                    rate,
                }),
                None => {
                    if let Some(rate) = plan.throttle {
                        check.levels.push(Level {
                            key: format!("{prefix}:g:p:{}:{}", plan.id, key.id).into(),
                            rate,
                        });
                    }
                }
            }
            let today = self.today();
            if let Some(quota) = &plan.quota {
                let start = today.period_start(&quota.period);
                let end = today.period_end(&quota.period);
                check.quota = Some(QuotaCheck {
                    key: names::quota_key(
                        &limits.account_id,
                        &self.config.region,
                        &plan.id,
                        &key.id,
                        &start.to_string(),
                    ),
                    limit: quota.limit_on(today, plan.created_day),
                    ttl_seconds: (end.0 - today.0 + 1) * 86_400,
                });
            }
            check.daily = Some(names::daily_key(
                &limits.account_id,
                &self.config.region,
                &plan.id,
                &key.id,
                &today.to_string(),
            ));
        }
        if let (Some(stage), Some(Some(key))) = (&route.stage_level, keys.stage.get(route_index)) {
            check.levels.push(Level {
                key: Cow::Borrowed(key),
                rate: stage.rate,
            });
        }
        check.levels.push(Level {
            key: Cow::Borrowed(&keys.account),
            rate: self.account,
        });
        match self.decide(&check, arrived).await {
            Outcome::Admitted => Ok(key_id),
            Outcome::Throttled => Err(Rejection::Throttled),
            Outcome::QuotaExceeded => Err(Rejection::QuotaExceeded),
        }
    }

    async fn decide(&self, check: &Check<'_>, now: Instant) -> Outcome {
        let now_us = self.local.micros_at(now);
        let Some(redis) = &self.redis else {
            return self.local.decide(check, now_us, 1);
        };
        let now_ms = now_us / 1000;
        let try_redis = redis.up.load(Ordering::Relaxed) || {
            // Down: the one request that moves the probe time forward probes.
            let due = redis.next_probe_ms.load(Ordering::Relaxed);
            now_ms >= due
                && redis
                    .next_probe_ms
                    .compare_exchange(
                        due,
                        now_ms + self.probe_ms(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
        };
        if try_redis {
            match self.redis_decide(redis, check).await {
                Ok(outcome) => {
                    if !redis.up.swap(true, Ordering::Relaxed) {
                        tracing::info!("redis reachable again: throttling is region-wide");
                        self.metrics.redis_up.set(1);
                    }
                    return outcome;
                }
                Err(error) => {
                    redis
                        .next_probe_ms
                        .store(now_ms + self.probe_ms(), Ordering::Relaxed);
                    if redis.up.swap(false, Ordering::Relaxed) {
                        tracing::warn!(
                            %error,
                            mode = ?self.config.on_redis_failure,
                            "redis unreachable: throttling falls back to this node"
                        );
                        self.metrics.redis_up.set(0);
                        self.metrics.fallbacks.inc();
                    }
                }
            }
        }
        self.metrics.fallback_decisions.inc();
        match self.config.on_redis_failure {
            RedisFailure::Open => self.local.decide(check, now_us, self.config.node_share),
            RedisFailure::Closed => Outcome::Throttled,
        }
    }

    fn probe_ms(&self) -> u64 {
        u64::try_from(self.config.probe_interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    async fn connection(&self, redis: &Redis) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(c) = redis.connection.load_full() {
            return Ok((*c).clone());
        }
        let _guard = redis.connecting.lock().await;
        if let Some(c) = redis.connection.load_full() {
            return Ok((*c).clone());
        }
        let c = redis.backend.connect().await?;
        redis.connection.store(Some(Arc::new(c.clone())));
        Ok(c)
    }

    async fn redis_decide(
        &self,
        redis: &Redis,
        check: &Check<'_>,
    ) -> Result<Outcome, redis::RedisError> {
        let mut connection = self.connection(redis).await?;
        // The manager reconnects by itself; a call during an outage fails
        // within the timeout instead of hanging the request.
        match tokio::time::timeout(
            self.config.redis_timeout,
            redis.backend.decide(&mut connection, check),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))),
        }
    }

    /// Requests counted for a key on each of `days` (standalone's GetUsage):
    /// from Redis when configured, else from the local counters.
    pub async fn daily_usage(
        &self,
        account_id: &str,
        plan_id: &str,
        key_id: &str,
        days: &[Day],
    ) -> Result<Vec<(Day, i64)>, redis::RedisError> {
        let keys: Vec<String> = days
            .iter()
            .map(|d| {
                names::daily_key(
                    account_id,
                    &self.config.region,
                    plan_id,
                    key_id,
                    &d.to_string(),
                )
            })
            .collect();
        let values = match &self.redis {
            Some(redis) => {
                let mut connection = self.connection(redis).await?;
                RedisBackend::counters(&mut connection, &keys).await?
            }
            None => keys.iter().map(|k| self.local.counter(k)).collect(),
        };
        Ok(days
            .iter()
            .zip(values)
            .filter_map(|(d, v)| v.map(|v| (*d, v)))
            .collect())
    }

    /// Sets a key's quota counter for the period holding `today` (UpdateUsage).
    pub async fn set_quota_used(
        &self,
        account_id: &str,
        plan_id: &str,
        key_id: &str,
        period_start: Day,
        used: i64,
        ttl_seconds: i64,
    ) -> Result<(), redis::RedisError> {
        let key = names::quota_key(
            account_id,
            &self.config.region,
            plan_id,
            key_id,
            &period_start.to_string(),
        );
        match &self.redis {
            Some(redis) => {
                let mut connection = self.connection(redis).await?;
                redis::cmd("SET")
                    .arg(&key)
                    .arg(used)
                    .arg("EX")
                    .arg(ttl_seconds.max(1))
                    .query_async::<()>(&mut connection)
                    .await
            }
            None => {
                self.local.set_counter(&key, used);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use apigw_proto::snapshot::{
        ApiSettings, DeploymentSnapshot, QuotaLimits, Route, StageApiKey, StageSnapshot,
        StageUsagePlan, ThrottleLimits,
    };
    use serde_json::json;

    use super::*;

    fn snapshot() -> StageSnapshot {
        let route = |path: &str, key: bool| Route {
            resource_id: path.into(),
            path: path.into(),
            http_method: "GET".into(),
            method: json!({"httpMethod": "GET", "apiKeyRequired": key}),
        };
        StageSnapshot {
            stage_name: "prod".into(),
            authorizer_cache_generation: 0,
            variables: BTreeMap::new(),
            method_settings: BTreeMap::from([(
                "~1open/GET".to_string(),
                json!({"throttlingRateLimit": 1.0, "throttlingBurstLimit": 2}),
            )]),
            deployment: DeploymentSnapshot {
                account_id: "123456789012".into(),
                api_id: "api1".into(),
                deployment_id: "d1".into(),
                created_epoch_seconds: 0,
                api: ApiSettings::default(),
                routes: vec![
                    route("/keyed", true),
                    route("/open", false),
                    route("/fast", true),
                ],
                gateway_responses: BTreeMap::new(),
                models: BTreeMap::new(),
                request_validators: BTreeMap::new(),
                authorizers: BTreeMap::new(),
            },
            usage_plans: vec![StageUsagePlan {
                id: "plan1".into(),
                created_day: 0,
                throttle: Some(ThrottleLimits {
                    burst_limit: 3,
                    rate_limit: 1.0,
                }),
                quota: Some(QuotaLimits {
                    limit: 5,
                    offset: 0,
                    period: "DAY".into(),
                }),
                method_throttle: BTreeMap::from([(
                    "/fast/GET".to_string(),
                    ThrottleLimits {
                        burst_limit: 100,
                        rate_limit: 100.0,
                    },
                )]),
                keys: vec![StageApiKey {
                    id: "key1".into(),
                    sha256: hex::encode(Sha256::digest(b"a-valid-api-key-value-000")),
                }],
            }],
        }
    }

    const KEY: &str = "a-valid-api-key-value-000";

    #[tokio::test]
    async fn keys_plans_quotas_and_method_settings() {
        let throttle =
            Throttle::new(ThrottleConfig::default(), ThrottleMetrics::default()).unwrap();
        let limits = StageLimits::compile(&snapshot(), "us-east-1");
        // Missing and unknown keys are refused before any bucket.
        assert_eq!(
            throttle.check(&limits, 0, None).await.map(drop),
            Err(Rejection::InvalidApiKey)
        );
        assert_eq!(
            throttle.check(&limits, 0, Some("nope")).await.map(drop),
            Err(Rejection::InvalidApiKey)
        );
        // Plan bucket: burst 3, then throttled; an admitted call names its key.
        assert_eq!(
            throttle.check(&limits, 0, Some(KEY)).await,
            Ok(Some(Arc::from("key1")))
        );
        for _ in 0..2 {
            assert_eq!(
                throttle.check(&limits, 0, Some(KEY)).await.map(drop),
                Ok(())
            );
        }
        assert_eq!(
            throttle.check(&limits, 0, Some(KEY)).await.map(drop),
            Err(Rejection::Throttled)
        );
        // The per-method override has its own, larger bucket; the quota (5/day) still counts.
        assert_eq!(
            throttle.check(&limits, 2, Some(KEY)).await.map(drop),
            Ok(())
        );
        assert_eq!(
            throttle.check(&limits, 2, Some(KEY)).await.map(drop),
            Ok(())
        );
        assert_eq!(
            throttle.check(&limits, 2, Some(KEY)).await.map(drop),
            Err(Rejection::QuotaExceeded)
        );
        // A method setting written `~1open/GET` limits `/open` (burst 2), no key needed.
        assert_eq!(throttle.check(&limits, 1, None).await.map(drop), Ok(()));
        assert_eq!(throttle.check(&limits, 1, None).await.map(drop), Ok(()));
        assert_eq!(
            throttle.check(&limits, 1, None).await.map(drop),
            Err(Rejection::Throttled)
        );
        let today = throttle.today();
        assert_eq!(
            throttle
                .daily_usage("123456789012", "plan1", "key1", &[today])
                .await
                .unwrap(),
            vec![(today, 5)]
        );
    }

    #[tokio::test]
    async fn account_level_applies_to_every_request() {
        let config = ThrottleConfig {
            account_rate: 1.0,
            account_burst: 1,
            ..Default::default()
        };
        let throttle = Throttle::new(config, ThrottleMetrics::default()).unwrap();
        let limits = StageLimits::compile(&snapshot(), "us-east-1");
        assert_eq!(throttle.check(&limits, 1, None).await.map(drop), Ok(()));
        assert_eq!(
            throttle.check(&limits, 1, None).await.map(drop),
            Err(Rejection::Throttled)
        );
    }

    /// The Lua script against the Redis at 127.0.0.1:6379 (DB 15, a fresh tenant id per run).
    #[tokio::test]
    async fn redis_script_decides_like_local_buckets() {
        let throttle = Throttle::new(
            ThrottleConfig {
                redis_url: Some("redis://127.0.0.1:6379/15".into()),
                ..Default::default()
            },
            ThrottleMetrics::default(),
        )
        .unwrap();
        let mut snap = snapshot();
        snap.deployment.account_id = format!("t{}", uuid::Uuid::new_v4().simple());
        let limits = StageLimits::compile(&snap, "us-east-1");
        let mut outcomes = Vec::new();
        for _ in 0..4 {
            outcomes.push(throttle.check(&limits, 0, Some(KEY)).await.map(drop));
        }
        assert_eq!(
            outcomes,
            [Ok(()), Ok(()), Ok(()), Err(Rejection::Throttled)]
        );
        assert_eq!(
            throttle.metrics.redis_up.get(),
            1,
            "Redis must be reachable for this test"
        );
        assert_eq!(
            throttle.check(&limits, 2, Some(KEY)).await.map(drop),
            Ok(())
        );
        assert_eq!(
            throttle.check(&limits, 2, Some(KEY)).await.map(drop),
            Ok(())
        );
        assert_eq!(
            throttle.check(&limits, 2, Some(KEY)).await.map(drop),
            Err(Rejection::QuotaExceeded)
        );
        // Refused requests were not counted.
        let today = throttle.today();
        assert_eq!(
            throttle
                .daily_usage(&snap.deployment.account_id, "plan1", "key1", &[today])
                .await
                .unwrap(),
            vec![(today, 5)]
        );
        // UpdateUsage's path: the quota counter set back gives room again.
        throttle
            .set_quota_used(&snap.deployment.account_id, "plan1", "key1", today, 4, 60)
            .await
            .unwrap();
        assert_eq!(
            throttle.check(&limits, 2, Some(KEY)).await.map(drop),
            Ok(())
        );
        assert_eq!(
            throttle.check(&limits, 2, Some(KEY)).await.map(drop),
            Err(Rejection::QuotaExceeded)
        );
    }

    #[tokio::test]
    async fn fail_closed_refuses_and_fail_open_falls_back_when_redis_is_down() {
        for (mode, expect) in [
            (RedisFailure::Closed, Err(Rejection::Throttled)),
            (RedisFailure::Open, Ok(())),
        ] {
            let metrics = ThrottleMetrics::default();
            let config = ThrottleConfig {
                // Nothing listens on port 1.
                redis_url: Some("redis://127.0.0.1:1/0".into()),
                on_redis_failure: mode,
                redis_timeout: Duration::from_millis(200),
                ..Default::default()
            };
            let throttle = Throttle::new(config, metrics.clone()).unwrap();
            let limits = StageLimits::compile(&snapshot(), "us-east-1");
            assert_eq!(throttle.check(&limits, 1, None).await.map(drop), expect);
            assert_eq!(metrics.fallbacks.get(), 1);
            assert_eq!(metrics.redis_up.get(), 0);
        }
    }
}
