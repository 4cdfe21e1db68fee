//! TagResource, GetTags, UntagResource on REST API and stage ARNs.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::auth::Caller;
use super::input::json;
use super::rest_apis::check_tags;
use super::stages::invalid_stage;
use super::{AppState, LoadedApi, modify_api, no_content, read_api, reply};
use crate::error::{ApiError, ApiResult};
use crate::model::{Stage, Tags};
use crate::publish;
use crate::store::stages::{self, StageRow};
use crate::store::{StoreError, Tx};

pub fn routes() -> Router<AppState> {
    // A catch-all, so the ARN's slashes match whether or not the client
    // percent-encoded them.
    Router::new().route("/tags/{*resource_arn}", get(fetch).put(tag).delete(untag))
}

/// A resource that carries tags.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    RestApi { api_id: String },
    Stage { api_id: String, stage_name: String },
}

fn invalid_arn(arn: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid resource ARN: {arn} ({why})"))
}

/// Reads `arn:{partition}:apigateway:{region}::/restapis/{id}[/stages/{name}]`;
/// any region is accepted.
fn parse_arn(arn: &str) -> ApiResult<Target> {
    const SHAPE: &str = "expected arn:aws:apigateway:{region}::/restapis/{id} or \
                         arn:aws:apigateway:{region}::/restapis/{id}/stages/{name}";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(invalid_arn(arn, SHAPE));
    };
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if *prefix != "arn" || !partition.starts_with("aws") || *service != "apigateway" || !region_ok {
        return Err(invalid_arn(arn, SHAPE));
    }
    if !account.is_empty() {
        return Err(invalid_arn(
            arn,
            "API Gateway ARNs have an empty account field",
        ));
    }
    let Some(path) = resource.strip_prefix('/') else {
        return Err(invalid_arn(arn, SHAPE));
    };
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(invalid_arn(arn, SHAPE));
    }
    match segments.as_slice() {
        ["restapis", id] => Ok(Target::RestApi {
            api_id: (*id).to_owned(),
        }),
        ["restapis", id, "stages", name] => Ok(Target::Stage {
            api_id: (*id).to_owned(),
            stage_name: (*name).to_owned(),
        }),
        _ => Err(invalid_arn(
            arn,
            "only REST APIs and their stages can be tagged",
        )),
    }
}

/// A stage read in a transaction, to be changed and saved.
async fn load_stage(
    tx: &mut Tx,
    caller: &Caller,
    api_id: &str,
    stage_name: &str,
) -> ApiResult<(StageRow, Stage)> {
    let api = LoadedApi::load(tx, caller, api_id).await?;
    let row = stages::get(tx, &caller.account_id, api.id(), stage_name)
        .await?
        .ok_or_else(invalid_stage)?;
    let stage = serde_json::from_str(&row.doc).map_err(StoreError::from)?;
    Ok((row, stage))
}

/// Runs `change` on a resource's tags and saves them, in one transaction.
async fn modify_tags(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    change: impl FnOnce(&mut Tags) -> ApiResult<()>,
) -> ApiResult<()> {
    match target {
        Target::RestApi { api_id } => {
            modify_api(state, caller, api_id, |doc| change(&mut doc.api.tags)).await
        }
        Target::Stage { api_id, stage_name } => {
            let mut tx = state.store.begin().await?;
            let (mut row, mut stage) = load_stage(&mut tx, caller, api_id, stage_name).await?;
            change(&mut stage.tags)?;
            row.doc = serde_json::to_string(&stage).map_err(StoreError::from)?;
            stages::update(&mut tx, &row).await?;
            // Tags are not part of the stage snapshot today, so this normally
            // publishes nothing; it keeps the resource right if that changes.
            let published =
                publish::publish_stage(&mut tx, &row.account_id, &row.api_id, &row.stage_name)
                    .await?;
            tx.commit().await.map_err(StoreError::from)?;
            state.feed.published_opt(published);
            Ok(())
        }
    }
}

