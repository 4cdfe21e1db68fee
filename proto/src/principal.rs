//! IAM callers as data-plane nodes know them: one config resource per access
//! key (`principal/{access_key_id}`), served to every node whatever its
//! endpoint class, since any API may be called by any account's principal.
//!
//! The control plane stores the resource without key material, naming only
//! the UTC days keys are valid for (`dates`); when it sends the resource to a
//! node it adds `signingKeys`: SigV4's `kSigning` for each of those days, the
//! node's region and `execute-api`, derived from the sealed secret. A node
//! can verify a caller's signature with it but cannot sign for any other
//! service, region or day, and never learns the secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Resource key prefix of principals.
pub const KEY_PREFIX: &str = "principal/";

/// The resource key of an access key's principal.
pub fn resource_key(access_key_id: &str) -> String {
    format!("{KEY_PREFIX}{access_key_id}")
}

/// `config_resources.endpoint_type` of principals: served to every node.
pub const GLOBAL: &str = "GLOBAL";

/// The SigV4 service name of published APIs.
pub const EXECUTE_API: &str = "execute-api";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalSnapshot {
    pub access_key_id: String,
    pub account_id: String,
    /// `arn:aws:iam::{account}:user/{name}`, `…:role/{name}` or `…:root`.
    pub arn: String,
    /// `$context.identity.user` / `caller`: AIDA…/AROA…, or the account id for root.
    pub unique_id: String,
    /// The account's own administrator key (decisions.md): allowed every
    /// `execute-api` action its identity could be granted, with no policy.
    #[serde(default)]
    pub admin: bool,
    /// The identity policy document (JSON text); `None` for administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// UTC days (`yyyymmdd`) the keys are (or will be) derived for.
    #[serde(default)]
    pub dates: Vec<String>,
    /// Only in what a node receives: hex `kSigning` by day, for the node's
    /// region and `execute-api`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signing_keys: BTreeMap<String, String>,
}
