//! The configuration a node holds: every stage snapshot it serves, each with
//! the version the control plane gave it, and the version of the whole.
//! Updates build a new `Held` (the old one keeps serving until the new one
//! compiles); the last one applied is written to disk as last-known-good.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apigw_proto::config::{ConfigUpdate, ResourceVersion};
use apigw_proto::snapshot::StageSnapshot;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum HeldError {
    #[error("resource {key} (version {version}) is not a valid stage snapshot: {source}")]
    BadResource {
        key: String,
        version: u64,
        source: serde_json::Error,
    },
    #[error("cannot read last-known-good config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("last-known-good config {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write last-known-good config {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldResource {
    pub version: u64,
    pub snapshot: Arc<StageSnapshot>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub version: u64,
    pub resources: BTreeMap<String, HeldResource>,
}

impl Held {
    /// What the node tells the control plane it has, so a reconnect gets only the difference.
    pub fn inventory(&self) -> Vec<ResourceVersion> {
        self.resources
            .iter()
            .map(|(key, r)| ResourceVersion {
                key: key.clone(),
                version: r.version,
            })
            .collect()
    }

    /// The configuration after `update`; `self` is untouched, so a bad update changes nothing.
    pub fn apply(&self, update: &ConfigUpdate) -> Result<Held, HeldError> {
        let mut next = if update.full {
            Held::default()
        } else {
            self.clone()
        };
        next.version = update.version;
        for key in &update.removals {
            next.resources.remove(key);
        }
        for resource in &update.upserts {
            let snapshot: StageSnapshot =
                serde_json::from_slice(&resource.body).map_err(|source| {
                    HeldError::BadResource {
                        key: resource.key.clone(),
                        version: resource.version,
                        source,
                    }
                })?;
            next.resources.insert(
                resource.key.clone(),
                HeldResource {
                    version: resource.version,
                    snapshot: Arc::new(snapshot),
                },
            );
        }
        Ok(next)
    }

    pub fn stages(&self) -> impl Iterator<Item = &StageSnapshot> {
        self.resources.values().map(|r| r.snapshot.as_ref())
    }

    /// Reads the last-known-good file, `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Held>, HeldError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| HeldError::Corrupt {
                        path: path.to_owned(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(HeldError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes atomically (temp file + rename) so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> Result<(), HeldError> {
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)
        };
        write(path).map_err(|source| HeldError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apigw_proto::config::SnapshotResource;
    use apigw_proto::snapshot::{ApiSettings, DeploymentSnapshot};

    fn stage(name: &str) -> StageSnapshot {
        StageSnapshot {
            stage_name: name.into(),
            variables: Default::default(),
            method_settings: Default::default(),
            deployment: DeploymentSnapshot {
                account_id: "123456789012".into(),
                api_id: "abcdefghij".into(),
                deployment_id: "d1".into(),
                created_epoch_seconds: 0,
                api: ApiSettings::default(),
                routes: vec![],
                gateway_responses: Default::default(),
                models: Default::default(),
                request_validators: Default::default(),
            },
        }
    }

    fn resource(key: &str, version: u64, body: Vec<u8>) -> SnapshotResource {
        SnapshotResource {
            key: key.into(),
            version,
            body,
        }
    }

    #[test]
    fn full_replaces_and_delta_merges() {
        let body = |n: &str| serde_json::to_vec(&stage(n)).unwrap();
        let full = ConfigUpdate {
            version: 2,
            full: true,
            upserts: vec![resource("a", 1, body("a")), resource("b", 2, body("b"))],
            removals: vec![],
        };
        let held = Held::default().apply(&full).unwrap();
        assert_eq!(held.version, 2);
        assert_eq!(held.resources.len(), 2);
        let delta = ConfigUpdate {
            version: 3,
            full: false,
            upserts: vec![resource("c", 3, body("c"))],
            removals: vec!["a".into()],
        };
        let next = held.apply(&delta).unwrap();
        assert_eq!(next.resources.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(
            next.inventory()
                .iter()
                .map(|r| r.version)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        // A full update drops whatever it does not name.
        let again = next
            .apply(&ConfigUpdate {
                version: 4,
                full: true,
                ..full
            })
            .unwrap();
        assert_eq!(again.resources.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn a_bad_resource_fails_without_touching_the_current_config() {
        let held = Held::default();
        let bad = ConfigUpdate {
            version: 1,
            full: false,
            upserts: vec![resource("x", 1, b"{not json".to_vec())],
            removals: vec![],
        };
        assert!(matches!(
            held.apply(&bad),
            Err(HeldError::BadResource { .. })
        ));
        assert_eq!(held, Held::default());
    }

    #[test]
    fn last_known_good_round_trips_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/lkg.json");
        assert_eq!(Held::load(&path).unwrap(), None);
        let full = ConfigUpdate {
            version: 7,
            full: true,
            upserts: vec![resource("a", 7, serde_json::to_vec(&stage("a")).unwrap())],
            removals: vec![],
        };
        let held = Held::default().apply(&full).unwrap();
        held.save(&path).unwrap();
        assert_eq!(Held::load(&path).unwrap(), Some(held));
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(Held::load(&path), Err(HeldError::Corrupt { .. })));
    }
}
