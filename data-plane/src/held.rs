//! The configuration a node holds: every stage resource it serves, as the raw
//! JSON bytes the control plane sent with the version it gave them, and the
//! version of the whole. Nothing here is parsed: the runtime parses a
//! resource when it compiles it and drops the parsed tree right after, so a
//! node keeps each snapshot once, as bytes (see [`crate::runtime`]).
//!
//! Updates build a new `Held` (the old one keeps serving until the new one
//! compiles; the resource map is shared, so the copy costs one `Arc` clone per
//! resource). The last one applied is written to disk as last-known-good by a
//! [`LastKnownGoodWriter`], off the apply path.
//!
//! # Last-known-good file
//!
//! JSON lines, written atomically (temp file, fsync, rename), so it can be
//! written and read one resource at a time:
//!
//! ```text
//! {"format":"apigw-last-known-good/2","version":7,"count":2}
//! {"key":"stage/123456789012/abcdefghij/prod","version":7,"body":{…the StageSnapshot JSON, as received…}}
//! {"key":"stage/123456789012/klmnopqrst/dev","version":5,"body":{…}}
//! ```
//!
//! The first format (one JSON object with parsed snapshots) is still read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use apigw_proto::config::{ConfigUpdate, ResourceVersion};
use apigw_proto::snapshot::StageSnapshot;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::Error as _;
use serde_json::value::RawValue;

/// Writes are at least this far apart: a file of 10,000 stages is ~45 MB
/// (~200 ms with its fsync), and during a burst of updates only the last
/// one matters. Shutdown writes what is pending at once.
const MIN_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// The first line of a last-known-good file names this format.
pub const LKG_FORMAT: &str = "apigw-last-known-good/2";

#[derive(Debug, thiserror::Error)]
pub enum HeldError {
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

/// One config resource: a stage snapshot as JSON bytes, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldResource {
    pub version: u64,
    pub body: Bytes,
}

impl HeldResource {
    /// A resource holding `snapshot` serialised (for tests and tools).
    pub fn from_snapshot(version: u64, snapshot: &StageSnapshot) -> Self {
        Self {
            version,
            body: serde_json::to_vec(snapshot)
                .expect("a snapshot always serialises")
                .into(),
        }
    }
}

/// Resource key → resource, shared between a `Held` and its successors' copies.
pub type Resources = BTreeMap<Arc<str>, HeldResource>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Held {
    pub version: u64,
    pub resources: Arc<Resources>,
}

impl Held {
    pub fn new(version: u64, resources: Resources) -> Self {
        Self {
            version,
            resources: Arc::new(resources),
        }
    }

    /// What the node tells the control plane it has, so a reconnect gets only the difference.
    pub fn inventory(&self) -> Vec<ResourceVersion> {
        self.resources
            .iter()
            .map(|(key, r)| ResourceVersion {
                key: key.to_string(),
                version: r.version,
            })
            .collect()
    }

    /// The configuration after `update`; `self` is untouched. Takes the
    /// update so the bodies move in without a copy. Whether the bodies are
    /// valid is the runtime's business: it parses what it compiles.
    pub fn apply(&self, update: ConfigUpdate) -> Held {
        let mut resources = if update.full {
            Resources::new()
        } else {
            (*self.resources).clone()
        };
        for key in &update.removals {
            resources.remove(key.as_str());
        }
        for resource in update.upserts {
            resources.insert(
                resource.key.into(),
                HeldResource {
                    version: resource.version,
                    body: resource.body.into(),
                },
            );
        }
        Held::new(update.version, resources)
    }

    /// Reads the last-known-good file, `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Held>, HeldError> {
        let read_error = |source| HeldError::Read {
            path: path.to_owned(),
            source,
        };
        let corrupt = |source| HeldError::Corrupt {
            path: path.to_owned(),
            source,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_error(e)),
        };
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line).map_err(read_error)?;
        let header = match serde_json::from_slice::<Header>(&line) {
            Ok(header) => header,
            // The first format: one JSON object (on one line, as it was written).
            Err(e) => {
                reader.read_to_end(&mut line).map_err(read_error)?;
                return match serde_json::from_slice::<Legacy<'_>>(&line) {
                    Ok(legacy) => Ok(Some(legacy.into_held())),
                    Err(_) => Err(corrupt(e)),
                };
            }
        };
        if header.format != LKG_FORMAT {
            return Err(corrupt(serde_json::Error::custom(format!(
                "unknown format {:?}",
                header.format
            ))));
        }
        let mut resources = Resources::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(read_error)? == 0 {
                break;
            }
            let entry: Line<'_> = serde_json::from_slice(&line).map_err(corrupt)?;
            resources.insert(
                entry.key.into(),
                HeldResource {
                    version: entry.version,
                    body: Bytes::copy_from_slice(entry.body.get().as_bytes()),
                },
            );
        }
        if resources.len() != header.count {
            return Err(corrupt(serde_json::Error::custom(format!(
                "{} resources where the header announces {}",
                resources.len(),
                header.count
            ))));
        }
        Ok(Some(Held::new(header.version, resources)))
    }

    /// Writes atomically (temp file, fsync, rename) so a crash never leaves
    /// half a file; streams one resource per line, copying no body whole.
    pub fn save(&self, path: &Path) -> Result<(), HeldError> {
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            let file = File::create(&tmp)?;
            let mut out = BufWriter::with_capacity(1 << 16, file);
            out.write_all(b"{\"format\":")?;
            serde_json::to_writer(&mut out, LKG_FORMAT)?;
            writeln!(
                out,
                ",\"version\":{},\"count\":{}}}",
                self.version,
                self.resources.len()
            )?;
            for (key, resource) in self.resources.iter() {
                out.write_all(b"{\"key\":")?;
                serde_json::to_writer(&mut out, &**key)?;
                write!(out, ",\"version\":{},\"body\":", resource.version)?;
                write_one_line(&mut out, &resource.body)?;
                out.write_all(b"}\n")?;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&tmp, path)
        };
        write(path).map_err(|source| HeldError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes a JSON text on one line: a raw line break can only be whitespace
/// between tokens (inside strings JSON escapes it), so it becomes a space.
fn write_one_line(out: &mut impl Write, json: &[u8]) -> std::io::Result<()> {
    let mut rest = json;
    while let Some(at) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
        out.write_all(&rest[..at])?;
        out.write_all(b" ")?;
        rest = &rest[at + 1..];
    }
    out.write_all(rest)
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u64,
    count: usize,
}

