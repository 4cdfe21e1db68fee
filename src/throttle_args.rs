//! Command-line settings for API keys, usage plans and throttling, shared by
//! `standalone`, `control-plane` and `data-plane`; and standalone's bridge
//! from the control plane's GetUsage to its in-process data plane's counters.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use apigw_control_plane::usage::{UsageConfig, UsageCounters, UsageError};
use apigw_data_plane::throttle::{RedisFailure, Throttle, ThrottleConfig};
use apigw_proto::snapshot::QuotaLimits;
use apigw_proto::usage::Day;
use futures::future::BoxFuture;

#[derive(Debug, Clone, clap::Args)]
pub struct ThrottleArgs {
    /// Redis holding region-wide buckets, quotas and usage, e.g. `redis://127.0.0.1:6379/0`
    /// [default: in-process buckets (one node only)].
    #[arg(long, env = "APIGW_REDIS_URL")]
    pub redis_url: Option<String>,
    /// While Redis is unreachable: `open` decides with local buckets at this
    /// node's share of each rate; `closed` refuses limited requests (429).
    #[arg(long, env = "APIGW_THROTTLE_ON_REDIS_FAILURE", default_value = "open",
          value_parser = ["open", "closed"])]
    pub throttle_on_redis_failure: String,
    /// Nodes sharing the region's budget; a node falling back takes 1/N of each rate.
    #[arg(long, env = "APIGW_THROTTLE_NODE_SHARE", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub throttle_node_share: u32,
    /// While Redis is down, one request per this many milliseconds tries it again.
    #[arg(long, env = "APIGW_THROTTLE_PROBE_MS", default_value_t = 1000)]
    pub throttle_probe_ms: u64,
    /// Account-level steady rate per tenant per region (requests per second).
    #[arg(long, env = "APIGW_ACCOUNT_RATE_LIMIT", default_value_t = 10_000.0)]
    pub account_rate_limit: f64,
    /// Account-level burst per tenant per region.
    #[arg(long, env = "APIGW_ACCOUNT_BURST_LIMIT", default_value_t = 5_000)]
    pub account_burst_limit: i64,
    /// Management API calls per second per tenant (then 429 TooManyRequestsException).
    #[arg(long, env = "APIGW_MANAGEMENT_RATE_LIMIT", default_value_t = 200.0)]
    pub management_rate_limit: f64,
    #[arg(long, env = "APIGW_MANAGEMENT_BURST_LIMIT", default_value_t = 400)]
    pub management_burst_limit: u32,
    /// Seconds between copies of the usage counters into the database (control plane).
    #[arg(long, env = "APIGW_USAGE_PERSIST_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub usage_persist_seconds: u64,
    /// Seconds added to the clock deciding quota periods and usage days (tests).
    #[arg(
        long,
        env = "APIGW_USAGE_CLOCK_OFFSET_SECONDS",
        default_value_t = 0,
        allow_hyphen_values = true
    )]
    pub usage_clock_offset_seconds: i64,
}

impl ThrottleArgs {
    pub fn throttle_config(&self, region: &str) -> ThrottleConfig {
        ThrottleConfig {
            redis_url: self.redis_url.clone(),
            region: region.to_owned(),
            account_rate: self.account_rate_limit,
            account_burst: self.account_burst_limit,
            on_redis_failure: if self.throttle_on_redis_failure == "closed" {
                RedisFailure::Closed
            } else {
                RedisFailure::Open
            },
            node_share: self.throttle_node_share,
            probe_interval: Duration::from_millis(self.throttle_probe_ms.max(1)),
            clock_offset_seconds: self.usage_clock_offset_seconds,
            ..Default::default()
        }
    }

    pub fn usage_config(&self) -> UsageConfig {
        UsageConfig {
            redis_url: self.redis_url.clone(),
            clock_offset_seconds: self.usage_clock_offset_seconds,
            management_rate: self.management_rate_limit,
            management_burst: self.management_burst_limit,
            persist_interval: Duration::from_secs(self.usage_persist_seconds),
        }
    }
}

/// GetUsage's counters in standalone: whatever the in-process data plane
/// counts with (its local buckets, or Redis when given one).
#[derive(Default, Clone)]
pub struct InProcessCounters(pub Arc<OnceLock<Arc<Throttle>>>);

impl InProcessCounters {
    fn throttle(&self) -> Result<&Throttle, UsageError> {
        self.0
            .get()
            .map(|t| &**t)
            .ok_or_else(|| UsageError::Other("the data plane has not started".into()))
    }
}

impl UsageCounters for InProcessCounters {
    fn daily<'a>(
        &'a self,
        account_id: &'a str,
        _region: &'a str,
        plan_id: &'a str,
        key_id: &'a str,
        days: &'a [Day],
    ) -> BoxFuture<'a, Result<Vec<(Day, i64)>, UsageError>> {
        Box::pin(async move {
            Ok(self
                .throttle()?
                .daily_usage(account_id, plan_id, key_id, days)
                .await?)
        })
    }

    fn set_remaining<'a>(
        &'a self,
        account_id: &'a str,
        _region: &'a str,
        plan_id: &'a str,
        key_id: &'a str,
        quota: &'a QuotaLimits,
        today: Day,
        remaining: i64,
    ) -> BoxFuture<'a, Result<(), UsageError>> {
        Box::pin(async move {
            let start = today.period_start(&quota.period);
            let ttl = (today.period_end(&quota.period).0 - today.0 + 1) * 86_400;
            let used = (quota.limit - remaining).max(0);
            Ok(self
                .throttle()?
                .set_quota_used(account_id, plan_id, key_id, start, used, ttl)
                .await?)
        })
    }
}
