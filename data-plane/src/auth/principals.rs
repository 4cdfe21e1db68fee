//! IAM callers this node can verify: one per access key, compiled from the
//! `principal/{access_key_id}` config resources (apigw_proto::principal),
//! with the day-scoped signing keys the control plane derived for this
//! node's region. Looked up by the access key a signature names.

use std::collections::HashMap;
use std::sync::Arc;

use apigw_proto::principal::PrincipalSnapshot;

use super::policy::{Caller, Decision, Facts, Policy};

/// A caller's identity and what it may do.
#[derive(Debug)]
pub struct Principal {
    pub access_key_id: String,
    pub account_id: String,
    /// `arn:aws:iam::{account}:user/{name}` (or `role/…`, `root`).
    pub arn: String,
    /// `$context.identity.user` and `caller`.
    pub unique_id: String,
    /// As policies see the caller.
    pub caller: Caller,
    /// The account's administrator: its identity allows every action.
    admin: bool,
    /// The identity policy; `None` for administrators.
    policy: Option<Policy>,
    /// `kSigning` by UTC day (`yyyymmdd`), for this node's region and `execute-api`.
    keys: Vec<(String, [u8; 32])>,
}

impl Principal {
    /// Compiles a received resource body.
    pub fn compile(body: &[u8]) -> Result<Self, String> {
        let p: PrincipalSnapshot =
            serde_json::from_slice(body).map_err(|e| format!("not a principal: {e}"))?;
        let policy = match (&p.policy, p.admin) {
            (_, true) => None,
            (Some(text), false) => Some(
                Policy::parse(text)
                    .map_err(|e| format!("principal {}: policy: {e}", p.access_key_id))?,
            ),
            (None, false) => return Err(format!("principal {} has no policy", p.access_key_id)),
        };
        let keys = p
            .signing_keys
            .iter()
            .map(|(day, key)| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(key, &mut out).map_err(|e| {
                    format!("principal {}: signing key for {day}: {e}", p.access_key_id)
                })?;
                Ok((day.clone(), out))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            caller: Caller {
                account: Some(p.account_id.clone()),
                arn: Some(p.arn.clone()),
                user_id: Some(p.unique_id.clone()),
            },
            access_key_id: p.access_key_id,
            account_id: p.account_id,
            arn: p.arn,
            unique_id: p.unique_id,
            admin: p.admin,
            policy,
            keys,
        })
    }

    /// The signing key for a scope day, if the node holds one.
    pub fn signing_key(&self, day: &str) -> Option<[u8; 32]> {
        self.keys.iter().find(|(d, _)| d == day).map(|(_, k)| *k)
    }

    /// What the principal's identity policy says about `facts`; an
    /// administrator's identity allows everything.
    pub fn identity_decision(&self, facts: &Facts<'_>) -> Decision {
        match &self.policy {
            None if self.admin => Decision::Allow,
            None => Decision::Silent,
            Some(policy) => policy.evaluate(facts),
        }
    }
}

/// Every principal this node knows, by access key id.
pub type Principals = HashMap<Arc<str>, Arc<Principal>>;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn compiles_what_the_control_plane_sends() {
        let key = "ab".repeat(32);
        let p = Principal::compile(&body(json!({
            "accessKeyId": "AKIAX", "accountId": "111111111111",
            "arn": "arn:aws:iam::111111111111:user/bob", "uniqueId": "AIDAX",
            "policy": r#"{"Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:111111111111:abc/*"}]}"#,
            "dates": ["20261206", "20261207"],
            "signingKeys": {"20261207": key},
        })))
        .unwrap();
        assert_eq!(p.signing_key("20261207"), Some([0xab; 32]));
        assert_eq!(p.signing_key("20261206"), None);
        let facts = |resource| Facts {
            action: "execute-api:Invoke",
            resource,
            ..Default::default()
        };
        assert_eq!(
            p.identity_decision(&facts(
                "arn:aws:execute-api:us-east-1:111111111111:abc/prod/GET/"
            )),
            Decision::Allow
        );
        assert_eq!(
            p.identity_decision(&facts(
                "arn:aws:execute-api:us-east-1:111111111111:xyz/prod/GET/"
            )),
            Decision::Silent
        );
    }

    #[test]
    fn administrators_need_no_policy_and_others_must_have_one() {
        let admin = Principal::compile(&body(json!({
            "accessKeyId": "AKIAA", "accountId": "1", "arn": "arn:aws:iam::1:root",
            "uniqueId": "1", "admin": true,
        })))
        .unwrap();
        assert_eq!(admin.identity_decision(&Facts::default()), Decision::Allow);
        assert!(
            Principal::compile(&body(json!({
                "accessKeyId": "AKIAB", "accountId": "1", "arn": "a", "uniqueId": "u",
            })))
            .is_err()
        );
        assert!(
            Principal::compile(&body(json!({
                "accessKeyId": "AKIAB", "accountId": "1", "arn": "a", "uniqueId": "u", "admin": true,
                "signingKeys": {"20261207": "zz"},
            })))
            .is_err()
        );
    }
}
