//! IAM-style principals: an access key of a tenant with an identity policy
//! (`execute-api:Invoke`, `execute-api:InvalidateCache` statements), so
//! AWS_IAM methods can admit callers narrower than the account's own keys.
//! We do not clone IAM: a principal is a user or role name, its key, and one
//! inline policy document (docs/architecture.md, "Principals and IAM callers").

use crate::management::resource_policy;
use crate::publish;
use crate::store::principals::{self, PrincipalRow};
use crate::store::{now_epoch, tenants};

use super::{Tenancy, TenancyError, key_id_free, random_string, today};

/// IAM's cap on an inline policy's size.
pub const MAX_POLICY_CHARS: usize = 6144;
pub const KINDS: [&str; 2] = ["user", "role"];

/// A principal as created, with the secret that is shown once.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub row: PrincipalRow,
    pub secret: String,
}

/// `arn:aws:iam::{account}:{kind}/{name}`.
pub fn arn(row: &PrincipalRow) -> String {
    format!("arn:aws:iam::{}:{}/{}", row.account_id, row.kind, row.name)
}

/// IAM's user and role name rule: 1–64 of letters, digits and `+=,.@_-`.
fn check_name(name: &str) -> Result<(), TenancyError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(TenancyError::Invalid(format!(
            "name must be 1 to 64 letters, digits or +=,.@_- characters, not {name:?}"
        )))
    }
}

/// An identity policy the data plane can evaluate: a policy document whose
/// statements name no `Principal` (it applies to its owner).
pub fn check_policy(policy: &str) -> Result<(), TenancyError> {
    if policy.chars().count() > MAX_POLICY_CHARS {
        return Err(TenancyError::Invalid(format!(
            "policy is longer than {MAX_POLICY_CHARS} characters"
        )));
    }
    resource_policy::check(policy).map_err(|e| TenancyError::Invalid(e.to_string()))?;
    let doc: serde_json::Value = serde_json::from_str(policy)
        .map_err(|e| TenancyError::Invalid(format!("policy is not JSON: {e}")))?;
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if statements.iter().any(|s| s.get("Principal").is_some()) {
        return Err(TenancyError::Invalid(
            "an identity policy names no Principal: it applies to the principal it is attached to"
                .into(),
        ));
    }
    Ok(())
}

impl Tenancy {
    /// Creates a principal with a generated access key; `kind` is `user`
    /// (default) or `role`, unique by name within the tenant.
    pub async fn create_principal(
        &self,
        account_id: &str,
        kind: &str,
        name: &str,
        policy: &str,
    ) -> Result<NewPrincipal, TenancyError> {
        let kind = if kind.is_empty() { "user" } else { kind };
        if !KINDS.contains(&kind) {
            return Err(TenancyError::Invalid(format!(
                "kind must be \"user\" or \"role\", not {kind:?}"
            )));
        }
        check_name(name)?;
        check_policy(policy)?;
        let mut tx = self.store.begin().await?;
        if tenants::get_tenant(&mut tx, account_id).await?.is_none() {
            return Err(TenancyError::NotFound(format!(
                "tenant {account_id} does not exist"
            )));
        }
        if principals::find_by_name(&mut tx, account_id, kind, name)
            .await?
            .is_some()
        {
            return Err(TenancyError::Conflict(format!(
                "{kind} {name} already exists in tenant {account_id}"
            )));
        }
        let access_key_id = format!("AKIA{}", random_string(16).to_ascii_uppercase());
        key_id_free(&mut tx, &access_key_id).await?;
        let secret = random_string(40);
        let prefix = if kind == "user" { "AIDA" } else { "AROA" };
        let row = PrincipalRow {
            access_key_id,
            account_id: account_id.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            unique_id: format!("{prefix}{}", random_string(17).to_ascii_uppercase()),
            secret_sealed: self.sealer.seal(&secret),
            policy: policy.to_owned(),
            created_at: now_epoch(),
        };
        principals::insert(&mut tx, &row).await?;
        let version = publish::publish_principal(&mut tx, &row.access_key_id, today()).await?;
        tx.commit().await?;
        self.published(version);
        Ok(NewPrincipal { row, secret })
    }

