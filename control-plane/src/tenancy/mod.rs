//! Tenants (AWS accounts), their access keys, IAM-style principals, and
//! operator admin tokens. Keys and principals are published to data-plane
//! nodes (as `principal/…` config resources) in the transaction that changes
//! them, so AWS_IAM methods know every caller.

pub mod principals;
pub mod sealing;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};

use crate::feed::ConfigFeed;
use crate::publish;
use crate::store::tenants::{self, AccessKeyRow, ServiceKeyRow, TenantRow};
use crate::store::{Store, StoreError, now_epoch};
pub use sealing::Sealer;

/// The tenant and credentials standalone mode creates for local use.
pub const DEV_ACCOUNT_ID: &str = "000000000000";
pub const DEV_ACCESS_KEY_ID: &str = "test";
pub const DEV_SECRET_ACCESS_KEY: &str = "test";

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seal(#[from] sealing::SealError),
}

impl From<sqlx::Error> for TenancyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// A caller's identity once its access key is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// The tenant; empty for the service principal.
    pub account_id: String,
    pub secret: String,
    /// A service key: it may only invoke functions by full ARN, on behalf of
    /// the ARN's account (data-plane nodes use it for Lambda integrations).
    pub service: bool,
}

#[derive(Clone, Debug)]
pub struct Tenancy {
    store: Store,
    sealer: Sealer,
    /// Woken after a commit that published a principal.
    feed: Option<ConfigFeed>,
}

impl Tenancy {
    pub fn new(store: Store, sealer: Sealer) -> Self {
        Self {
            store,
            sealer,
            feed: None,
        }
    }

