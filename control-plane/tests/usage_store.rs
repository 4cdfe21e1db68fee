//! API keys, usage plans, plan keys and daily usage on both backends.

use apigw_control_plane::store::api_keys::{self, ApiKeyRow};
use apigw_control_plane::store::tenants::{self, TenantRow};
use apigw_control_plane::store::usage_plans::{self, UsagePlanRow};
use apigw_control_plane::store::{Store, StoreError};
use apigw_control_plane::usage::{self, UsageCounters, UsageError};
use apigw_proto::snapshot::QuotaLimits;
use apigw_proto::usage::Day;
use futures::future::BoxFuture;

/// Counters that report `used = day number mod 100` for key `k1` only.
struct FixedCounters;

impl UsageCounters for FixedCounters {
    fn daily<'a>(
        &'a self,
        _account_id: &'a str,
        region: &'a str,
        _plan_id: &'a str,
        key_id: &'a str,
        days: &'a [Day],
    ) -> BoxFuture<'a, Result<Vec<(Day, i64)>, UsageError>> {
        Box::pin(async move {
            assert_eq!(region, "eu-west-1");
            Ok(if key_id == "k1" {
                days.iter().map(|d| (*d, d.0 % 100)).collect()
            } else {
                Vec::new()
            })
        })
    }

    fn set_remaining<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
        _: &'a str,
        _: &'a QuotaLimits,
        _: Day,
        _: i64,
    ) -> BoxFuture<'a, Result<(), UsageError>> {
        Box::pin(async { Ok(()) })
    }
}

mod common;

const ACCOUNT: &str = "111111111111";

fn key(id: &str, sha: &str, enabled: bool) -> ApiKeyRow {
    ApiKeyRow {
        account_id: ACCOUNT.into(),
        key_id: id.into(),
        created_at: 10,
        version: 1,
        doc: format!("{{\"id\":\"{id}\",\"enabled\":{enabled}}}"),
        value_sealed: "sealed".into(),
        value_sha256: sha.into(),
    }
}

fn plan(id: &str, stages: &str) -> UsagePlanRow {
    UsagePlanRow {
        account_id: ACCOUNT.into(),
        plan_id: id.into(),
        created_at: 10,
        version: 1,
        doc: format!(
            "{{\"id\":\"{id}\",\"apiStages\":{stages},\"throttle\":{{\"burstLimit\":5,\"rateLimit\":2.5}},\
             \"quota\":{{\"limit\":100,\"offset\":0,\"period\":\"WEEK\"}}}}"
        ),
    }
}