    pub async fn list_principals(
        &self,
        account_id: &str,
    ) -> Result<Vec<PrincipalRow>, TenancyError> {
        let mut tx = self.store.begin().await?;
        if tenants::get_tenant(&mut tx, account_id).await?.is_none() {
            return Err(TenancyError::NotFound(format!(
                "tenant {account_id} does not exist"
            )));
        }
        Ok(principals::list(&mut tx, account_id).await?)
    }

    /// Replaces a principal's identity policy; nodes enforce the new one as
    /// soon as they apply the update.
    pub async fn put_principal_policy(
        &self,
        access_key_id: &str,
        policy: &str,
    ) -> Result<PrincipalRow, TenancyError> {
        check_policy(policy)?;
        let mut tx = self.store.begin().await?;
        if !principals::set_policy(&mut tx, access_key_id, policy).await? {
            return Err(not_found(access_key_id));
        }
        let row = principals::get(&mut tx, access_key_id)
            .await?
            .ok_or_else(|| not_found(access_key_id))?;
        let version = publish::publish_principal(&mut tx, access_key_id, today()).await?;
        tx.commit().await?;
        self.published(version);
        Ok(row)
    }

    pub async fn delete_principal(&self, access_key_id: &str) -> Result<(), TenancyError> {
        let mut tx = self.store.begin().await?;
        if !principals::delete(&mut tx, access_key_id).await? {
            return Err(not_found(access_key_id));
        }
        let version = publish::publish_principal(&mut tx, access_key_id, today()).await?;
        tx.commit().await?;
        self.published(version);
        Ok(())
    }

    /// The clear secret behind a tenant's access key or a principal's, for
    /// deriving the signing keys nodes receive. Service keys never sign
    /// `execute-api` calls and are not found here.
    pub async fn signing_secret(
        &self,
        access_key_id: &str,
    ) -> Result<Option<String>, TenancyError> {
        let mut tx = self.store.begin().await?;
        let sealed = match tenants::get_access_key(&mut tx, access_key_id).await? {
            Some(key) => key.secret_sealed,
            None => match principals::get(&mut tx, access_key_id).await? {
                Some(p) => p.secret_sealed,
                None => return Ok(None),
            },
        };
        Ok(Some(self.sealer.open(&sealed)?))
    }

    /// The principal behind an access key, if it is one.
    pub async fn principal_credentials(
        &self,
        access_key_id: &str,
    ) -> Result<Option<PrincipalCredentials>, TenancyError> {
        let mut tx = self.store.begin().await?;
        let Some(row) = principals::get(&mut tx, access_key_id).await? else {
            return Ok(None);
        };
        Ok(Some(PrincipalCredentials {
            arn: arn(&row),
            secret: self.sealer.open(&row.secret_sealed)?,
        }))
    }

    /// Every signing secret (tenants' keys and principals'), by access key
    /// id: what a full config snapshot needs, read in one query.
    pub async fn signing_secrets(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, TenancyError> {
        let mut tx = self.store.begin().await?;
        let sealed = principals::all_sealed_secrets(&mut tx).await?;
        drop(tx);
        sealed
            .into_iter()
            .map(|(id, sealed)| Ok((id, self.sealer.open(&sealed)?)))
            .collect()
    }
}

/// A principal's ARN and clear secret.
#[derive(Debug, Clone)]
pub struct PrincipalCredentials {
    pub arn: String,
    pub secret: String,
}

fn not_found(access_key_id: &str) -> TenancyError {
    TenancyError::NotFound(format!("principal {access_key_id} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_policies_are_checked() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:abc/*/GET/*"}]}"#;
        assert!(check_policy(ok).is_ok());
        for bad in [
            "",
            "{}",
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
        ] {
            assert!(
                matches!(check_policy(bad), Err(TenancyError::Invalid(_))),
                "{bad}"
            );
        }
        let long = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"*","Resource":"{}"}}]}}"#,
            "a".repeat(MAX_POLICY_CHARS)
        );
        assert!(check_policy(&long).is_err());
    }

    #[test]
    fn names_follow_iam() {
        assert!(check_name("bob.smith+ci@example_1-2=x,y").is_ok());
        for bad in ["", "a b", "ü", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
