//! The operator CLI's client side: `apigw admin …` maps its arguments onto an
//! [`AdminCommand`], [`run`] sends it to the control plane's admin gRPC service
//! and returns the JSON to print.

use std::time::Duration;

use apigw_proto::admin::admin_service_client::AdminServiceClient;
use apigw_proto::admin::{
    CreateAccessKeyRequest, CreatePrincipalRequest, CreateServiceKeyRequest, CreateTenantRequest,
    DeleteAccessKeyRequest, DeletePrincipalRequest, DeleteServiceKeyRequest, ListAccessKeysRequest,
    ListNodesRequest, ListPrincipalsRequest, ListServiceKeysRequest, ListTenantsRequest, Principal,
    PutPrincipalPolicyRequest,
};
use serde_json::{Value, json};
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Endpoint;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// `account_id`: a specific 12-digit id; generated when `None`.
    CreateTenant {
        name: String,
        account_id: Option<String>,
    },
    ListTenants,
    CreateKey {
        account_id: String,
    },
    ListKeys {
        account_id: String,
    },
    DeleteKey {
        access_key_id: String,
    },
    ListNodes,
    CreateServiceKey {
        description: String,
    },
    ListServiceKeys,
    DeleteServiceKey {
        access_key_id: String,
    },
    /// `kind`: `user` or `role` (empty: `user`); `policy`: the identity policy JSON.
    CreatePrincipal {
        account_id: String,
        kind: String,
        name: String,
        policy: String,
    },
    ListPrincipals {
        account_id: String,
    },
    PutPrincipalPolicy {
        access_key_id: String,
        policy: String,
    },
    DeletePrincipal {
        access_key_id: String,
    },
}

