//! The control plane's typed configuration, built once by the CLI (flags and
//! environment) and passed to constructors.

use std::net::SocketAddr;

pub use apigw_data_plane::auth::jwt::JwtSettings;
pub use apigw_function_host::HostConfig as FunctionHostConfig;

/// Largest management request body accepted (AWS's import limit is 6 MB;
/// we leave room for it plus encoding overhead).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ControlPlaneConfig {
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
    /// Base64 32-byte key sealing access-key secrets at rest.
    pub master_key: String,
    pub management_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub management: ManagementConfig,
    /// An operator token registered at start-up (hashed), so the admin
    /// service can be reached on a fresh database.
    pub bootstrap_admin_token: Option<String>,
    /// The built-in function host behind the `lambda` management API.
    pub functions: FunctionHostConfig,
    /// Usage counters (Redis), the usage clock and management throttling.
    pub usage: crate::usage::UsageConfig,
    /// The bearer token data-plane nodes must present to subscribe to the
    /// config stream, which carries principals' signing keys. `None`: any
    /// client reaching the gRPC port may subscribe (warned at start-up).
    pub node_token: Option<String>,
}

/// What the management API itself needs.
#[derive(Debug, Clone)]
pub struct ManagementConfig {
    /// Region used in ARNs when a request does not say (its SigV4 scope does).
    pub default_region: String,
    pub max_body_bytes: usize,
    /// Where user pools' keys are fetched and which issuer their tokens name
    /// (TestInvokeAuthorizer on COGNITO_USER_POOLS authorizers): the same
    /// settings, from the same flags, as the data-plane nodes'.
    pub cognito: JwtSettings,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        Self {
            default_region: "us-east-1".into(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            cognito: JwtSettings::default(),
        }
    }
}
