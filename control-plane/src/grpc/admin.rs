//! The operator admin gRPC service (`apigw.admin.v1.AdminService`): tenants,
//! their access keys, and the data-plane nodes connected to this control plane.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use apigw_proto::admin::admin_service_server::{AdminService, AdminServiceServer};
use apigw_proto::admin::{
    AccessKey, AccessKeyWithSecret, CreateAccessKeyRequest, CreatePrincipalRequest,
    CreateServiceKeyRequest, CreateTenantRequest, DeleteAccessKeyRequest, DeleteAccessKeyResponse,
    DeletePrincipalRequest, DeletePrincipalResponse, DeleteServiceKeyRequest,
    DeleteServiceKeyResponse, ListAccessKeysRequest, ListAccessKeysResponse, ListNodesRequest,
    ListNodesResponse, ListPrincipalsRequest, ListPrincipalsResponse, ListServiceKeysRequest,
    ListServiceKeysResponse, ListTenantsRequest, ListTenantsResponse, Node, Principal,
    PrincipalWithSecret, PutPrincipalPolicyRequest, ServiceKey, ServiceKeyWithSecret, Tenant,
};
use tonic::{Request, Response, Status};

use crate::store::principals::PrincipalRow;
use crate::tenancy::{Tenancy, TenancyError, principals};

/// A data-plane node subscribed to this control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub node_id: String,
    pub region: String,
    /// `public` or `private`.
    pub endpoint_class: String,
    /// The last snapshot version the node acknowledged.
    pub applied_version: u64,
    /// Epoch seconds.
    pub connected_at: i64,
    /// Epoch seconds.
    pub last_seen_at: i64,
}

/// The data-plane nodes connected to this replica; cheap to clone, shared
/// between the config stream (which writes it) and the admin service.
#[derive(Debug, Clone, Default)]
pub struct NodeRegistry {
    nodes: Arc<RwLock<BTreeMap<String, NodeInfo>>>,
}

impl NodeRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node or replaces the entry with the same id.
    pub fn upsert(&self, node: NodeInfo) {
        // A panic elsewhere cannot leave a map half-written, so poison is ignored.
        let mut nodes = self.nodes.write().unwrap_or_else(PoisonError::into_inner);
        nodes.insert(node.node_id.clone(), node);
    }

    pub fn remove(&self, node_id: &str) -> Option<NodeInfo> {
        self.nodes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(node_id)
    }

    /// The nodes, ordered by id.
    pub fn list(&self) -> Vec<NodeInfo> {
        self.nodes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

pub struct AdminServer {
    tenancy: Tenancy,
    nodes: NodeRegistry,
}

impl AdminServer {
    pub fn new(tenancy: Tenancy, nodes: NodeRegistry) -> Self {
        Self { tenancy, nodes }
    }

    /// Checks the `authorization: Bearer <token>` metadata against the stored
    /// admin tokens. Done per call, uncached, so a revoked token stops at once.
    async fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("missing admin token (authorization: Bearer <token>)")
            })?;
        if self
            .tenancy
            .verify_admin_token(token)
            .await
            .map_err(status)?
        {
            Ok(())
        } else {
            Err(Status::unauthenticated("invalid admin token"))
        }
    }
}

/// Builds the service, ready for `tonic::transport::Server::add_service`.
pub fn service(tenancy: Tenancy, nodes: NodeRegistry) -> AdminServiceServer<AdminServer> {
    AdminServiceServer::new(AdminServer::new(tenancy, nodes))
}

fn status(e: TenancyError) -> Status {
    match e {
        TenancyError::Invalid(m) => Status::invalid_argument(m),
        TenancyError::NotFound(m) => Status::not_found(m),
        TenancyError::Conflict(m) => Status::already_exists(m),
        // The detail may name tables or keys: logged, not returned.
        TenancyError::Store(_) | TenancyError::Seal(_) => {
            tracing::error!(error = %e, "admin call failed");
            Status::internal("internal error")
        }
    }
}

fn principal(row: PrincipalRow) -> Principal {
    Principal {
        arn: principals::arn(&row),
        access_key_id: row.access_key_id,
        account_id: row.account_id,
        kind: row.kind,
        name: row.name,
        unique_id: row.unique_id,
        policy: row.policy,
        created_epoch_seconds: row.created_at,
    }
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    Ok(value)
}