fn principal_json(p: Principal) -> Value {
    json!({
        "accessKeyId": p.access_key_id,
        "accountId": p.account_id,
        "kind": p.kind,
        "name": p.name,
        "arn": p.arn,
        "uniqueId": p.unique_id,
        "policy": p.policy,
        "createdDate": p.created_epoch_seconds,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("invalid control-plane endpoint '{endpoint}': {detail}")]
    InvalidEndpoint { endpoint: String, detail: String },
    #[error("cannot connect to the control plane at {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    #[error("the admin token must be printable ASCII")]
    InvalidToken,
    /// The service answered with an error.
    #[error("{code:?}: {message}")]
    Rpc { code: tonic::Code, message: String },
}

impl From<tonic::Status> for OperatorError {
    fn from(s: tonic::Status) -> Self {
        Self::Rpc {
            code: s.code(),
            message: s.message().to_owned(),
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one command against the admin service and returns the JSON to print.
pub async fn run(
    endpoint: &str,
    admin_token: &str,
    command: AdminCommand,
) -> Result<Value, OperatorError> {
    let mut auth: MetadataValue<Ascii> = format!("Bearer {admin_token}")
        .parse()
        .map_err(|_| OperatorError::InvalidToken)?;
    // Keeps the token out of any debug output of the request.
    auth.set_sensitive(true);
    let mut client = AdminServiceClient::new(connect(endpoint).await?);

    Ok(match command {
        AdminCommand::CreateTenant { name, account_id } => {
            let req = CreateTenantRequest {
                name,
                account_id: account_id.unwrap_or_default(),
            };
            let t = client
                .create_tenant(authorized(req, &auth))
                .await?
                .into_inner();
            json!({ "accountId": t.account_id, "name": t.name })
        }
        AdminCommand::ListTenants => {
            let resp = client
                .list_tenants(authorized(ListTenantsRequest {}, &auth))
                .await?
                .into_inner();
            let tenants: Vec<Value> = resp
                .tenants
                .into_iter()
                .map(|t| json!({ "accountId": t.account_id, "name": t.name, "createdDate": t.created_epoch_seconds }))
                .collect();
            json!({ "tenants": tenants })
        }
        AdminCommand::CreateKey { account_id } => {
            let req = CreateAccessKeyRequest { account_id };
            let k = client
                .create_access_key(authorized(req, &auth))
                .await?
                .into_inner();
            json!({ "accessKeyId": k.access_key_id, "secretAccessKey": k.secret_access_key, "accountId": k.account_id })
        }
        AdminCommand::ListKeys { account_id } => {
            let req = ListAccessKeysRequest { account_id };
            let resp = client
                .list_access_keys(authorized(req, &auth))
                .await?
                .into_inner();
            let keys: Vec<Value> = resp
                .keys
                .into_iter()
                .map(|k| {
                    json!({ "accessKeyId": k.access_key_id, "accountId": k.account_id, "createdDate": k.created_epoch_seconds })
                })
                .collect();
            json!({ "keys": keys })
        }
        AdminCommand::DeleteKey { access_key_id } => {
            let req = DeleteAccessKeyRequest { access_key_id };
            client.delete_access_key(authorized(req, &auth)).await?;
            json!({})
        }
        AdminCommand::ListNodes => {
            let resp = client
                .list_nodes(authorized(ListNodesRequest {}, &auth))
                .await?
                .into_inner();
            let nodes: Vec<Value> = resp
                .nodes
                .into_iter()
                .map(|n| {
                    json!({
                        "nodeId": n.node_id,
                        "region": n.region,
                        "endpointClass": n.endpoint_class,
                        "appliedVersion": n.applied_version,
                        "connectedDate": n.connected_epoch_seconds,
                        "lastSeenDate": n.last_seen_epoch_seconds,
                    })
                })
                .collect();
            json!({ "nodes": nodes })
        }
        AdminCommand::CreateServiceKey { description } => {
            let req = CreateServiceKeyRequest { description };
            let k = client
                .create_service_key(authorized(req, &auth))
                .await?
                .into_inner();
            json!({ "accessKeyId": k.access_key_id, "secretAccessKey": k.secret_access_key, "description": k.description })
        }
        AdminCommand::ListServiceKeys => {
            let resp = client
                .list_service_keys(authorized(ListServiceKeysRequest {}, &auth))
                .await?
                .into_inner();
            let keys: Vec<Value> = resp
                .keys
                .into_iter()
                .map(|k| json!({ "accessKeyId": k.access_key_id, "description": k.description, "createdDate": k.created_epoch_seconds }))
                .collect();
            json!({ "serviceKeys": keys })
        }
        AdminCommand::DeleteServiceKey { access_key_id } => {
            let req = DeleteServiceKeyRequest { access_key_id };
            client.delete_service_key(authorized(req, &auth)).await?;
            json!({})
        }
        AdminCommand::CreatePrincipal {
            account_id,
            kind,
            name,
            policy,
        } => {
            let req = CreatePrincipalRequest {
                account_id,
                kind,
                name,
                policy,
            };
            let created = client
                .create_principal(authorized(req, &auth))
                .await?
                .into_inner();
            let mut out = principal_json(created.principal.unwrap_or_default());
            out["secretAccessKey"] = Value::String(created.secret_access_key);
            out
        }
        AdminCommand::ListPrincipals { account_id } => {
            let req = ListPrincipalsRequest { account_id };
            let resp = client
                .list_principals(authorized(req, &auth))
                .await?
                .into_inner();
            let principals: Vec<Value> = resp.principals.into_iter().map(principal_json).collect();
            json!({ "principals": principals })
        }
        AdminCommand::PutPrincipalPolicy {
            access_key_id,
            policy,
        } => {
            let req = PutPrincipalPolicyRequest {
                access_key_id,
                policy,
            };
            principal_json(
                client
                    .put_principal_policy(authorized(req, &auth))
                    .await?
                    .into_inner(),
            )
        }
        AdminCommand::DeletePrincipal { access_key_id } => {
            let req = DeletePrincipalRequest { access_key_id };
            client.delete_principal(authorized(req, &auth)).await?;
            json!({})
        }
    })
}

/// Connects eagerly, so an unreachable control plane is reported as such
/// rather than as a failed call.
async fn connect(endpoint: &str) -> Result<tonic::transport::Channel, OperatorError> {
    // `host:port` alone is taken as plain HTTP/2, the control plane's default.
    let url = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    let target = Endpoint::from_shared(url)
        .map_err(|e| OperatorError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            detail: chain(&e),
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    target.connect().await.map_err(|e| OperatorError::Connect {
        endpoint: endpoint.to_owned(),
        detail: chain(&e),
    })
}

fn authorized<T>(msg: T, auth: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(msg);
    request.metadata_mut().insert("authorization", auth.clone());
    request
}

/// An error with its causes: tonic's transport errors say little on their own
/// ("transport error"), the cause ("connection refused") is in the chain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some layers repeat their cause's message.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