#[derive(Deserialize)]
struct Line<'a> {
    key: String,
    version: u64,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// The first format: `{"version":N,"resources":{key:{"version":N,"snapshot":{…}}}}`.
#[derive(Deserialize)]
struct Legacy<'a> {
    version: u64,
    #[serde(borrow)]
    resources: BTreeMap<String, LegacyResource<'a>>,
}

#[derive(Deserialize)]
struct LegacyResource<'a> {
    version: u64,
    #[serde(borrow)]
    snapshot: &'a RawValue,
}

impl Legacy<'_> {
    fn into_held(self) -> Held {
        let resources = self
            .resources
            .into_iter()
            .map(|(key, r)| {
                (
                    key.into(),
                    HeldResource {
                        version: r.version,
                        body: Bytes::copy_from_slice(r.snapshot.get().as_bytes()),
                    },
                )
            })
            .collect();
        Held::new(self.version, resources)
    }
}

/// Writes the latest held configuration to the last-known-good file on a
/// thread of its own, so applying an update never waits for the disk. A
/// configuration submitted while a write is under way replaces any older one
/// still waiting, and writes are [`MIN_WRITE_INTERVAL`] apart: a burst of
/// updates costs one write after the one in flight. Dropping the writer
/// writes what is pending, then stops the thread.
#[derive(Debug)]
pub struct LastKnownGoodWriter {
    shared: Arc<WriterShared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct WriterShared {
    state: Mutex<WriterState>,
    /// Something to write, or closing.
    wake: Condvar,
    /// A write finished.
    idle: Condvar,
}

#[derive(Debug, Default)]
struct WriterState {
    pending: Option<Held>,
    writing: bool,
    closing: bool,
    /// Files written so far (tests watch coalescing with it).
    writes: u64,
}

impl LastKnownGoodWriter {
    pub fn spawn(path: PathBuf) -> Self {
        let shared = Arc::new(WriterShared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("apigw-lkg-writer".into())
            .spawn(move || worker.run(&path))
            .expect("cannot start the last-known-good writer thread");
        Self {
            shared,
            thread: Some(thread),
        }
    }

    /// Schedules `held` to be written, replacing whatever still waits.
    pub fn submit(&self, held: Held) {
        let mut state = self.shared.lock();
        state.pending = Some(held);
        self.shared.wake.notify_one();
    }

    /// Blocks until everything submitted so far is on disk (or failed and logged).
    pub fn flush(&self) {
        let mut state = self.shared.lock();
        while state.pending.is_some() || state.writing {
            state = self
                .shared
                .idle
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// How many files were written so far.
    pub fn writes(&self) -> u64 {
        self.shared.lock().writes
    }
}

impl Drop for LastKnownGoodWriter {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl WriterShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self, path: &Path) {
        let mut state = self.lock();
        let mut last_write: Option<std::time::Instant> = None;
        loop {
            let wait = last_write
                .map(|at| MIN_WRITE_INTERVAL.saturating_sub(at.elapsed()))
                .filter(|w| !w.is_zero() && !state.closing);
            if let (Some(wait), true) = (wait, state.pending.is_some()) {
                // Too soon after the last write: let the burst coalesce.
                state = self
                    .wake
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            } else if let Some(held) = state.pending.take() {
                state.writing = true;
                drop(state);
                let started = std::time::Instant::now();
                match held.save(path) {
                    Ok(()) => tracing::debug!(
                        version = held.version,
                        stages = held.resources.len(),
                        ms = started.elapsed().as_millis() as u64,
                        "last-known-good config written"
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "applied config but could not persist it")
                    }
                }
                drop(held);
                last_write = Some(std::time::Instant::now());
                state = self.lock();
                state.writing = false;
                state.writes += 1;
                self.idle.notify_all();
            } else if state.closing {
                return;
            } else {
                state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
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
            authorizer_cache_generation: 0,
            variables: Default::default(),
            method_settings: Default::default(),
            usage_plans: Vec::new(),
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
                authorizers: Default::default(),
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

    fn body(n: &str) -> Vec<u8> {
        serde_json::to_vec(&stage(n)).unwrap()
    }

    fn keys(held: &Held) -> Vec<&str> {
        held.resources.keys().map(|k| &**k).collect()
    }

    #[test]
    fn full_replaces_and_delta_merges() {
        let full = ConfigUpdate {
            version: 2,
            full: true,
            upserts: vec![resource("a", 1, body("a")), resource("b", 2, body("b"))],
            removals: vec![],
        };
        let held = Held::default().apply(full.clone());
        assert_eq!(held.version, 2);
        assert_eq!(held.resources.len(), 2);
        let delta = ConfigUpdate {
            version: 3,
            full: false,
            upserts: vec![resource("c", 3, body("c"))],
            removals: vec!["a".into()],
        };
        let next = held.apply(delta);
        assert_eq!(keys(&next), ["b", "c"]);
        assert_eq!(
            next.inventory()
                .iter()
                .map(|r| r.version)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        // The previous configuration is untouched and shares the unchanged body.
        assert_eq!(keys(&held), ["a", "b"]);
        assert_eq!(
            held.resources["b"].body.as_ptr(),
            next.resources["b"].body.as_ptr()
        );
        // A full update drops whatever it does not name.
        let again = next.apply(ConfigUpdate {
            version: 4,
            full: true,
            ..full
        });
        assert_eq!(keys(&again), ["a", "b"]);
    }

    #[test]
    fn last_known_good_round_trips_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/lkg.json");
        assert_eq!(Held::load(&path).unwrap(), None);
        // A body with line breaks between tokens still takes one line.
        let pretty = serde_json::to_vec_pretty(&stage("b")).unwrap();
        let held = Held::default().apply(ConfigUpdate {
            version: 7,
            full: true,
            upserts: vec![resource("a", 7, body("a")), resource("b\"\n/x", 5, pretty)],
            removals: vec![],
        });
        held.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"format":"apigw-last-known-good/2","version":7,"count":2}"#
        );
        let loaded = Held::load(&path).unwrap().unwrap();
        assert_eq!(loaded.version, 7);
        assert_eq!(keys(&loaded), ["a", "b\"\n/x"]);
        assert_eq!(loaded.resources["a"], held.resources["a"]);
        let b: StageSnapshot = serde_json::from_slice(&loaded.resources["b\"\n/x"].body).unwrap();
        assert_eq!(b, stage("b"));
        assert!(!path.with_extension("tmp").exists());

        // A file cut short is refused rather than served half.
        let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, cut).unwrap();
        assert!(matches!(Held::load(&path), Err(HeldError::Corrupt { .. })));
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(Held::load(&path), Err(HeldError::Corrupt { .. })));
    }