#[tonic::async_trait]
impl AdminService for AdminServer {
    async fn create_tenant(
        &self,
        request: Request<CreateTenantRequest>,
    ) -> Result<Response<Tenant>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let name = required("name", &req.name)?;
        let account_id = Some(req.account_id.trim()).filter(|a| !a.is_empty());
        let row = self
            .tenancy
            .create_tenant(name, account_id)
            .await
            .map_err(status)?;
        tracing::info!(account_id = %row.account_id, name = %row.name, "tenant created");
        Ok(Response::new(Tenant {
            account_id: row.account_id,
            name: row.name,
            created_epoch_seconds: row.created_at,
        }))
    }

    async fn list_tenants(
        &self,
        request: Request<ListTenantsRequest>,
    ) -> Result<Response<ListTenantsResponse>, Status> {
        self.authorize(&request).await?;
        let rows = self.tenancy.list_tenants().await.map_err(status)?;
        let tenants = rows
            .into_iter()
            .map(|r| Tenant {
                account_id: r.account_id,
                name: r.name,
                created_epoch_seconds: r.created_at,
            })
            .collect();
        Ok(Response::new(ListTenantsResponse { tenants }))
    }

    async fn create_access_key(
        &self,
        request: Request<CreateAccessKeyRequest>,
    ) -> Result<Response<AccessKeyWithSecret>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let account_id = required("accountId", &req.account_id)?;
        let (access_key_id, secret_access_key) = self
            .tenancy
            .create_access_key(account_id)
            .await
            .map_err(status)?;
        tracing::info!(%account_id, %access_key_id, "access key created");
        Ok(Response::new(AccessKeyWithSecret {
            access_key_id,
            secret_access_key,
            account_id: account_id.to_owned(),
        }))
    }

    async fn list_access_keys(
        &self,
        request: Request<ListAccessKeysRequest>,
    ) -> Result<Response<ListAccessKeysResponse>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let account_id = required("accountId", &req.account_id)?;
        let rows = self
            .tenancy
            .list_access_keys(account_id)
            .await
            .map_err(status)?;
        // The sealed secret stays behind: keys are listed by id only.
        let keys = rows
            .into_iter()
            .map(|r| AccessKey {
                access_key_id: r.access_key_id,
                account_id: r.account_id,
                created_epoch_seconds: r.created_at,
            })
            .collect();
        Ok(Response::new(ListAccessKeysResponse { keys }))
    }

    async fn delete_access_key(
        &self,
        request: Request<DeleteAccessKeyRequest>,
    ) -> Result<Response<DeleteAccessKeyResponse>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let access_key_id = required("accessKeyId", &req.access_key_id)?;
        self.tenancy
            .delete_access_key(access_key_id)
            .await
            .map_err(status)?;
        tracing::info!(%access_key_id, "access key deleted");
        Ok(Response::new(DeleteAccessKeyResponse {}))
    }

    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        self.authorize(&request).await?;
        let nodes = self
            .nodes
            .list()
            .into_iter()
            .map(|n| Node {
                node_id: n.node_id,
                region: n.region,
                endpoint_class: n.endpoint_class,
                applied_version: n.applied_version,
                connected_epoch_seconds: n.connected_at,
                last_seen_epoch_seconds: n.last_seen_at,
            })
            .collect();
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    async fn create_service_key(
        &self,
        request: Request<CreateServiceKeyRequest>,
    ) -> Result<Response<ServiceKeyWithSecret>, Status> {
        self.authorize(&request).await?;
        let description = request.into_inner().description.trim().to_owned();
        let (access_key_id, secret_access_key) = self
            .tenancy
            .create_service_key(&description)
            .await
            .map_err(status)?;
        tracing::info!(%access_key_id, "service key created");
        Ok(Response::new(ServiceKeyWithSecret {
            access_key_id,
            secret_access_key,
            description,
        }))
    }

    async fn list_service_keys(
        &self,
        request: Request<ListServiceKeysRequest>,
    ) -> Result<Response<ListServiceKeysResponse>, Status> {
        self.authorize(&request).await?;
        let rows = self.tenancy.list_service_keys().await.map_err(status)?;
        let keys = rows
            .into_iter()
            .map(|r| ServiceKey {
                access_key_id: r.access_key_id,
                description: r.description,
                created_epoch_seconds: r.created_at,
            })
            .collect();
        Ok(Response::new(ListServiceKeysResponse { keys }))
    }

    async fn delete_service_key(
        &self,
        request: Request<DeleteServiceKeyRequest>,
    ) -> Result<Response<DeleteServiceKeyResponse>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let access_key_id = required("accessKeyId", &req.access_key_id)?;
        self.tenancy
            .delete_service_key(access_key_id)
            .await
            .map_err(status)?;
        tracing::info!(%access_key_id, "service key deleted");
        Ok(Response::new(DeleteServiceKeyResponse {}))
    }

    async fn create_principal(
        &self,
        request: Request<CreatePrincipalRequest>,
    ) -> Result<Response<PrincipalWithSecret>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let account_id = required("accountId", &req.account_id)?;
        let name = required("name", &req.name)?;
        let policy = required("policy", &req.policy)?;
        let created = self
            .tenancy
            .create_principal(account_id, req.kind.trim(), name, policy)
            .await
            .map_err(status)?;
        tracing::info!(%account_id, access_key_id = %created.row.access_key_id, name = %created.row.name, "principal created");
        Ok(Response::new(PrincipalWithSecret {
            principal: Some(principal(created.row)),
            secret_access_key: created.secret,
        }))
    }

    async fn list_principals(
        &self,
        request: Request<ListPrincipalsRequest>,
    ) -> Result<Response<ListPrincipalsResponse>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let account_id = required("accountId", &req.account_id)?;
        let rows = self
            .tenancy
            .list_principals(account_id)
            .await
            .map_err(status)?;
        Ok(Response::new(ListPrincipalsResponse {
            principals: rows.into_iter().map(principal).collect(),
        }))
    }

    async fn put_principal_policy(
        &self,
        request: Request<PutPrincipalPolicyRequest>,
    ) -> Result<Response<Principal>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let access_key_id = required("accessKeyId", &req.access_key_id)?;
        let policy = required("policy", &req.policy)?;
        let row = self
            .tenancy
            .put_principal_policy(access_key_id, policy)
            .await
            .map_err(status)?;
        tracing::info!(%access_key_id, "principal policy replaced");
        Ok(Response::new(principal(row)))
    }

    async fn delete_principal(
        &self,
        request: Request<DeletePrincipalRequest>,
    ) -> Result<Response<DeletePrincipalResponse>, Status> {
        self.authorize(&request).await?;
        let req = request.into_inner();
        let access_key_id = required("accessKeyId", &req.access_key_id)?;
        self.tenancy
            .delete_principal(access_key_id)
            .await
            .map_err(status)?;
        tracing::info!(%access_key_id, "principal deleted");
        Ok(Response::new(DeletePrincipalResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use apigw_proto::admin::admin_service_client::AdminServiceClient;
    use serde_json::json;
    use tokio::task::JoinHandle;
    use tonic::Code;
    use tonic::transport::server::TcpIncoming;

    use super::*;
    use crate::operator::{self, AdminCommand, OperatorError};
    use crate::store::Store;
    use crate::tenancy::Sealer;

    const TOKEN: &str = "operator-token-0123456789";

    struct Harness {
        _dir: tempfile::TempDir,
        tenancy: Tenancy,
        nodes: NodeRegistry,
        addr: SocketAddr,
        server: JoinHandle<()>,
    }

    impl Harness {
        async fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&Store::sqlite_url(&dir.path().join("t.db")))
                .await
                .unwrap();
            let tenancy =
                Tenancy::new(store, Sealer::from_base64(&Sealer::generate_key()).unwrap());
            tenancy.ensure_admin_token(TOKEN).await.unwrap();
            let nodes = NodeRegistry::new();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let router = tonic::transport::Server::builder()
                .add_service(service(tenancy.clone(), nodes.clone()));
            let server = tokio::spawn(async move {
                router
                    .serve_with_incoming(TcpIncoming::from(listener))
                    .await
                    .unwrap();
            });
            Self {
                _dir: dir,
                tenancy,
                nodes,
                addr,
                server,
            }
        }

        fn endpoint(&self) -> String {
            format!("http://{}", self.addr)
        }

        async fn run(&self, command: AdminCommand) -> Result<serde_json::Value, OperatorError> {
            operator::run(&self.endpoint(), TOKEN, command).await
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.server.abort();
        }
    }

    fn rpc_code(r: Result<serde_json::Value, OperatorError>) -> (Code, String) {
        match r {
            Err(e @ OperatorError::Rpc { code, .. }) => (code, e.to_string()),
            other => panic!("expected an rpc error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn tenant_and_key_lifecycle() {
        let h = Harness::start().await;

        let t = h
            .run(AdminCommand::CreateTenant {
                name: "acme".into(),
                account_id: None,
            })
            .await
            .unwrap();
        let account_id = t["accountId"].as_str().unwrap().to_owned();
        assert!(
            account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()),
            "{t}"
        );
        assert_eq!(t, json!({ "accountId": account_id, "name": "acme" }));

        let fixed = AdminCommand::CreateTenant {
            name: "fixed".into(),
            account_id: Some("123456789012".into()),
        };
        let t2 = h.run(fixed.clone()).await.unwrap();
        assert_eq!(t2, json!({ "accountId": "123456789012", "name": "fixed" }));
        assert_eq!(rpc_code(h.run(fixed).await).0, Code::AlreadyExists);

        let listed = h.run(AdminCommand::ListTenants).await.unwrap();
        let tenants = listed["tenants"].as_array().unwrap();
        assert_eq!(tenants.len(), 2, "{listed}");
        for t in tenants {
            assert!(t["createdDate"].as_i64().unwrap() > 0, "{t}");
        }
        assert!(
            tenants
                .iter()
                .any(|t| t["accountId"] == account_id.as_str() && t["name"] == "acme")
        );

        let k = h
            .run(AdminCommand::CreateKey {
                account_id: account_id.clone(),
            })
            .await
            .unwrap();
        let key_id = k["accessKeyId"].as_str().unwrap().to_owned();
        let secret = k["secretAccessKey"].as_str().unwrap().to_owned();
        assert!(key_id.starts_with("AKIA"), "{k}");
        assert_eq!(k["accountId"], account_id.as_str());
        let owner = h.tenancy.resolve_key(&key_id).await.unwrap().unwrap();
        assert_eq!(
            (owner.account_id.as_str(), owner.secret.as_str()),
            (account_id.as_str(), secret.as_str())
        );

        let keys = h
            .run(AdminCommand::ListKeys {
                account_id: account_id.clone(),
            })
            .await
            .unwrap();
        assert!(!keys.to_string().contains(&secret), "{keys}");
        let keys = keys["keys"].as_array().unwrap().clone();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["accessKeyId"], key_id.as_str());
        assert_eq!(keys[0]["accountId"], account_id.as_str());
        assert!(keys[0]["createdDate"].as_i64().unwrap() > 0);
        assert!(
            keys[0]
                .as_object()
                .unwrap()
                .keys()
                .all(|m| !m.to_lowercase().contains("secret"))
        );

        let deleted = h
            .run(AdminCommand::DeleteKey {
                access_key_id: key_id.clone(),
            })
            .await
            .unwrap();
        assert_eq!(deleted, json!({}));
        assert!(h.tenancy.resolve_key(&key_id).await.unwrap().is_none());
        let keys = h.run(AdminCommand::ListKeys { account_id }).await.unwrap();
        assert_eq!(keys, json!({ "keys": [] }));
        let again = h
            .run(AdminCommand::DeleteKey {
                access_key_id: key_id,
            })
            .await;
        assert_eq!(rpc_code(again).0, Code::NotFound);
    }

    #[tokio::test]
    async fn bad_or_missing_token_is_unauthenticated() {
        let h = Harness::start().await;

        let wrong = operator::run(
            &h.endpoint(),
            "not-the-operator-token-xxxx",
            AdminCommand::CreateTenant {
                name: "intruder".into(),
                account_id: None,
            },
        )
        .await;
        let (code, message) = rpc_code(wrong);
        assert_eq!(code, Code::Unauthenticated);
        assert!(
            message.to_lowercase().contains("unauthenticated"),
            "{message}"
        );
        assert!(h.tenancy.list_tenants().await.unwrap().is_empty());

        let empty = operator::run(&h.endpoint(), "", AdminCommand::ListTenants).await;
        assert_eq!(rpc_code(empty).0, Code::Unauthenticated);

        // No metadata at all, straight through the generated client.
        let mut client = AdminServiceClient::connect(h.endpoint()).await.unwrap();
        let err = client
            .list_tenants(ListTenantsRequest {})
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);

        // A different scheme is not a bearer token.
        let mut req = Request::new(ListTenantsRequest {});
        req.metadata_mut()
            .insert("authorization", format!("Basic {TOKEN}").parse().unwrap());
        assert_eq!(
            client.list_tenants(req).await.unwrap_err().code(),
            Code::Unauthenticated
        );
    }

    #[tokio::test]
    async fn tenancy_errors_map_to_grpc_codes() {
        let h = Harness::start().await;

        let unknown = h
            .run(AdminCommand::CreateKey {
                account_id: "999999999999".into(),
            })
            .await;
        let (code, message) = rpc_code(unknown);
        assert_eq!(code, Code::NotFound);
        assert!(message.contains("999999999999"), "{message}");

        let listed = h
            .run(AdminCommand::ListKeys {
                account_id: "999999999999".into(),
            })
            .await;
        assert_eq!(rpc_code(listed).0, Code::NotFound);

        let bad = h
            .run(AdminCommand::CreateTenant {
                name: "x".into(),
                account_id: Some("123".into()),
            })
            .await;
        let (code, message) = rpc_code(bad);
        assert_eq!(code, Code::InvalidArgument);
        assert!(message.contains("12 digits"), "{message}");

        let nameless = h
            .run(AdminCommand::CreateTenant {
                name: " ".into(),
                account_id: None,
            })
            .await;
        assert_eq!(rpc_code(nameless).0, Code::InvalidArgument);
        let no_account = h
            .run(AdminCommand::CreateKey {
                account_id: String::new(),
            })
            .await;
        assert_eq!(rpc_code(no_account).0, Code::InvalidArgument);
    }

    #[tokio::test]
    async fn list_nodes_reflects_the_registry() {
        let h = Harness::start().await;
        assert_eq!(
            h.run(AdminCommand::ListNodes).await.unwrap(),
            json!({ "nodes": [] })
        );

        let node = |id: &str, version| NodeInfo {
            node_id: id.into(),
            region: "eu-west-1".into(),
            endpoint_class: "public".into(),
            applied_version: version,
            connected_at: 1_700_000_000,
            last_seen_at: 1_700_000_100,
        };
        h.nodes.upsert(node("node-b", 1));
        h.nodes.upsert(node("node-a", 3));
        h.nodes.upsert(node("node-b", 2));
        assert_eq!(
            h.run(AdminCommand::ListNodes).await.unwrap(),
            json!({ "nodes": [
                { "nodeId": "node-a", "region": "eu-west-1", "endpointClass": "public", "appliedVersion": 3,
                  "connectedDate": 1_700_000_000, "lastSeenDate": 1_700_000_100 },
                { "nodeId": "node-b", "region": "eu-west-1", "endpointClass": "public", "appliedVersion": 2,
                  "connectedDate": 1_700_000_000, "lastSeenDate": 1_700_000_100 },
            ] })
        );

        assert_eq!(h.nodes.remove("node-a").map(|n| n.applied_version), Some(3));
        assert!(h.nodes.remove("node-a").is_none());
        let listed = h.run(AdminCommand::ListNodes).await.unwrap();
        assert_eq!(listed["nodes"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unreachable_endpoint_names_the_endpoint() {
        // A port that was just free: nothing listens there.
        let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let endpoint = format!("http://{addr}");
        let err = operator::run(&endpoint, TOKEN, AdminCommand::ListTenants)
            .await
            .unwrap_err();
        assert!(matches!(err, OperatorError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains(&endpoint), "{err}");

        let err = operator::run("http://bad host", TOKEN, AdminCommand::ListTenants)
            .await
            .unwrap_err();
        assert!(
            matches!(err, OperatorError::InvalidEndpoint { .. }),
            "{err:?}"
        );
    }
}
