//! apigw's built-in Lambda-compatible function host.
//!
//! Each function runs as OS processes speaking the **Lambda Runtime API**: an
//! instance is one process (a `bootstrap` for the `provided*` runtimes, or
//! `python -m awslambdaric <handler>` for `python3.x`) plus a loopback HTTP
//! server on its own port serving `/2018-06-01/runtime/…` to that process
//! only. Warm instances are reused; new ones start up to a per-function
//! concurrency limit; the function's timeout kills the instance; idle
//! instances are reaped. Pools, code directories and logs are per (account,
//! function): one tenant's instances never serve another's invocations.
//!
//! This is logical isolation, not a sandbox: every function runs as the
//! host's OS user (see docs/architecture.md, "Function host").

pub mod code;
mod instance;
mod pool;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

pub use code::{CodeInfo, inspect};
pub use pool::FunctionHost;

/// Lambda's limit on a synchronous invocation's payload and response (6 MB).
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6_291_456;
/// Lambda's limit on an asynchronous (`Event`) invocation's payload (1 MB).
pub const MAX_ASYNC_PAYLOAD_BYTES: usize = 1_048_576;
/// What the Runtime API accepts as a function's response (Lambda's figure).
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;
/// The tail of the log returned for `X-Amz-Log-Type: Tail`.
pub const LOG_TAIL_BYTES: usize = 4096;

/// The host's settings, built by the binary from flags/env.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where unpacked code is cached: `{code_dir}/{account}/{sha256 hex}/`.
    pub code_dir: PathBuf,
    /// Concurrent invocations per function; beyond it a synchronous invoke
    /// answers 429 and events wait.
    pub concurrency_per_function: usize,
    /// Idle instances older than this are stopped.
    pub idle_timeout: Duration,
    /// How long a new instance may take to reach `/next` (Lambda: 10 s).
    pub init_timeout: Duration,
    /// The interpreter that runs `python3.x` functions through `awslambdaric`.
    pub python: PathBuf,
}

impl HostConfig {
    pub fn new(code_dir: PathBuf) -> Self {
        Self {
            code_dir,
            concurrency_per_function: 10,
            idle_timeout: Duration::from_secs(300),
            init_timeout: Duration::from_secs(10),
            python: PathBuf::from("python3"),
        }
    }
}

/// Everything the host needs to run one function (its `$LATEST` configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub account_id: String,
    pub name: String,
    pub region: String,
    pub arn: String,
    pub runtime: String,
    pub handler: Option<String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub environment: BTreeMap<String, String>,
    /// Base64 SHA-256 of the zip (Lambda's `CodeSha256`): names the code dir.
    pub code_sha256: String,
    /// Changes with every configuration or code update; instances started
    /// for another revision are not reused.
    pub revision: String,
}

/// One invocation's input.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    pub payload: Bytes,
    /// `X-Amz-Log-Type: Tail`: return the last 4 KB of the invocation's log.
    pub tail_log: bool,
    /// The decoded `X-Amz-Client-Context` JSON, passed on to the runtime.
    pub client_context: Option<String>,
}

/// What an invocation produced.
#[derive(Debug, Clone)]
pub struct InvokeOutput {
    pub request_id: String,
    /// The function's result, or its error object when `function_error`.
    pub payload: Bytes,
    /// `X-Amz-Function-Error: Unhandled`.
    pub function_error: bool,
    /// Base64 of the log tail (`X-Amz-Log-Result`), when asked for.
    pub log_result: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The per-function concurrency limit is reached (Lambda's 429).
    #[error("Rate Exceeded.")]
    TooManyRequests,
    #[error("Could not unzip uploaded file. Please check your file, then try to upload again.")]
    InvalidZip,
    #[error("Unzipped size must be smaller than 262144000 bytes (got {0})")]
    CodeTooLarge(u64),
    #[error("the code with digest {0} is not installed on this host")]
    CodeNotInstalled(String),
    #[error("the uploaded code does not match its digest")]
    DigestMismatch,
    #[error("{0}")]
    Io(String),
}

#[cfg(test)]
mod tests;
