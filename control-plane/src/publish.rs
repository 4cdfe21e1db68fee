//! Publishing configuration for data-plane nodes: after a management change,
//! inside the same transaction, the affected snapshot resources are recomputed
//! from the rows and written to `config_resources` with a new version (or
//! turned into tombstones). A call that fails publishes nothing, because its
//! transaction is rolled back with everything else.
//!
//! On Postgres each publication also queues `NOTIFY apigw_config, '<version>'`,
//! delivered at commit to every control-plane replica; the caller wakes its
//! own [`ConfigFeed`](crate::feed::ConfigFeed) after commit too.
//!
//! Resource keys: `stage/{account_id}/{api_id}/{stage_name}`, whose body is the
//! JSON of [`StageSnapshot`]; `principal/{access_key_id}`, whose body is the
//! JSON of [`PrincipalSnapshot`] without key material (the config stream adds
//! the keys each node may hold, see `grpc::config`).

use std::collections::BTreeMap;

use apigw_proto::principal::{self, PrincipalSnapshot};
use apigw_proto::snapshot::{DeploymentSnapshot, StageSnapshot};
use chrono::{Days, NaiveDate};
use serde::Deserialize;
use serde_json::Value;
use sqlx::AnyConnection;

use crate::store::config::{self as config_store, ConfigResourceRow};
use crate::store::{
    Store, StoreResult, deployments, principals, rest_apis, stages, tenants, usage_plans,
};

/// The Postgres channel replicas LISTEN on; the payload is the new version.
pub const NOTIFY_CHANNEL: &str = "apigw_config";

/// Endpoint type used when an API names none (AWS's default).
pub const DEFAULT_ENDPOINT_TYPE: &str = "EDGE";

/// The resource key of a stage.
pub fn stage_key(account_id: &str, api_id: &str, stage_name: &str) -> String {
    format!("stage/{account_id}/{api_id}/{stage_name}")
}

fn api_prefix(account_id: &str, api_id: &str) -> String {
    format!("stage/{account_id}/{api_id}/")
}

/// The parts of a stored REST API document publishing needs.
#[derive(Deserialize)]
struct ApiParts {
    #[serde(default)]
    api: ApiEndpoint,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiEndpoint {
    #[serde(default)]
    endpoint_configuration: EndpointTypes,
}

#[derive(Default, Deserialize)]
struct EndpointTypes {
    #[serde(default)]
    types: Vec<String>,
}

/// The parts of a stored stage document that travel to the data plane.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageParts {
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    method_settings: BTreeMap<String, Value>,
}

/// What a stage's resource should hold now: `None` when the stage (or its API) is gone.
async fn compute_stage(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    stage_name: &str,
    authorizer_cache_generation: u64,
) -> StoreResult<Option<(String, String)>> {
    let Some(api) = rest_apis::get(conn, account_id, api_id).await? else {
        return Ok(None);
    };
    let Some(stage) = stages::get(conn, account_id, api_id, stage_name).await? else {
        return Ok(None);
    };
    let Some(deployment) = deployments::get(conn, account_id, api_id, &stage.deployment_id).await?
    else {
        return Ok(None);
    };
    let api: ApiParts = serde_json::from_str(&api.doc)?;
    let endpoint_type = api
        .api
        .endpoint_configuration
        .types
        .into_iter()
        .next()
        .unwrap_or_else(|| DEFAULT_ENDPOINT_TYPE.to_owned());
    let parts: StageParts = serde_json::from_str(&stage.doc)?;
    let deployment: DeploymentSnapshot = serde_json::from_str(&deployment.snapshot)?;
    let snapshot = StageSnapshot {
        stage_name: stage.stage_name,
        variables: parts.variables,
        method_settings: parts.method_settings,
        deployment,
        usage_plans: usage_plans::stage_plans(conn, account_id, api_id, stage_name).await?,
        authorizer_cache_generation,
    };
    Ok(Some((endpoint_type, serde_json::to_string(&snapshot)?)))
}

/// Takes a new configuration version and queues its notification.
async fn new_version(conn: &mut AnyConnection) -> StoreResult<i64> {
    let version = config_store::next_version(conn).await?;
    config_store::notify(conn, NOTIFY_CHANNEL, version).await?;
    Ok(version)
}

/// Recomputes the stage's resource from the rows in `conn`'s transaction and
/// writes it with a new version. A stage that no longer exists is retracted.
/// Returns the new version, or `None` when nothing changed for the data plane
/// (e.g. only the description or tags of the stage were edited).
pub async fn publish_stage(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    stage_name: &str,
) -> StoreResult<Option<u64>> {
    publish_stage_with(conn, account_id, api_id, stage_name, false).await
}

