//! What the control plane needs of usage-plan enforcement: the data plane's
//! usage counters (Redis, or in-process in standalone) for GetUsage and
//! UpdateUsage, a clock that tests may shift, and the per-tenant rate limit
//! on management calls (`TooManyRequestsException`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apigw_proto::snapshot::QuotaLimits;
use apigw_proto::usage::{self as names, Day};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use futures::future::BoxFuture;

use crate::error::ApiError;
use crate::management::AppState;
use crate::management::auth::Caller;

/// Operator settings for usage and management throttling.
#[derive(Debug, Clone)]
pub struct UsageConfig {
    /// Where the data plane keeps region-wide counters; `None`: no Redis.
    pub redis_url: Option<String>,
    /// Added to the wall clock when deciding "today" (period-boundary tests).
    pub clock_offset_seconds: i64,
    /// Management calls per second per tenant, and the burst above it.
    pub management_rate: f64,
    pub management_burst: u32,
    /// How often yesterday's and today's counters are copied into the store.
    pub persist_interval: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            clock_offset_seconds: 0,
            // Far above AWS's 10 rps / 40 burst: a busy CI suite must never trip it.
            management_rate: 200.0,
            management_burst: 400,
            persist_interval: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Other(String),
}

/// Where admitted requests are counted, per key per plan per UTC day.
pub trait UsageCounters: Send + Sync {
    /// Counts for each of `days`; days without a counter are left out.
    fn daily<'a>(
        &'a self,
        account_id: &'a str,
        region: &'a str,
        plan_id: &'a str,
        key_id: &'a str,
        days: &'a [Day],
    ) -> BoxFuture<'a, Result<Vec<(Day, i64)>, UsageError>>;

    /// Makes the key's quota for the period holding `today` have `remaining` left.
    #[allow(clippy::too_many_arguments)]
    fn set_remaining<'a>(
        &'a self,
        account_id: &'a str,
        region: &'a str,
        plan_id: &'a str,
        key_id: &'a str,
        quota: &'a QuotaLimits,
        today: Day,
        remaining: i64,
    ) -> BoxFuture<'a, Result<(), UsageError>>;
}

/// The data plane's counters in Redis (see `apigw_proto::usage` for names).
/// Connects on first use, so a control plane starts while Redis is down.
pub struct RedisCounters {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
}

impl RedisCounters {
    pub fn new(url: &str) -> Result<Self, UsageError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            connection: tokio::sync::Mutex::new(None),
        })
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, UsageError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        let c = redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *slot = Some(c.clone());
        Ok(c)
    }
}

impl UsageCounters for RedisCounters {
    fn daily<'a>(
        &'a self,
        account_id: &'a str,
        region: &'a str,
        plan_id: &'a str,
        key_id: &'a str,
        days: &'a [Day],
    ) -> BoxFuture<'a, Result<Vec<(Day, i64)>, UsageError>> {
        Box::pin(async move {
            if days.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = days
                .iter()
                .map(|d| names::daily_key(account_id, region, plan_id, key_id, &d.to_string()))
                .collect();
            let mut conn = self.connection().await?;
            let values: Vec<Option<i64>> =
                redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
            Ok(days
                .iter()
                .zip(values)
                .filter_map(|(d, v)| v.map(|v| (*d, v)))
                .collect())
        })
    }

    fn set_remaining<'a>(
        &'a self,
        account_id: &'a str,
        region: &'a str,
        plan_id: &'a str,
        key_id: &'a str,
        quota: &'a QuotaLimits,
        today: Day,
        remaining: i64,
    ) -> BoxFuture<'a, Result<(), UsageError>> {
        Box::pin(async move {
            let start = today.period_start(&quota.period);
            let key = names::quota_key(account_id, region, plan_id, key_id, &start.to_string());
            let used = (quota.limit - remaining).max(0);
            let ttl = (today.period_end(&quota.period).0 - today.0 + 1) * 86_400;
            let mut conn = self.connection().await?;
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(used)
                .arg("EX")
                .arg(ttl)
                .query_async(&mut conn)
                .await?;
            Ok(())
        })
    }
}

