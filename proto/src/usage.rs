//! The names both planes give to region-wide throttle and usage state in
//! Redis, and the UTC calendar arithmetic behind quota periods. Keys of one
//! tenant share the `{account}` hash tag, so one script may touch them all
//! (one slot, also on a Redis Cluster).

/// `{account}:region`: the prefix of every key of a tenant in a region.
pub fn prefix(account_id: &str, region: &str) -> String {
    format!("{{{account_id}}}:{region}")
}

/// Requests a key was admitted on one UTC day (`YYYY-MM-DD`) under a plan.
pub fn daily_key(account_id: &str, region: &str, plan_id: &str, key_id: &str, day: &str) -> String {
    format!("{}:u:{plan_id}:{key_id}:{day}", prefix(account_id, region))
}

/// Requests counted against a key's quota in the period starting on `period_start`.
pub fn quota_key(
    account_id: &str,
    region: &str,
    plan_id: &str,
    key_id: &str,
    period_start: &str,
) -> String {
    format!(
        "{}:q:{plan_id}:{key_id}:{period_start}",
        prefix(account_id, region)
    )
}

/// How long daily counters are kept: longer than GetUsage's 90-day window.
pub const DAILY_TTL_SECONDS: u64 = 100 * 86_400;

/// A UTC calendar day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    pub fn from_epoch_seconds(seconds: i64) -> Self {
        Day(seconds.div_euclid(86_400))
    }

    /// Civil date from a day count (proleptic Gregorian).
    pub fn ymd(self) -> (i64, u32, u32) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = yoe + era * 400 + i64::from(m <= 2);
        (y, m, d)
    }

    pub fn from_ymd(y: i64, m: u32, d: u32) -> Self {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let m = i64::from(m);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day(era * 146_097 + doe - 719_468)
    }

    /// The first day of the quota period (`DAY`, `WEEK` from Monday, `MONTH`) holding this day.
    pub fn period_start(self, period: &str) -> Day {
        match period {
            // 1970-01-01 was a Thursday: Monday-based weekday = (days + 3) mod 7.
            "WEEK" => Day(self.0 - (self.0 + 3).rem_euclid(7)),
            "MONTH" => {
                let (y, m, _) = self.ymd();
                Day::from_ymd(y, m, 1)
            }
            _ => self,
        }
    }

    /// The first day of the next period.
    pub fn period_end(self, period: &str) -> Day {
        let start = self.period_start(period);
        match period {
            "WEEK" => Day(start.0 + 7),
            "MONTH" => {
                let (y, m, _) = start.ymd();
                if m == 12 {
                    Day::from_ymd(y + 1, 1, 1)
                } else {
                    Day::from_ymd(y, m + 1, 1)
                }
            }
            _ => Day(start.0 + 1),
        }
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_print() {
        assert_eq!(Day(0).to_string(), "1970-01-01");
        let d = Day::from_ymd(2026, 11, 25);
        assert_eq!(d.to_string(), "2026-11-25");
        assert_eq!(Day::from_ymd(2024, 2, 29).to_string(), "2024-02-29");
        assert_eq!(
            Day::from_epoch_seconds(1_764_028_800).to_string(),
            "2025-11-25"
        );
        assert_eq!(Day::from_epoch_seconds(-1).to_string(), "1969-12-31");
    }

    #[test]
    fn offset_reduces_only_the_first_period() {
        let quota = crate::snapshot::QuotaLimits {
            limit: 100,
            offset: 30,
            period: "MONTH".into(),
        };
        let created = Day::from_ymd(2026, 11, 10);
        assert_eq!(quota.limit_on(Day::from_ymd(2026, 11, 10), created), 70);
        assert_eq!(quota.limit_on(Day::from_ymd(2026, 11, 30), created), 70);
        assert_eq!(quota.limit_on(Day::from_ymd(2026, 12, 1), created), 100);
        let weekly = crate::snapshot::QuotaLimits {
            period: "WEEK".into(),
            offset: 150,
            ..quota
        };
        // Never below zero; the next week (from Monday 2026-11-16) is whole.
        assert_eq!(weekly.limit_on(Day::from_ymd(2026, 11, 15), created), 0);
        assert_eq!(weekly.limit_on(Day::from_ymd(2026, 11, 16), created), 100);
    }

    #[test]
    fn periods() {
        let wed = Day::from_ymd(2026, 11, 25);
        assert_eq!(wed.period_start("DAY"), wed);
        assert_eq!(wed.period_start("WEEK").to_string(), "2026-11-23");
        assert_eq!(wed.period_end("WEEK").to_string(), "2026-11-30");
        assert_eq!(wed.period_start("MONTH").to_string(), "2026-11-01");
        assert_eq!(
            Day::from_ymd(2026, 12, 31).period_end("MONTH").to_string(),
            "2027-01-01"
        );
    }

    #[test]
    fn keys_share_the_tenant_hash_tag() {
        assert_eq!(
            quota_key("123", "us-east-1", "p", "k", "2026-11-01"),
            "{123}:us-east-1:q:p:k:2026-11-01"
        );
        assert!(daily_key("123", "r", "p", "k", "d").starts_with("{123}:r:"));
    }
}