/// FlushStageAuthorizersCache: republishes the stage with its authorizer
/// cache generation bumped. Every node serving it sees a new resource
/// version and compiles the stage anew, with empty authorizer caches.
pub async fn flush_stage_authorizers(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    stage_name: &str,
) -> StoreResult<Option<u64>> {
    publish_stage_with(conn, account_id, api_id, stage_name, true).await
}

/// The generation a published stage body carries (0 when absent).
fn authorizer_cache_generation(body: &str) -> u64 {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Generation {
        #[serde(default)]
        authorizer_cache_generation: u64,
    }
    serde_json::from_str::<Generation>(body).map_or(0, |g| g.authorizer_cache_generation)
}

async fn publish_stage_with(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    stage_name: &str,
    flush_authorizers: bool,
) -> StoreResult<Option<u64>> {
    let key = stage_key(account_id, api_id, stage_name);
    let old = config_store::get(conn, &key).await?;
    // The generation lives in the published resource itself: every
    // republication keeps it, a flush bumps it.
    let generation = old
        .as_ref()
        .and_then(|o| o.body.as_deref())
        .map_or(0, authorizer_cache_generation)
        + u64::from(flush_authorizers);
    let Some((endpoint_type, body)) =
        compute_stage(conn, account_id, api_id, stage_name, generation).await?
    else {
        return retract_stage(conn, account_id, api_id, stage_name).await;
    };
    let row = ConfigResourceRow {
        resource_key: key,
        version: 0,
        account_id: account_id.to_owned(),
        endpoint_type,
        body: Some(body),
    };
    write_if_changed(conn, old.as_ref(), row).await
}

/// Writes `row` (its version taken now) unless `old` already holds the same
/// body for the same endpoint type; returns the new version.
async fn write_if_changed(
    conn: &mut AnyConnection,
    old: Option<&ConfigResourceRow>,
    mut row: ConfigResourceRow,
) -> StoreResult<Option<u64>> {
    if old.is_some_and(|o| o.body == row.body && o.endpoint_type == row.endpoint_type) {
        return Ok(None);
    }
    let version = new_version(conn).await?;
    row.version = version;
    config_store::upsert(conn, &row).await?;
    Ok(Some(as_version(version)))
}

/// Writes a tombstone for the stage with a new version; `None` when there was
/// nothing live to remove.
pub async fn retract_stage(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
    stage_name: &str,
) -> StoreResult<Option<u64>> {
    tombstone(conn, &stage_key(account_id, api_id, stage_name)).await
}

/// Writes a tombstone for the resource `key` with a new version; `None`
/// when there was nothing live to remove.
async fn tombstone(conn: &mut AnyConnection, key: &str) -> StoreResult<Option<u64>> {
    let Some(old) = config_store::get(conn, key)
        .await?
        .filter(|r| r.body.is_some())
    else {
        return Ok(None);
    };
    let version = new_version(conn).await?;
    config_store::upsert(
        conn,
        &ConfigResourceRow {
            version,
            body: None,
            ..old
        },
    )
    .await?;
    Ok(Some(as_version(version)))
}

/// Tombstones every live stage resource of the API, all under one new
/// version; `None` when it had none. Works from `config_resources` alone, so
/// it may run before or after the API's rows are deleted.
pub async fn retract_api(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
) -> StoreResult<Option<u64>> {
    let prefix = api_prefix(account_id, api_id);
    if config_store::list_live_with_prefix(conn, &prefix)
        .await?
        .is_empty()
    {
        return Ok(None);
    }
    let version = new_version(conn).await?;
    config_store::tombstone_prefix(conn, &prefix, version).await?;
    Ok(Some(as_version(version)))
}

/// Republishes every stage of the API (e.g. after its endpoint type changed).
/// Returns the highest new version, `None` when nothing changed.
pub async fn publish_api_stages(
    conn: &mut AnyConnection,
    account_id: &str,
    api_id: &str,
) -> StoreResult<Option<u64>> {
    let mut last = None;
    for stage in stages::list(conn, account_id, api_id, None).await? {
        if let Some(v) = publish_stage(conn, account_id, api_id, &stage.stage_name).await? {
            last = Some(v);
        }
    }
    Ok(last)
}