    #[test]
    fn the_first_file_format_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lkg.json");
        let legacy = serde_json::json!({
            "version": 9,
            "resources": {"k": {"version": 8, "snapshot": stage("p")}},
        });
        std::fs::write(&path, serde_json::to_vec(&legacy).unwrap()).unwrap();
        let held = Held::load(&path).unwrap().unwrap();
        assert_eq!(held.version, 9);
        assert_eq!(held.resources["k"].version, 8);
        let snapshot: StageSnapshot = serde_json::from_slice(&held.resources["k"].body).unwrap();
        assert_eq!(snapshot, stage("p"));
    }

    #[test]
    fn the_writer_persists_the_latest_and_coalesces_bursts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lkg.json");
        let writer = LastKnownGoodWriter::spawn(path.clone());
        let mut held = Held::default();
        for v in 1..=200u64 {
            held = held.apply(ConfigUpdate {
                version: v,
                full: false,
                upserts: vec![resource(&format!("k{}", v % 7), v, body("s"))],
                removals: vec![],
            });
            writer.submit(held.clone());
        }
        writer.flush();
        assert!(writer.writes() >= 1 && writer.writes() <= 200);
        assert_eq!(Held::load(&path).unwrap().unwrap(), held);
        // Dropping writes what is still pending.
        let last = held.apply(ConfigUpdate {
            version: 201,
            full: true,
            upserts: vec![resource("z", 201, body("z"))],
            removals: vec![],
        });
        writer.submit(last.clone());
        drop(writer);
        assert_eq!(Held::load(&path).unwrap().unwrap(), last);
    }

    #[test]
    fn a_failed_write_is_logged_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        // The parent is a file: every write fails.
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let writer = LastKnownGoodWriter::spawn(dir.path().join("file/lkg.json"));
        writer.submit(Held::default());
        writer.flush();
        writer.submit(Held::default());
        writer.flush();
        assert_eq!(writer.writes(), 2);
    }
}
