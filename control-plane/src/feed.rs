//! The change feed that wakes config subscribers: a process-local
//! [`tokio::sync::watch`] holding the highest configuration version this
//! replica knows of. It is bumped by the management handlers after their
//! commit (so the local replica never waits for a NOTIFY round trip) and, on
//! Postgres, by a `LISTEN apigw_config` task fed by every replica's
//! publications (`pg_notify` inside the publishing transaction, delivered at
//! commit).
//!
//! Subscribers only use the feed as a wake-up: on every wake they re-read
//! `config_resources WHERE version > last_sent`, so a coalesced or lost
//! wake-up never loses a change, it only delays it.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::publish::NOTIFY_CHANNEL;

/// Wakes config subscribers; cheap to clone.
#[derive(Debug, Clone)]
pub struct ConfigFeed {
    tx: Arc<watch::Sender<u64>>,
}

impl Default for ConfigFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigFeed {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(0);
        Self { tx: Arc::new(tx) }
    }

    /// Records that `version` was committed and wakes every subscriber.
    pub fn published(&self, version: u64) {
        self.tx.send_modify(|v| *v = (*v).max(version));
    }

    /// Records a version if there is one (a handler that may have published nothing).
    pub fn published_opt(&self, version: Option<u64>) {
        if let Some(v) = version {
            self.published(v);
        }
    }

    /// Wakes every subscriber without a known version, so they re-read the store.
    pub fn wake(&self) {
        self.tx.send_modify(|_| {});
    }

    /// The highest version this replica has heard of.
    pub fn latest(&self) -> u64 {
        *self.tx.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Connects to Postgres, `LISTEN`s on [`NOTIFY_CHANNEL`] and spawns the task
    /// that bumps the feed on every notification. Fails if the first connection
    /// fails; afterwards a dropped connection is re-established with backoff
    /// (1 s doubling to 30 s), and subscribers are woken once after every
    /// reconnect, since notifications sent meanwhile are lost.
    pub async fn listen_postgres(&self, database_url: &str) -> Result<JoinHandle<()>, sqlx::Error> {
        let listener = connect(database_url).await?;
        let feed = self.clone();
        let url = database_url.to_owned();
        Ok(tokio::spawn(async move {
            feed.listen_loop(listener, url).await;
        }))
    }

    async fn listen_loop(self, first: PgListener, url: String) {
        const MIN_BACKOFF: Duration = Duration::from_secs(1);
        const MAX_BACKOFF: Duration = Duration::from_secs(30);
        let mut listener = Some(first);
        let mut backoff = MIN_BACKOFF;
        loop {
            let mut l = match listener.take() {
                Some(l) => l,
                None => match connect(&url).await {
                    Ok(l) => {
                        tracing::info!("config feed: LISTEN {NOTIFY_CHANNEL} re-established");
                        backoff = MIN_BACKOFF;
                        self.wake();
                        l
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "config feed: cannot LISTEN");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            loop {
                match l.try_recv().await {
                    Ok(Some(n)) => {
                        backoff = MIN_BACKOFF;
                        match n.payload().parse::<u64>() {
                            Ok(v) => self.published(v),
                            Err(_) => self.wake(),
                        }
                    }
                    // The connection was lost and re-established (eager
                    // reconnect): anything sent meanwhile was missed.
                    Ok(None) => {
                        tracing::warn!("config feed: LISTEN connection lost and re-established");
                        self.wake();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "config feed: LISTEN failed");
                        break;
                    }
                }
            }
            drop(l);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}
