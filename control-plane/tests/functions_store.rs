//! The functions repository and service keys on both backends (see `store.rs`).

use apigw_control_plane::store::functions::{self, FunctionRow};
use apigw_control_plane::store::tenants::{self, ServiceKeyRow, TenantRow};
use apigw_control_plane::store::{Store, StoreError};

mod common;

fn function(account: &str, name: &str) -> FunctionRow {
    FunctionRow {
        account_id: account.into(),
        function_name: name.into(),
        created_at: 10,
        version: 1,
        doc: format!("{{\"name\":\"{name}\"}}"),
        code_sha256: "sha-1".into(),
    }
}

async fn seed(store: &Store) {
    let mut tx = store.begin().await.unwrap();
    for id in ["111111111111", "222222222222"] {
        tenants::insert_tenant(
            &mut tx,
            &TenantRow {
                account_id: id.into(),
                name: id.into(),
                created_at: 1,
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

both_backends! {
    functions_crud_with_binary_code => |store: Store| async move {
        seed(&store).await;
        // Every byte value must survive the BLOB/bytea round trip.
        let code: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let mut tx = store.begin().await.unwrap();
        functions::insert(&mut tx, &function("111111111111", "b"), &code).await.unwrap();
        functions::insert(&mut tx, &function("111111111111", "a"), b"zip-a").await.unwrap();
        functions::insert(&mut tx, &function("222222222222", "a"), b"zip-other").await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        assert_eq!(
            functions::get(&mut tx, "111111111111", "b").await.unwrap(),
            Some(function("111111111111", "b"))
        );
        assert_eq!(
            functions::get_code(&mut tx, "111111111111", "b", "sha-1").await.unwrap(),
            Some(code.clone())
        );
        // The code of another digest (changed since) is not returned.
        assert_eq!(functions::get_code(&mut tx, "111111111111", "b", "sha-0").await.unwrap(), None);
        // Tenants are separate namespaces.
        assert_eq!(
            functions::get_code(&mut tx, "222222222222", "a", "sha-1").await.unwrap(),
            Some(b"zip-other".to_vec())
        );
        assert_eq!(functions::get(&mut tx, "222222222222", "b").await.unwrap(), None);
        // Paging: ordered by name, after a marker.
        let names = |rows: Vec<FunctionRow>| rows.into_iter().map(|r| r.function_name).collect::<Vec<_>>();
        assert_eq!(names(functions::list(&mut tx, "111111111111", None, 10).await.unwrap()), ["a", "b"]);
        assert_eq!(names(functions::list(&mut tx, "111111111111", None, 1).await.unwrap()), ["a"]);
        assert_eq!(names(functions::list(&mut tx, "111111111111", Some("a"), 10).await.unwrap()), ["b"]);
        // A duplicate name fails.
        assert!(functions::insert(&mut tx, &function("111111111111", "a"), b"x").await.is_err());
    };

    functions_updates_compare_and_swap => |store: Store| async move {
        seed(&store).await;
        let mut tx = store.begin().await.unwrap();
        functions::insert(&mut tx, &function("111111111111", "f"), b"v1").await.unwrap();
        functions::update_doc(&mut tx, "111111111111", "f", 1, "{\"v\":2}").await.unwrap();
        assert!(matches!(
            functions::update_doc(&mut tx, "111111111111", "f", 1, "{\"v\":3}").await,
            Err(StoreError::ConcurrentModification)
        ));
        functions::update_code(&mut tx, "111111111111", "f", 2, "{\"v\":3}", "sha-2", b"v2").await.unwrap();
        let row = functions::get(&mut tx, "111111111111", "f").await.unwrap().unwrap();
        assert_eq!((row.version, row.doc.as_str(), row.code_sha256.as_str()), (3, "{\"v\":3}", "sha-2"));
        assert_eq!(
            functions::get_code(&mut tx, "111111111111", "f", "sha-2").await.unwrap(),
            Some(b"v2".to_vec())
        );
        assert!(functions::delete(&mut tx, "111111111111", "f").await.unwrap());
        assert!(!functions::delete(&mut tx, "111111111111", "f").await.unwrap());
    };

    service_keys => |store: Store| async move {
        let mut tx = store.begin().await.unwrap();
        let key = ServiceKeyRow {
            access_key_id: "AKSV1".into(),
            secret_sealed: "sealed".into(),
            description: "dp".into(),
            created_at: 5,
        };
        tenants::insert_service_key(&mut tx, &key).await.unwrap();
        assert_eq!(tenants::get_service_key(&mut tx, "AKSV1").await.unwrap(), Some(key.clone()));
        assert_eq!(tenants::list_service_keys(&mut tx).await.unwrap(), vec![key]);
        assert!(tenants::delete_service_key(&mut tx, "AKSV1").await.unwrap());
        assert!(tenants::get_service_key(&mut tx, "AKSV1").await.unwrap().is_none());
    };
}
