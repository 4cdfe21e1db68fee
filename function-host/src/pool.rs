//! The host: per-function pools of warm instances under a concurrency limit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::code;
use crate::instance::{EntrypointError, Instance, Outcome};
use crate::{FunctionSpec, HostConfig, HostError, InvokeOutput, InvokeRequest};

/// A pool is per tenant and function: nothing is ever shared across accounts.
type FunctionKey = (String, String);

struct Pool {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Arc<Instance>>>,
    /// Set when the function is deleted: returning instances are stopped.
    retired: AtomicBool,
}

impl Pool {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Instance>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A warm instance of this revision, if any (most recently used first).
    fn take_warm(&self, revision: &str) -> Option<Arc<Instance>> {
        let mut idle = self.idle();
        while let Some(instance) = idle.pop() {
            if instance.alive() && instance.revision == revision {
                return Some(instance);
            }
            instance.kill();
        }
        None
    }

    fn put_back(&self, instance: Arc<Instance>) {
        if self.retired.load(Ordering::SeqCst) || !instance.alive() {
            instance.kill();
            return;
        }
        instance.touch();
        self.idle().push(instance);
    }

    fn stop_all(&self) {
        for instance in self.idle().drain(..) {
            instance.kill();
        }
    }
}

struct Inner {
    config: HostConfig,
    pools: Mutex<HashMap<FunctionKey, Arc<Pool>>>,
    /// `prlimit`, when this machine has it (see `instance.rs` on memory).
    prlimit: Option<PathBuf>,
}