/// The usage side of the management state; cheap to clone.
#[derive(Clone)]
pub struct UsageState {
    counters: Option<Arc<dyn UsageCounters>>,
    clock_offset_seconds: i64,
    management: Arc<TenantLimiter>,
}

impl Default for UsageState {
    fn default() -> Self {
        Self::new(&UsageConfig::default(), None)
    }
}

impl UsageState {
    pub fn new(config: &UsageConfig, counters: Option<Arc<dyn UsageCounters>>) -> Self {
        Self {
            counters,
            clock_offset_seconds: config.clock_offset_seconds,
            management: Arc::new(TenantLimiter::new(
                config.management_rate,
                config.management_burst,
            )),
        }
    }

    pub fn counters(&self) -> Option<&dyn UsageCounters> {
        self.counters.as_deref()
    }

    /// Today (UTC) by the shifted clock.
    pub fn today(&self) -> Day {
        Day::from_epoch_seconds(chrono::Utc::now().timestamp() + self.clock_offset_seconds)
    }
}

/// Copies yesterday's and today's counters of every plan key into the store
/// every `interval`, so GetUsage keeps its numbers when Redis loses them even
/// if nobody asked for usage meanwhile. Runs until the process ends.
pub async fn persist_loop(
    store: crate::store::Store,
    counters: Arc<dyn UsageCounters>,
    region: String,
    clock_offset_seconds: i64,
    interval: Duration,
) {
    // The first round after one interval: standalone's data plane starts meanwhile.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let today = Day::from_epoch_seconds(chrono::Utc::now().timestamp() + clock_offset_seconds);
        if let Err(e) = persist_once(&store, &*counters, &region, &[Day(today.0 - 1), today]).await
        {
            tracing::warn!(error = %e, "persisting usage counters failed; retrying next round");
        }
    }
}

/// One round of [`persist_loop`]: the given days of every plan key.
pub async fn persist_once(
    store: &crate::store::Store,
    counters: &dyn UsageCounters,
    region: &str,
    days: &[Day],
) -> Result<(), UsageError> {
    use crate::store::usage_plans as plans;
    let store_error = |e: crate::store::StoreError| UsageError::Other(e.to_string());
    let mut tx = store.begin().await.map_err(store_error)?;
    for (account, plan, key) in plans::all_plan_keys(&mut tx).await.map_err(store_error)? {
        for (day, used) in counters.daily(&account, region, &plan, &key, days).await? {
            plans::record_usage(&mut tx, &account, &plan, &key, &day.to_string(), used)
                .await
                .map_err(store_error)?;
        }
    }
    tx.commit()
        .await
        .map_err(|e| store_error(crate::store::StoreError::from(e)))?;
    Ok(())
}

pub fn to_day(d: NaiveDate) -> Day {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    Day((d - epoch).num_days())
}

pub fn to_date(d: Day) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    epoch + chrono::Duration::days(d.0)
}

/// Token buckets per tenant for management calls.
pub struct TenantLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl TenantLimiter {
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `tenant` at `now`; false when its bucket is empty.
    pub fn admit(&self, tenant: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets
            .entry(tenant.to_owned())
            .or_insert((self.burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Middleware after authentication: one token per call from the tenant's bucket.
pub async fn throttle_management(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(caller) = request.extensions().get::<Caller>()
        && !state
            .usage
            .management
            .admit(&caller.account_id, Instant::now())
    {
        return ApiError::TooManyRequests("Too Many Requests".into()).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_buckets_refill_and_are_separate() {
        let limiter = TenantLimiter::new(10.0, 2);
        let t0 = Instant::now();
        assert!(limiter.admit("a", t0));
        assert!(limiter.admit("a", t0));
        assert!(!limiter.admit("a", t0));
        assert!(limiter.admit("b", t0));
        assert!(limiter.admit("a", t0 + Duration::from_millis(100)));
        assert!(!limiter.admit("a", t0 + Duration::from_millis(100)));
    }

    #[test]
    fn dates_convert() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(to_day(d).to_string(), "2026-11-25");
        assert_eq!(to_date(to_day(d)), d);
    }
}