/// Publishes every stage that has no live resource yet: stages created before
/// config streaming existed (migration 0002 cannot compute snapshots in SQL).
/// Run at start-up; returns the highest new version, `None` when all were
/// already published.
pub async fn backfill(store: &Store) -> StoreResult<Option<u64>> {
    let mut tx = store.begin().await?;
    let keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT s.account_id, s.api_id, s.stage_name FROM stages s \
         WHERE NOT EXISTS (SELECT 1 FROM config_resources c WHERE c.resource_key = \
         'stage/' || s.account_id || '/' || s.api_id || '/' || s.stage_name AND c.body IS NOT NULL) \
         ORDER BY s.account_id, s.api_id, s.stage_name",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut last = None;
    for (account_id, api_id, stage_name) in keys {
        if let Some(v) = publish_stage(&mut tx, &account_id, &api_id, &stage_name).await? {
            last = Some(v);
        }
    }
    tx.commit().await?;
    Ok(last)
}

/// The UTC days a principal's signing keys are derived for on `today`:
/// yesterday (callers whose clock lags), today, and the next two days, so a
/// node keeps verifying callers for a day or more after it last heard from
/// the control plane. [`refresh_principals`] moves the window daily.
pub fn key_dates(today: NaiveDate) -> Vec<String> {
    (0..4u64)
        .filter_map(|i| {
            today
                .checked_sub_days(Days::new(1))?
                .checked_add_days(Days::new(i))
        })
        .map(|d| d.format("%Y%m%d").to_string())
        .collect()
}

/// What a key's principal resource should hold now: the tenant's own access
/// keys are the account's administrators, `principals` rows carry a policy.
async fn compute_principal(
    conn: &mut AnyConnection,
    access_key_id: &str,
    today: NaiveDate,
) -> StoreResult<Option<PrincipalSnapshot>> {
    if let Some(key) = tenants::get_access_key(conn, access_key_id).await? {
        return Ok(Some(PrincipalSnapshot {
            access_key_id: key.access_key_id,
            arn: format!("arn:aws:iam::{}:root", key.account_id),
            unique_id: key.account_id.clone(),
            account_id: key.account_id,
            admin: true,
            policy: None,
            dates: key_dates(today),
            signing_keys: Default::default(),
        }));
    }
    let Some(p) = principals::get(conn, access_key_id).await? else {
        return Ok(None);
    };
    Ok(Some(PrincipalSnapshot {
        arn: format!("arn:aws:iam::{}:{}/{}", p.account_id, p.kind, p.name),
        access_key_id: p.access_key_id,
        account_id: p.account_id,
        unique_id: p.unique_id,
        admin: false,
        policy: Some(p.policy),
        dates: key_dates(today),
        signing_keys: Default::default(),
    }))
}

/// Recomputes the principal resource of an access key (a tenant's key or a
/// principal's) and writes it with a new version if it changed; a key that
/// no longer exists is retracted. `today` decides the key window.
pub async fn publish_principal(
    conn: &mut AnyConnection,
    access_key_id: &str,
    today: NaiveDate,
) -> StoreResult<Option<u64>> {
    let key = principal::resource_key(access_key_id);
    let Some(snapshot) = compute_principal(conn, access_key_id, today).await? else {
        return tombstone(conn, &key).await;
    };
    let old = config_store::get(conn, &key).await?;
    let row = ConfigResourceRow {
        resource_key: key,
        version: 0,
        body: Some(serde_json::to_string(&snapshot)?),
        account_id: snapshot.account_id,
        endpoint_type: principal::GLOBAL.to_owned(),
    };
    write_if_changed(conn, old.as_ref(), row).await
}

/// Publishes every access key's and principal's resource for `today`: run at
/// start-up (keys created before principals were streamed) and hourly, which
/// moves each key window once a day. Returns the highest new version.
pub async fn refresh_principals(store: &Store, today: NaiveDate) -> StoreResult<Option<u64>> {
    let mut tx = store.begin().await?;
    let mut ids: Vec<String> = sqlx::query_scalar("SELECT access_key_id FROM access_keys")
        .fetch_all(&mut *tx)
        .await?;
    ids.extend(
        principals::list_all(&mut tx)
            .await?
            .into_iter()
            .map(|p| p.access_key_id),
    );
    // Resources already on today's window need nothing (every run but one a day).
    let window = key_dates(today);
    let current: std::collections::HashSet<String> =
        config_store::list_live_with_prefix(&mut tx, principal::KEY_PREFIX)
            .await?
            .into_iter()
            .filter(|r| {
                r.body
                    .as_deref()
                    .and_then(|b| serde_json::from_str::<PrincipalSnapshot>(b).ok())
                    .is_some_and(|p| p.dates == window)
            })
            .map(|r| r.resource_key)
            .collect();
    let mut last = None;
    for id in ids {
        if current.contains(&principal::resource_key(&id)) {
            continue;
        }
        if let Some(v) = publish_principal(&mut tx, &id, today).await? {
            last = Some(v);
        }
    }
    tx.commit().await?;
    Ok(last)
}

/// Versions start at 1 and only grow; the column is signed for portability.
pub fn as_version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