async fn fetch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(arn): Path<String>,
) -> ApiResult<Response> {
    let tags = match parse_arn(&arn)? {
        Target::RestApi { api_id } => {
            read_api(&state, &caller, &api_id, |doc| Ok(doc.api.tags.clone())).await?
        }
        Target::Stage { api_id, stage_name } => {
            let mut tx = state.store.begin().await?;
            load_stage(&mut tx, &caller, &api_id, &stage_name)
                .await?
                .1
                .tags
        }
    };
    Ok(reply(StatusCode::OK, &serde_json::json!({ "tags": tags })))
}

#[derive(Debug, Deserialize)]
struct TagInput {
    tags: Option<Tags>,
}

async fn tag(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(arn): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let target = parse_arn(&arn)?;
    let input: TagInput = json(&body)?;
    let new = input
        .tags
        .ok_or_else(|| ApiError::bad_request("Invalid tags: the 'tags' member is required"))?;
    check_tags(&new)?;
    modify_tags(&state, &caller, &target, |tags| {
        tags.extend(new);
        // The limit applies to the result.
        check_tags(tags)
    })
    .await?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

/// `tagKeys` repeats (`?tagKeys=a&tagKeys=b`).
fn tag_keys(query: Option<&str>) -> ApiResult<Vec<String>> {
    let keys: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "tagKeys")
        .map(|(_, v)| v.into_owned())
        .collect();
    if keys.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid tag keys: the 'tagKeys' query parameter is required",
        ));
    }
    Ok(keys)
}

async fn untag(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let target = parse_arn(&arn)?;
    let keys = tag_keys(query.as_deref())?;
    // Removing a key that is not there is not an error.
    modify_tags(&state, &caller, &target, |tags| {
        for key in &keys {
            tags.remove(key);
        }
        Ok(())
    })
    .await?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_of_apis_and_stages() {
        assert_eq!(
            parse_arn("arn:aws:apigateway:us-east-1::/restapis/abc123").unwrap(),
            Target::RestApi {
                api_id: "abc123".into()
            }
        );
        assert_eq!(
            parse_arn("arn:aws:apigateway:eu-west-3::/restapis/abc123/stages/dev").unwrap(),
            Target::Stage {
                api_id: "abc123".into(),
                stage_name: "dev".into()
            }
        );
        assert!(parse_arn("arn:aws-cn:apigateway:cn-north-1::/restapis/abc123").is_ok());
    }

    #[test]
    fn garbage_arns_are_bad_requests() {
        for bad in [
            "",
            "not-an-arn",
            "arn:aws:apigateway",
            "arn:aws:apigateway:us-east-1::restapis/abc",
            "arn:aws:apigateway:us-east-1::/restapis/",
            "arn:aws:apigateway:us-east-1::/restapis//stages/dev",
            "arn:aws:apigateway:us-east-1::/restapis/abc/stages/",
            "arn:aws:apigateway:us-east-1::/restapis/abc/stages/dev/extra",
            "arn:aws:apigateway:us-east-1::/restapis/abc/resources/r1",
            "arn:aws:apigateway:us-east-1::/apikeys/k1",
            "arn:aws:apigateway:us-east-1:123456789012:/restapis/abc",
            "arn:aws:apigateway:::/restapis/abc",
            "arn:aws:apigateway:US EAST::/restapis/abc",
            "arn:aws:lambda:us-east-1::/restapis/abc",
            "urn:aws:apigateway:us-east-1::/restapis/abc",
            "arn:gcp:apigateway:us-east-1::/restapis/abc",
        ] {
            match parse_arn(bad) {
                Err(ApiError::BadRequest(m)) => {
                    assert!(m.starts_with("Invalid resource ARN: "), "{m}")
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn tag_keys_repeat() {
        assert_eq!(
            tag_keys(Some("tagKeys=a&tagKeys=b%20c&other=x")).unwrap(),
            ["a", "b c"]
        );
        assert_eq!(tag_keys(Some("tagKeys=a+b")).unwrap(), ["a b"]);
        assert!(tag_keys(None).is_err());
        assert!(tag_keys(Some("other=x")).is_err());
    }
}
