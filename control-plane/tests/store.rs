//! The repository suite, run against both backends: every test below runs
//! once on SQLite (a temp file) and once on Postgres (a fresh database on
//! `APIGW_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Postgres being unreachable is a failure, not a skip (see `common/`).

use apigw_control_plane::store::deployments::{self, DeploymentRow};
use apigw_control_plane::store::rest_apis::{self, RestApiRow};
use apigw_control_plane::store::stages::{self, StageRow};
use apigw_control_plane::store::tenants::{self, AccessKeyRow, TenantRow};
use apigw_control_plane::store::{Store, StoreError};

mod common;

fn tenant(id: &str) -> TenantRow {
    TenantRow {
        account_id: id.into(),
        name: format!("t{id}"),
        created_at: 1,
    }
}

fn api(id: &str, account: &str) -> RestApiRow {
    RestApiRow {
        api_id: id.into(),
        account_id: account.into(),
        created_at: 10,
        version: 1,
        doc: "{}".into(),
    }
}

async fn seed(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    tenants::insert_tenant(&mut tx, &tenant("111111111111"))
        .await
        .unwrap();
    tenants::insert_tenant(&mut tx, &tenant("222222222222"))
        .await
        .unwrap();
    rest_apis::insert(&mut tx, &api("apione", "111111111111"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn deployment(id: &str) -> DeploymentRow {
    DeploymentRow {
        api_id: "apione".into(),
        deployment_id: id.into(),
        account_id: "111111111111".into(),
        created_at: 11,
        doc: "{}".into(),
        snapshot: "{}".into(),
    }
}

both_backends! {
    tenants_and_keys => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        let key = AccessKeyRow {
            access_key_id: "AKIA1".into(),
            account_id: "111111111111".into(),
            secret_sealed: "sealed".into(),
            created_at: 5,
        };
        tenants::insert_access_key(&mut tx, &key).await.unwrap();
        assert_eq!(tenants::get_access_key(&mut tx, "AKIA1").await.unwrap(), Some(key.clone()));
        assert_eq!(tenants::list_access_keys(&mut tx, "111111111111").await.unwrap(), vec![key]);
        assert!(tenants::list_access_keys(&mut tx, "222222222222").await.unwrap().is_empty());
        assert!(tenants::delete_access_key(&mut tx, "AKIA1").await.unwrap());
        assert!(!tenants::delete_access_key(&mut tx, "AKIA1").await.unwrap());
        assert_eq!(tenants::list_tenants(&mut tx).await.unwrap().len(), 2);
        // A duplicate primary key fails and the transaction can be abandoned.
        assert!(tenants::insert_tenant(&mut tx, &tenant("111111111111")).await.is_err());
    };

    rest_apis_are_scoped_by_tenant => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        assert!(rest_apis::get(&mut tx, "111111111111", "apione").await.unwrap().is_some());
        assert!(rest_apis::get(&mut tx, "222222222222", "apione").await.unwrap().is_none());
        assert!(rest_apis::list(&mut tx, "222222222222").await.unwrap().is_empty());
        assert!(!rest_apis::delete(&mut tx, "222222222222", "apione").await.unwrap());
        assert!(matches!(
            rest_apis::update(&mut tx, "222222222222", "apione", 1, "{\"x\":1}").await,
            Err(StoreError::ConcurrentModification)
        ));
        assert_eq!(rest_apis::get(&mut tx, "111111111111", "apione").await.unwrap().unwrap().doc, "{}");
    };

    compare_and_swap_detects_lost_updates => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        rest_apis::update(&mut tx, "111111111111", "apione", 1, "{\"v\":2}").await.unwrap();
        // A writer still holding version 1 loses.
        assert!(matches!(
            rest_apis::update(&mut tx, "111111111111", "apione", 1, "{\"v\":3}").await,
            Err(StoreError::ConcurrentModification)
        ));
        let row = rest_apis::get(&mut tx, "111111111111", "apione").await.unwrap().unwrap();
        assert_eq!((row.version, row.doc.as_str()), (2, "{\"v\":2}"));
    };

    uncommitted_work_is_discarded => |store: Store| async move {
        seed(&store).await;
        {
            let mut tx = store.begin().await.unwrap();
            rest_apis::insert(&mut tx, &api("apitwo", "111111111111")).await.unwrap();
            rest_apis::update(&mut tx, "111111111111", "apione", 1, "{\"changed\":true}").await.unwrap();
            // Dropped without commit: a failed call.
        }
        let mut tx = store.begin().await.unwrap();
        assert!(rest_apis::get(&mut tx, "111111111111", "apitwo").await.unwrap().is_none());
        assert_eq!(rest_apis::get(&mut tx, "111111111111", "apione").await.unwrap().unwrap().doc, "{}");
    };

    deployments_and_stages => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        deployments::insert(&mut tx, &deployment("d1")).await.unwrap();
        deployments::insert(&mut tx, &deployment("d2")).await.unwrap();
        let stage = StageRow {
            api_id: "apione".into(),
            stage_name: "prod".into(),
            account_id: "111111111111".into(),
            deployment_id: "d1".into(),
            created_at: 12,
            version: 1,
            doc: "{}".into(),
        };
        stages::insert(&mut tx, &stage).await.unwrap();
        assert_eq!(stages::list(&mut tx, "111111111111", "apione", Some("d1")).await.unwrap().len(), 1);
        assert!(stages::list(&mut tx, "111111111111", "apione", Some("d2")).await.unwrap().is_empty());
        assert_eq!(stages::list(&mut tx, "111111111111", "apione", None).await.unwrap().len(), 1);
        // Rollback: point the stage at the other deployment.
        stages::update(&mut tx, &StageRow { deployment_id: "d2".into(), ..stage.clone() }).await.unwrap();
        // A second writer that also read version 1 loses.
        assert!(matches!(
            stages::update(&mut tx, &StageRow { deployment_id: "d1".into(), ..stage.clone() }).await,
            Err(StoreError::ConcurrentModification)
        ));
        assert_eq!(stages::get(&mut tx, "111111111111", "apione", "prod").await.unwrap().unwrap().deployment_id, "d2");
        assert!(stages::get(&mut tx, "222222222222", "apione", "prod").await.unwrap().is_none());
        assert!(deployments::get(&mut tx, "222222222222", "apione", "d1").await.unwrap().is_none());
        assert_eq!(deployments::list(&mut tx, "111111111111", "apione").await.unwrap().len(), 2);
        assert!(deployments::delete(&mut tx, "111111111111", "apione", "d1").await.unwrap());
        // Deleting the API takes its stages and deployments with it.
        assert!(rest_apis::delete(&mut tx, "111111111111", "apione").await.unwrap());
        assert!(stages::get(&mut tx, "111111111111", "apione", "prod").await.unwrap().is_none());
        assert!(deployments::list(&mut tx, "111111111111", "apione").await.unwrap().is_empty());
    };

    a_stage_needs_its_deployment => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        let orphan = StageRow {
            api_id: "apione".into(),
            stage_name: "prod".into(),
            account_id: "111111111111".into(),
            deployment_id: "missing".into(),
            created_at: 12,
            version: 1,
            doc: "{}".into(),
        };
        assert!(stages::insert(&mut tx, &orphan).await.is_err());
    };
}

#[tokio::test]
async fn reopening_keeps_data_and_skips_applied_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let url = Store::sqlite_url(&dir.path().join("t.db"));
    let store = Store::open(&url).await.unwrap();
    seed(&store).await;
    store.close().await;
    let store = Store::open(&url).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(
        rest_apis::get(&mut tx, "111111111111", "apione")
            .await
            .unwrap()
            .is_some()
    );
}
