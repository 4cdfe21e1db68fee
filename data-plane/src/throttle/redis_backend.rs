//! The region-wide decision: one Lua script per request, run atomically by
//! Redis, checks the quota and every bucket (GCRA on Redis's own clock, so
//! node clocks do not matter) and only if all admit, takes from all of them
//! and counts the request. One round trip (EVALSHA; EVAL once per script load).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Check, Outcome};

/// KEYS: the n bucket keys, then the quota counter and the daily counter
/// (an untouched key of the same tenant when unused, so all share one slot).
/// ARGV: n, then interval_us and burst per bucket, then quota limit (-1:
/// none), quota TTL and daily TTL in seconds (0: no daily counter).
/// TATs are µs since the epoch: below 2^53, and written with %.0f because
/// Lua's tostring would round them to 14 digits.
const SCRIPT: &str = r"
local n = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local qlimit = tonumber(ARGV[2 + 2 * n])
if qlimit >= 0 then
  local used = tonumber(redis.call('GET', KEYS[n + 1]) or '0')
  if used >= qlimit then return 2 end
end
local tats = {}
for i = 1, n do
  local interval = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  if interval <= 0 then return 1 end
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  if new_tat - now > burst * interval then return 1 end
  tats[i] = new_tat
end
for i = 1, n do
  local ttl_ms = math.floor((tats[i] - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl_ms)
end
if qlimit >= 0 then
  redis.call('INCR', KEYS[n + 1])
  redis.call('EXPIRE', KEYS[n + 1], tonumber(ARGV[3 + 2 * n]))
end
if tonumber(ARGV[4 + 2 * n]) > 0 then
  redis.call('INCR', KEYS[n + 2])
  redis.call('EXPIRE', KEYS[n + 2], tonumber(ARGV[4 + 2 * n]))
end
return 0
";

pub struct RedisBackend {
    client: redis::Client,
    script: redis::Script,
    timeout: Duration,
}

impl RedisBackend {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            script: redis::Script::new(SCRIPT),
            timeout,
        })
    }

    /// A connection that reconnects by itself; fails when Redis is unreachable now.
    pub async fn connect(&self) -> Result<ConnectionManager, redis::RedisError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(0);
        ConnectionManager::new_with_config(self.client.clone(), config).await
    }

    pub async fn decide(
        &self,
        connection: &mut ConnectionManager,
        check: &Check<'_>,
    ) -> Result<Outcome, redis::RedisError> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(check.levels.len());
        for level in check.levels.iter() {
            invocation.key(&*level.key);
            invocation.arg(level.rate.interval_us).arg(level.rate.burst);
        }
        match &check.quota {
            Some(q) => {
                invocation.key(&q.key);
                invocation.arg(q.limit).arg(q.ttl_seconds);
            }
            None => {
                invocation.key(&*check.unused_key);
                invocation.arg(-1).arg(0);
            }
        }
        match &check.daily {
            Some(daily) => {
                invocation.key(daily);
                invocation.arg(apigw_proto::usage::DAILY_TTL_SECONDS);
            }
            None => {
                invocation.key(&*check.unused_key);
                invocation.arg(0);
            }
        }
        let code: i64 = invocation.invoke_async(connection).await?;
        Ok(match code {
            0 => Outcome::Admitted,
            2 => Outcome::QuotaExceeded,
            _ => Outcome::Throttled,
        })
    }

    /// Reads counters (usage, quota) by key; missing ones are `None`.
    pub async fn counters(
        connection: &mut ConnectionManager,
        keys: &[String],
    ) -> Result<Vec<Option<i64>>, redis::RedisError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        redis::cmd("MGET").arg(keys).query_async(connection).await
    }
}