/// The function host; cheap to clone.
#[derive(Clone)]
pub struct FunctionHost {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FunctionHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionHost")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl FunctionHost {
    /// Creates the host; inside a tokio runtime it also starts the reaper of
    /// idle instances (which ends when the last handle is dropped).
    pub fn new(mut config: HostConfig) -> Self {
        // Instances run with their code dir as working directory: every path
        // handed to them must not depend on ours.
        if let Ok(absolute) = std::path::absolute(&config.code_dir) {
            config.code_dir = absolute;
        }
        let prlimit = find_program("prlimit");
        if prlimit.is_none() {
            tracing::warn!("prlimit not found: function MemorySize will not be enforced");
        }
        let inner = Arc::new(Inner {
            config,
            pools: Mutex::new(HashMap::new()),
            prlimit,
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(reap(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, HashMap<FunctionKey, Arc<Pool>>> {
        self.inner
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn pool(&self, spec: &FunctionSpec) -> Arc<Pool> {
        let key = (spec.account_id.clone(), spec.name.clone());
        self.pools()
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Pool {
                    permits: Arc::new(Semaphore::new(self.inner.config.concurrency_per_function)),
                    idle: Mutex::new(Vec::new()),
                    retired: AtomicBool::new(false),
                })
            })
            .clone()
    }

    fn code_dir(&self, account_id: &str, sha256: &str) -> Option<PathBuf> {
        code::code_path(&self.inner.config.code_dir, account_id, sha256)
    }

    /// Whether this host has the code with this digest unpacked for the account.
    pub fn is_installed(&self, account_id: &str, sha256: &str) -> bool {
        self.code_dir(account_id, sha256)
            .is_some_and(|dir| dir.is_dir())
    }

    /// Unpacks a function's zip into the account's code cache (idempotent).
    pub async fn install(
        &self,
        account_id: &str,
        sha256: &str,
        zip: Bytes,
    ) -> Result<(), HostError> {
        let dir = self
            .code_dir(account_id, sha256)
            .ok_or(HostError::DigestMismatch)?;
        let expected = sha256.to_owned();
        tokio::task::spawn_blocking(move || {
            let info = code::inspect(&zip)?;
            if info.sha256 != expected {
                return Err(HostError::DigestMismatch);
            }
            code::unpack(&zip, &dir)
        })
        .await
        .map_err(|e| HostError::Io(format!("unpacking failed: {e}")))?
    }

    /// A synchronous (`RequestResponse`) invocation: 429 when the function's
    /// concurrency limit is reached.
    pub async fn invoke(
        &self,
        spec: &FunctionSpec,
        request: InvokeRequest,
    ) -> Result<InvokeOutput, HostError> {
        let pool = self.pool(spec);
        let permit = pool
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| HostError::TooManyRequests)?;
        self.run(&pool, spec, request, permit).await
    }

    /// An asynchronous (`Event`) invocation: queued until a slot is free, run
    /// in the background; the outcome goes to the log.
    pub fn invoke_event(&self, spec: FunctionSpec, request: InvokeRequest) -> String {
        let host = self.clone();
        let event_id = uuid::Uuid::new_v4().to_string();
        let id = event_id.clone();
        tokio::spawn(async move {
            let pool = host.pool(&spec);
            let Ok(permit) = pool.permits.clone().acquire_owned().await else {
                return;
            };
            match host.run(&pool, &spec, request, permit).await {
                Ok(out) if out.function_error => tracing::warn!(
                    account = %spec.account_id,
                    function = %spec.name,
                    event = %id,
                    request_id = %out.request_id,
                    error = %String::from_utf8_lossy(&out.payload),
                    "asynchronous invocation failed"
                ),
                Ok(out) => tracing::info!(
                    account = %spec.account_id,
                    function = %spec.name,
                    event = %id,
                    request_id = %out.request_id,
                    "asynchronous invocation done"
                ),
                Err(e) => tracing::warn!(
                    account = %spec.account_id,
                    function = %spec.name,
                    event = %id,
                    error = %e,
                    "asynchronous invocation could not run"
                ),
            }
        });
        event_id
    }

    async fn run(
        &self,
        pool: &Pool,
        spec: &FunctionSpec,
        request: InvokeRequest,
        _permit: OwnedSemaphorePermit,
    ) -> Result<InvokeOutput, HostError> {
        let dir = self
            .code_dir(&spec.account_id, &spec.code_sha256)
            .filter(|d| d.is_dir())
            .ok_or_else(|| HostError::CodeNotInstalled(spec.code_sha256.clone()))?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let instance = match pool.take_warm(&spec.revision) {
            Some(i) => i,
            None => match Instance::start(
                spec,
                &dir,
                &self.inner.config,
                self.inner.prlimit.as_deref(),
            )
            .await
            {
                Ok(i) => i,
                Err(EntrypointError(reason)) => {
                    return Ok(entrypoint_failure(
                        &request_id,
                        spec,
                        &reason,
                        request.tail_log,
                    ));
                }
            },
        };
        let (outcome, took) = instance
            .invoke(
                &request_id,
                spec,
                request.payload,
                request.client_context,
                self.inner.config.init_timeout,
            )
            .await;
        let (payload, function_error, keep) = match outcome {
            Outcome::Response(body) => (body, false, true),
            Outcome::Error(body) => (body, true, true),
            Outcome::InitError(body) => (body, true, false),
            Outcome::Exited(status) => (
                error_object(
                    "Runtime.ExitError",
                    &format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
                ),
                true,
                false,
            ),
            Outcome::ResponseTooLarge => (
                error_object(
                    "Function.ResponseSizeTooLarge",
                    &format!(
                        "Response payload size exceeded maximum allowed payload size ({} bytes).",
                        crate::MAX_RESPONSE_BYTES
                    ),
                ),
                true,
                true,
            ),
            Outcome::TimedOut => {
                let secs = spec.timeout.as_secs_f64();
                instance.log_line(&format!(
                    "{} {request_id} Task timed out after {secs:.2} seconds",
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ")
                ));
                (
                    error_object(
                        "Sandbox.Timedout",
                        &format!(
                            "RequestId: {request_id} Error: Task timed out after {secs:.2} seconds"
                        ),
                    ),
                    true,
                    false,
                )
            }
        };
        let log_result = if request.tail_log {
            // The process wrote its output before it posted the result, but
            // our pipe readers may not have consumed it yet: give them a beat.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some(finish_log(&instance, &request_id, spec, took))
        } else {
            finish_log(&instance, &request_id, spec, took);
            None
        };
        if keep {
            pool.put_back(instance);
        } else {
            instance.kill();
        }
        Ok(InvokeOutput {
            request_id,
            payload,
            function_error,
            log_result,
        })
    }

    /// Stops a function's instances (DeleteFunction); later invocations of a
    /// function of that name start afresh.
    pub fn remove(&self, account_id: &str, name: &str) {
        if let Some(pool) = self
            .pools()
            .remove(&(account_id.to_owned(), name.to_owned()))
        {
            pool.retired.store(true, Ordering::SeqCst);
            pool.stop_all();
        }
    }

    /// Stops every instance (process shutdown).
    pub fn shutdown(&self) {
        for (_, pool) in self.pools().drain() {
            pool.retired.store(true, Ordering::SeqCst);
            pool.stop_all();
        }
    }

    /// Warm instances held for a function (for tests and diagnostics).
    pub fn warm_instances(&self, account_id: &str, name: &str) -> usize {
        self.pools()
            .get(&(account_id.to_owned(), name.to_owned()))
            .map_or(0, |p| p.idle().len())
    }
}

fn error_object(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

fn entrypoint_failure(
    request_id: &str,
    spec: &FunctionSpec,
    reason: &str,
    tail: bool,
) -> InvokeOutput {
    let message = format!("RequestId: {request_id} Error: {reason}");
    tracing::warn!(account = %spec.account_id, function = %spec.name, %request_id, "{message}");
    let log = format!(
        "START RequestId: {request_id} Version: $LATEST\n{message}\nEND RequestId: {request_id}\n"
    );
    InvokeOutput {
        request_id: request_id.to_owned(),
        payload: error_object("Runtime.InvalidEntrypoint", &message),
        function_error: true,
        log_result: tail.then(|| BASE64.encode(log)),
    }
}

/// Adds END and REPORT to the invocation's log and returns the base64 tail.
fn finish_log(
    instance: &Instance,
    request_id: &str,
    spec: &FunctionSpec,
    took: Duration,
) -> String {
    let ms = took.as_secs_f64() * 1000.0;
    let memory = instance
        .max_memory_mb()
        .map(|m| format!("\tMax Memory Used: {m} MB"))
        .unwrap_or_default();
    instance.log_line(&format!("END RequestId: {request_id}"));
    instance.log_line(&format!(
        "REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB{memory}\t",
        ms.ceil() as u64,
        spec.memory_mb
    ));
    BASE64.encode(instance.take_log())
}

/// Stops instances idle for longer than the configured time.
async fn reap(inner: Weak<Inner>) {
    let period = {
        let Some(inner) = inner.upgrade() else { return };
        (inner.config.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        let limit = inner.config.idle_timeout;
        let pools: Vec<Arc<Pool>> = inner
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for pool in pools {
            let now = Instant::now();
            pool.idle().retain(|i| {
                let keep = i.alive() && now.duration_since(i.idle_since()) < limit;
                if !keep {
                    i.kill();
                }
                keep
            });
        }
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub(crate) fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

#[cfg(test)]
impl FunctionHost {
    pub(crate) fn inner_has_prlimit(&self) -> bool {
        self.inner.prlimit.is_some()
    }
}