async fn seed(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    tenants::insert_tenant(
        &mut tx,
        &TenantRow {
            account_id: ACCOUNT.into(),
            name: "t".into(),
            created_at: 1,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

both_backends! {
    keys_are_unique_by_value_and_versioned => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        assert!(api_keys::insert(&mut tx, &key("k1", "aa", true)).await.unwrap());
        // The same value again is refused, whatever the id.
        assert!(!api_keys::insert(&mut tx, &key("k2", "aa", true)).await.unwrap());
        assert!(api_keys::insert(&mut tx, &key("k2", "bb", false)).await.unwrap());
        assert_eq!(api_keys::find_by_hash(&mut tx, ACCOUNT, "bb").await.unwrap().unwrap().key_id, "k2");
        let mut row = api_keys::get(&mut tx, ACCOUNT, "k1").await.unwrap().unwrap();
        row.doc = "{\"id\":\"k1\",\"enabled\":false}".into();
        api_keys::update(&mut tx, &row).await.unwrap();
        // A writer that read version 1 loses to the one that bumped it.
        assert!(matches!(api_keys::update(&mut tx, &row).await, Err(StoreError::ConcurrentModification)));
        assert_eq!(api_keys::list(&mut tx, ACCOUNT).await.unwrap().len(), 2);
        assert!(api_keys::delete(&mut tx, ACCOUNT, "k1").await.unwrap());
        assert!(!api_keys::delete(&mut tx, ACCOUNT, "k1").await.unwrap());
        tx.commit().await.unwrap();
    };

    plans_keys_and_stage_view => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        usage_plans::insert(&mut tx, &plan("p1", r#"[{"apiId":"a1","stage":"prod","throttle":{"/pets/GET":{"burstLimit":1,"rateLimit":1.0}}}]"#)).await.unwrap();
        usage_plans::insert(&mut tx, &plan("p2", "[]")).await.unwrap();
        api_keys::insert(&mut tx, &key("k1", "h1", true)).await.unwrap();
        api_keys::insert(&mut tx, &key("k2", "h2", false)).await.unwrap();
        assert!(usage_plans::add_key(&mut tx, ACCOUNT, "p1", "k1").await.unwrap());
        assert!(!usage_plans::add_key(&mut tx, ACCOUNT, "p1", "k1").await.unwrap());
        usage_plans::add_key(&mut tx, ACCOUNT, "p1", "k2").await.unwrap();
        usage_plans::add_key(&mut tx, ACCOUNT, "p2", "k1").await.unwrap();
        assert_eq!(usage_plans::keys_of_plan(&mut tx, ACCOUNT, "p1").await.unwrap(), ["k1", "k2"]);
        assert_eq!(usage_plans::plans_of_key(&mut tx, ACCOUNT, "k1").await.unwrap(), ["p1", "p2"]);

        // The stage sees p1 only, with its override and only the enabled key's digest.
        let view = usage_plans::stage_plans(&mut tx, ACCOUNT, "a1", "prod").await.unwrap();
        assert_eq!(view.len(), 1);
        assert_eq!(view[0].id, "p1");
        assert_eq!(view[0].keys.len(), 1);
        assert_eq!(view[0].keys[0].sha256, "h1");
        assert_eq!(view[0].throttle.unwrap().burst_limit, 5);
        assert_eq!(view[0].quota.as_ref().unwrap().period, "WEEK");
        assert_eq!(view[0].method_throttle["/pets/GET"].rate_limit, 1.0);
        assert!(usage_plans::stage_plans(&mut tx, ACCOUNT, "a1", "dev").await.unwrap().is_empty());

        // Deleting a key detaches it from its plans.
        api_keys::delete(&mut tx, ACCOUNT, "k1").await.unwrap();
        assert_eq!(usage_plans::keys_of_plan(&mut tx, ACCOUNT, "p1").await.unwrap(), ["k2"]);
        assert!(usage_plans::delete(&mut tx, ACCOUNT, "p1").await.unwrap());
        assert!(usage_plans::plans_of_key(&mut tx, ACCOUNT, "k2").await.unwrap().is_empty());
        tx.commit().await.unwrap();
    };

    daily_usage_only_grows_unless_set => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        usage_plans::record_usage(&mut tx, ACCOUNT, "p1", "k1", "2026-11-24", 7).await.unwrap();
        usage_plans::record_usage(&mut tx, ACCOUNT, "p1", "k1", "2026-11-24", 3).await.unwrap();
        usage_plans::record_usage(&mut tx, ACCOUNT, "p1", "k1", "2026-11-25", 2).await.unwrap();
        usage_plans::record_usage(&mut tx, ACCOUNT, "p1", "k1", "2026-11-27", 9).await.unwrap();
        let rows = usage_plans::usage(&mut tx, ACCOUNT, "p1", "2026-11-24", "2026-11-25").await.unwrap();
        assert_eq!(rows, vec![
            ("k1".to_string(), "2026-11-24".to_string(), 7),
            ("k1".to_string(), "2026-11-25".to_string(), 2),
        ]);
        usage_plans::set_usage(&mut tx, ACCOUNT, "p1", "k1", "2026-11-24", 1).await.unwrap();
        let rows = usage_plans::usage(&mut tx, ACCOUNT, "p1", "2026-11-24", "2026-11-24").await.unwrap();
        assert_eq!(rows[0].2, 1);
        tx.commit().await.unwrap();
    };

    persisting_copies_counters_of_every_plan_key => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        usage_plans::insert(&mut tx, &plan("p1", "[]")).await.unwrap();
        api_keys::insert(&mut tx, &key("k1", "h1", true)).await.unwrap();
        api_keys::insert(&mut tx, &key("k2", "h2", true)).await.unwrap();
        usage_plans::add_key(&mut tx, ACCOUNT, "p1", "k1").await.unwrap();
        usage_plans::add_key(&mut tx, ACCOUNT, "p1", "k2").await.unwrap();
        tx.commit().await.unwrap();
        let days = [Day::from_ymd(2026, 11, 24), Day::from_ymd(2026, 11, 25)];
        usage::persist_once(&store, &FixedCounters, "eu-west-1", &days).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let rows = usage_plans::usage(&mut tx, ACCOUNT, "p1", "2026-11-01", "2026-11-30").await.unwrap();
        assert_eq!(rows, vec![
            ("k1".to_string(), "2026-11-24".to_string(), days[0].0 % 100),
            ("k1".to_string(), "2026-11-25".to_string(), days[1].0 % 100),
        ]);
    };
}