    /// Wakes `feed`'s subscribers after every change that reaches data-plane nodes.
    pub fn with_feed(mut self, feed: ConfigFeed) -> Self {
        self.feed = Some(feed);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn published(&self, version: Option<u64>) {
        if let Some(feed) = &self.feed {
            feed.published_opt(version);
        }
    }

    /// Seals tenant secrets at rest (API key values too).
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// Creates a tenant; a 12-digit id is generated unless one is given.
    pub async fn create_tenant(
        &self,
        name: &str,
        account_id: Option<&str>,
    ) -> Result<TenantRow, TenancyError> {
        let account_id = match account_id.filter(|a| !a.is_empty()) {
            Some(id) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => id.to_owned(),
            Some(id) => {
                return Err(TenancyError::Invalid(format!(
                    "account id must be 12 digits, got '{id}'"
                )));
            }
            None => {
                let mut rng = rand::thread_rng();
                (0..12)
                    .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
                    .collect()
            }
        };
        let mut tx = self.store.begin().await?;
        if tenants::get_tenant(&mut tx, &account_id).await?.is_some() {
            return Err(TenancyError::Conflict(format!(
                "tenant {account_id} already exists"
            )));
        }
        let tenant = TenantRow {
            account_id,
            name: name.to_owned(),
            created_at: now_epoch(),
        };
        tenants::insert_tenant(&mut tx, &tenant).await?;
        tx.commit().await?;
        Ok(tenant)
    }

    pub async fn list_tenants(&self) -> Result<Vec<TenantRow>, TenancyError> {
        let mut tx = self.store.begin().await?;
        Ok(tenants::list_tenants(&mut tx).await?)
    }

    /// Creates an access key with a generated id and secret.
    pub async fn create_access_key(
        &self,
        account_id: &str,
    ) -> Result<(String, String), TenancyError> {
        let id = format!("AKIA{}", random_string(16).to_ascii_uppercase());
        let secret = random_string(40);
        self.add_access_key(account_id, &id, &secret).await?;
        Ok((id, secret))
    }

    /// Stores a given key pair (standalone's `test`/`test`).
    pub async fn add_access_key(
        &self,
        account_id: &str,
        id: &str,
        secret: &str,
    ) -> Result<(), TenancyError> {
        let mut tx = self.store.begin().await?;
        if tenants::get_tenant(&mut tx, account_id).await?.is_none() {
            return Err(TenancyError::NotFound(format!(
                "tenant {account_id} does not exist"
            )));
        }
        key_id_free(&mut tx, id).await?;
        let row = AccessKeyRow {
            access_key_id: id.to_owned(),
            account_id: account_id.to_owned(),
            secret_sealed: self.sealer.seal(secret),
            created_at: now_epoch(),
        };
        tenants::insert_access_key(&mut tx, &row).await?;
        let version = publish::publish_principal(&mut tx, id, today()).await?;
        tx.commit().await?;
        self.published(version);
        Ok(())
    }

    pub async fn list_access_keys(
        &self,
        account_id: &str,
    ) -> Result<Vec<AccessKeyRow>, TenancyError> {
        let mut tx = self.store.begin().await?;
        if tenants::get_tenant(&mut tx, account_id).await?.is_none() {
            return Err(TenancyError::NotFound(format!(
                "tenant {account_id} does not exist"
            )));
        }
        Ok(tenants::list_access_keys(&mut tx, account_id).await?)
    }

    pub async fn delete_access_key(&self, id: &str) -> Result<(), TenancyError> {
        let mut tx = self.store.begin().await?;
        if !tenants::delete_access_key(&mut tx, id).await? {
            return Err(TenancyError::NotFound(format!(
                "access key {id} does not exist"
            )));
        }
        let version = publish::publish_principal(&mut tx, id, today()).await?;
        tx.commit().await?;
        self.published(version);
        Ok(())
    }

    /// The owner and clear secret of an access key, for SigV4 verification.
    pub async fn resolve_key(&self, access_key_id: &str) -> Result<Option<KeyOwner>, TenancyError> {
        let mut tx = self.store.begin().await?;
        if let Some(row) = tenants::get_access_key(&mut tx, access_key_id).await? {
            return Ok(Some(KeyOwner {
                account_id: row.account_id,
                secret: self.sealer.open(&row.secret_sealed)?,
                service: false,
            }));
        }
        let Some(row) = tenants::get_service_key(&mut tx, access_key_id).await? else {
            return Ok(None);
        };
        Ok(Some(KeyOwner {
            account_id: String::new(),
            secret: self.sealer.open(&row.secret_sealed)?,
            service: true,
        }))
    }

    /// Creates a service-principal key with a generated id and secret.
    pub async fn create_service_key(
        &self,
        description: &str,
    ) -> Result<(String, String), TenancyError> {
        let id = format!("AKSV{}", random_string(16).to_ascii_uppercase());
        let secret = random_string(40);
        self.add_service_key(&id, &secret, description).await?;
        Ok((id, secret))
    }

    /// Stores a given service key pair (standalone's, kept in its data dir).
    /// Key ids are one namespace with tenants' access keys.
    pub async fn add_service_key(
        &self,
        id: &str,
        secret: &str,
        description: &str,
    ) -> Result<(), TenancyError> {
        let mut tx = self.store.begin().await?;
        key_id_free(&mut tx, id).await?;
        let row = ServiceKeyRow {
            access_key_id: id.to_owned(),
            secret_sealed: self.sealer.seal(secret),
            description: description.to_owned(),
            created_at: now_epoch(),
        };
        tenants::insert_service_key(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes sure a service key pair exists (idempotent; for standalone).
    pub async fn ensure_service_key(
        &self,
        id: &str,
        secret: &str,
        description: &str,
    ) -> Result<(), TenancyError> {
        let mut tx = self.store.begin().await?;
        let exists = tenants::get_service_key(&mut tx, id).await?.is_some();
        drop(tx);
        if exists {
            return Ok(());
        }
        self.add_service_key(id, secret, description).await
    }

    pub async fn list_service_keys(&self) -> Result<Vec<ServiceKeyRow>, TenancyError> {
        let mut tx = self.store.begin().await?;
        Ok(tenants::list_service_keys(&mut tx).await?)
    }

    pub async fn delete_service_key(&self, id: &str) -> Result<(), TenancyError> {
        let mut tx = self.store.begin().await?;
        if !tenants::delete_service_key(&mut tx, id).await? {
            return Err(TenancyError::NotFound(format!(
                "service key {id} does not exist"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes sure the tenant and key pair exist (idempotent; for standalone).
    pub async fn ensure_dev_credentials(&self) -> Result<(), TenancyError> {
        let mut tx = self.store.begin().await?;
        let has_tenant = tenants::get_tenant(&mut tx, DEV_ACCOUNT_ID)
            .await?
            .is_some();
        let has_key = tenants::get_access_key(&mut tx, DEV_ACCESS_KEY_ID)
            .await?
            .is_some();
        drop(tx);
        if !has_tenant {
            self.create_tenant("standalone", Some(DEV_ACCOUNT_ID))
                .await?;
        }
        if !has_key {
            self.add_access_key(DEV_ACCOUNT_ID, DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY)
                .await?;
        }
        Ok(())
    }

    /// Registers an operator token (stored as an argon2 hash); idempotent.
    pub async fn ensure_admin_token(&self, token: &str) -> Result<(), TenancyError> {
        if token.len() < 16 {
            return Err(TenancyError::Invalid(
                "an admin token must be at least 16 characters".into(),
            ));
        }
        let token_id = admin_token_id(token);
        let mut tx = self.store.begin().await?;
        if tenants::get_admin_token_hash(&mut tx, &token_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let token = token.to_owned();
        // argon2 is deliberately slow: keep it off the async workers.
        let hash = tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            Argon2::default()
                .hash_password(token.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(|e| TenancyError::Invalid(format!("cannot hash admin token: {e}")))?
        .map_err(|e| TenancyError::Invalid(format!("cannot hash admin token: {e}")))?;
        tenants::insert_admin_token(&mut tx, &token_id, &hash, now_epoch()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn verify_admin_token(&self, token: &str) -> Result<bool, TenancyError> {
        let mut tx = self.store.begin().await?;
        let Some(hash) = tenants::get_admin_token_hash(&mut tx, &admin_token_id(token)).await?
        else {
            return Ok(false);
        };
        drop(tx);
        let token = token.to_owned();
        let verified = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(token.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        Ok(verified)
    }
}

/// Access key ids are one namespace: tenants' keys, service keys and principals.
async fn key_id_free(conn: &mut sqlx::AnyConnection, id: &str) -> Result<(), TenancyError> {
    if tenants::get_access_key(conn, id).await?.is_some()
        || tenants::get_service_key(conn, id).await?.is_some()
        || crate::store::principals::get(conn, id).await?.is_some()
    {
        return Err(TenancyError::Conflict(format!(
            "access key {id} already exists"
        )));
    }
    Ok(())
}

/// Today (UTC): the day principal key windows are computed from.
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// A short digest naming a token's row; the argon2 hash is what proves it.
fn admin_token_id(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..8])
}

/// Random ASCII letters and digits.
pub fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
