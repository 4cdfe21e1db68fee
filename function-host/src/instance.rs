//! One function instance: a process and the Runtime API server it talks to.
//!
//! The server listens on its own loopback port (given to the process as
//! `AWS_LAMBDA_RUNTIME_API`), so an instance can only ever receive its own
//! invocations. The invocation hand-off is a one-slot state machine:
//! `dispatch` queues an event, `GET …/invocation/next` takes it (and the
//! deadline clock starts), `POST …/{id}/response|error` resolves it; an
//! `init/error` or the process exiting resolves whatever is pending.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::{FunctionSpec, HostConfig, LOG_TAIL_BYTES, MAX_RESPONSE_BYTES};

/// How an invocation ended, as the instance saw it.
#[derive(Debug)]
pub(crate) enum Outcome {
    Response(Bytes),
    /// `POST …/{id}/error`: the runtime reported a function error.
    Error(Bytes),
    /// `POST …/init/error`: the runtime could not initialise.
    InitError(Bytes),
    /// The process exited; Go's `ProcessState` wording, as Lambda reports it.
    Exited(String),
    /// The response exceeded [`MAX_RESPONSE_BYTES`].
    ResponseTooLarge,
    /// The function's timeout (or the init timeout) elapsed; the instance is killed.
    TimedOut,
}

struct Queued {
    request_id: String,
    payload: Bytes,
    timeout: Duration,
    arn: String,
    client_context: Option<String>,
    picked: oneshot::Sender<()>,
    done: oneshot::Sender<Outcome>,
}

struct Current {
    request_id: String,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Slot {
    queued: Option<Queued>,
    current: Option<Current>,
    /// Set once the process is gone.
    exited: Option<String>,
    /// An init error posted while nothing was pending.
    init_error: Option<Bytes>,
}

impl Slot {
    /// Takes whichever invocation is waiting on this instance.
    fn take_pending(&mut self) -> Option<oneshot::Sender<Outcome>> {
        self.current
            .take()
            .map(|c| c.done)
            .or_else(|| self.queued.take().map(|q| q.done))
    }
}

/// The log of the invocation in progress, for `X-Amz-Log-Type: Tail`.
#[derive(Default)]
struct LogCapture {
    request_id: Option<String>,
    text: String,
}

impl LogCapture {
    fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
        // Keep a bounded window: only the last 4 KB is ever returned.
        if self.text.len() > 4 * LOG_TAIL_BYTES {
            let mut cut = self.text.len() - 2 * LOG_TAIL_BYTES;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
    }
}

struct Shared {
    slot: Mutex<Slot>,
    wake: Notify,
    log: Mutex<LogCapture>,
    account_id: String,
    function: String,
}

impl Shared {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // No code path can leave the slot half-written: poison is ignored.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, LogCapture> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves the current invocation if `request_id` names it.
    fn resolve(&self, request_id: &str, outcome: Outcome) -> bool {
        let mut slot = self.slot();
        match slot.current.take() {
            Some(c) if c.request_id == request_id => {
                let _ = c.done.send(outcome);
                true
            }
            other => {
                slot.current = other;
                false
            }
        }
    }
}

/// Why an instance could not be started: Lambda's `Runtime.InvalidEntrypoint`.
#[derive(Debug)]
pub(crate) struct EntrypointError(pub String);

pub(crate) struct Instance {
    pub revision: String,
    pid: Option<u32>,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    killed: AtomicBool,
    last_used: Mutex<Instant>,
    /// Whether it has served an invocation (a cold instance's first wait
    /// includes its init).
    warmed: AtomicBool,
}

impl Instance {
    /// Starts the runtime server and the process.
    pub async fn start(
        spec: &FunctionSpec,
        code_dir: &Path,
        config: &HostConfig,
        prlimit: Option<&Path>,
    ) -> Result<Arc<Self>, EntrypointError> {
        let (program, args) = entrypoint(spec, code_dir, config)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| EntrypointError(format!("cannot bind the runtime API: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| EntrypointError(e.to_string()))?
            .port();
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::default()),
            wake: Notify::new(),
            log: Mutex::new(LogCapture::default()),
            account_id: spec.account_id.clone(),
            function: spec.name.clone(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });

        // Memory: the child runs under `prlimit --data=<MemorySize>` (RLIMIT_DATA:
        // heap and private writable mappings, what "memory used" means for a
        // function; RLIMIT_AS would also count reserved-but-unused address space
        // and break runtimes that reserve large arenas). `prlimit` execs the
        // program, so the pid is the function's. No `unsafe` pre_exec needed.
        let mut command = match prlimit {
            Some(prlimit) => {
                let mut c = tokio::process::Command::new(prlimit);
                c.arg(format!(
                    "--data={}",
                    u64::from(spec.memory_mb) * 1024 * 1024
                ))
                .arg("--")
                .arg(&program)
                .args(&args);
                c
            }
            None => {
                let mut c = tokio::process::Command::new(&program);
                c.args(&args);
                c
            }
        };
        command
            .current_dir(code_dir)
            // The host's own environment (master key, database URL…) never
            // reaches a function.
            .env_clear()
            .envs(environment(spec, code_dir, port))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a kill reaches the runtime's children too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(EntrypointError(format!(
                    "fork/exec {}: {}",
                    program.display(),
                    io_wording(&e)
                )));
            }
        };
        let pid = child.id();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(read_log(out, shared.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(read_log(err, shared.clone()));
        }
        let watcher = shared.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => describe_exit(s),
                Err(e) => format!("wait failed: {e}"),
            };
            let pending = {
                let mut slot = watcher.slot();
                slot.exited = Some(status.clone());
                slot.take_pending()
            };
            tracing::debug!(
                account = %watcher.account_id,
                function = %watcher.function,
                %status,
                "function instance exited"
            );
            if let Some(done) = pending {
                let _ = done.send(Outcome::Exited(status));
            }
        });
        Ok(Arc::new(Self {
            revision: spec.revision.clone(),
            pid,
            shared,
            server,
            killed: AtomicBool::new(false),
            last_used: Mutex::new(Instant::now()),
            warmed: AtomicBool::new(false),
        }))
    }

    /// Whether the process is still there to take an invocation.
    pub fn alive(&self) -> bool {
        !self.killed.load(Ordering::SeqCst) && self.shared.slot().exited.is_none()
    }

    pub fn idle_since(&self) -> Instant {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn touch(&self) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Kills the process group and stops the runtime server.
    pub fn kill(&self) {
        if self.killed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.server.abort();
    }

    /// Runs one invocation on this instance and returns how it ended, with
    /// the invocation's log when `want_log`.
    pub async fn invoke(
        &self,
        request_id: &str,
        spec: &FunctionSpec,
        payload: Bytes,
        client_context: Option<String>,
        init_timeout: Duration,
    ) -> (Outcome, Duration) {
        let (picked_tx, picked_rx) = oneshot::channel();
        let (done_tx, mut done_rx) = oneshot::channel();
        {
            let mut log = self.shared.log();
            log.text.clear();
            log.request_id = Some(request_id.to_owned());
            log.push(&format!("START RequestId: {request_id} Version: $LATEST"));
        }
        {
            let mut slot = self.shared.slot();
            if let Some(status) = slot.exited.clone() {
                return (Outcome::Exited(status), Duration::ZERO);
            }
            if let Some(body) = slot.init_error.take() {
                return (Outcome::InitError(body), Duration::ZERO);
            }
            slot.queued = Some(Queued {
                request_id: request_id.to_owned(),
                payload,
                timeout: spec.timeout,
                arn: spec.arn.clone(),
                client_context,
                picked: picked_tx,
                done: done_tx,
            });
        }
        self.shared.wake.notify_one();
        // A warm instance is already waiting in `/next`; a cold one gets the
        // init allowance to get there, as on Lambda.
        let pickup_limit = if self.warmed.swap(true, Ordering::SeqCst) {
            spec.timeout
        } else {
            init_timeout
        };
        let begun = Instant::now();
        tokio::select! {
            _ = picked_rx => {}
            done = &mut done_rx => return (finished(done), begun.elapsed()),
            () = tokio::time::sleep(pickup_limit) => {
                self.kill();
                return (Outcome::TimedOut, begun.elapsed());
            }
        }
        let started = Instant::now();
        match tokio::time::timeout(spec.timeout, &mut done_rx).await {
            Ok(done) => (finished(done), started.elapsed()),
            Err(_) => {
                self.kill();
                (Outcome::TimedOut, started.elapsed())
            }
        }
    }

    /// Appends a line to the current invocation's log (START/END/REPORT).
    pub fn log_line(&self, line: &str) {
        self.shared.log().push(line);
    }

    /// Ends the invocation's log capture and returns its last 4 KB.
    pub fn take_log(&self) -> String {
        let mut log = self.shared.log();
        log.request_id = None;
        let text = std::mem::take(&mut log.text);
        let mut start = text.len().saturating_sub(LOG_TAIL_BYTES);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }

    /// Peak resident memory (VmHWM) in MB, for the REPORT line.
    pub fn max_memory_mb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb.div_ceil(1024))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn finished(done: Result<Outcome, oneshot::error::RecvError>) -> Outcome {
    done.unwrap_or_else(|_| Outcome::Exited("runtime disappeared".into()))
}

/// The program and arguments for a runtime.
fn entrypoint(
    spec: &FunctionSpec,
    code_dir: &Path,
    config: &HostConfig,
) -> Result<(PathBuf, Vec<String>), EntrypointError> {
    if spec.runtime.starts_with("provided") {
        let bootstrap = code_dir.join("bootstrap");
        if !bootstrap.is_file() {
            return Err(EntrypointError(format!(
                "Couldn't find valid bootstrap(s): [{}]",
                bootstrap.display()
            )));
        }
        // Checked here: under `prlimit` a failed exec would look like an exit.
        if !crate::pool::is_executable(&bootstrap) {
            return Err(EntrypointError(format!(
                "fork/exec {}: permission denied",
                bootstrap.display()
            )));
        }
        return Ok((bootstrap, Vec::new()));
    }
    if spec.runtime.starts_with("python3") {
        let handler = spec.handler.clone().unwrap_or_default();
        return Ok((
            config.python.clone(),
            vec!["-m".into(), "awslambdaric".into(), handler],
        ));
    }
    Err(EntrypointError(format!(
        "runtime {} is not supported by this function host",
        spec.runtime
    )))
}

/// The environment Lambda gives a function (reference §4.5), then its own variables.
fn environment(spec: &FunctionSpec, code_dir: &Path, port: u16) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    // The function's variables first: reserved names are refused at
    // configuration time, and anything set below wins regardless.
    env.extend(spec.environment.clone());
    let task_root = code_dir.display().to_string();
    let now = chrono::Utc::now();
    let stream = format!(
        "{}/[$LATEST]{}",
        now.format("%Y/%m/%d"),
        uuid::Uuid::new_v4().simple()
    );
    for (k, v) in [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("_HANDLER", spec.handler.clone().unwrap_or_default()),
        ("LAMBDA_TASK_ROOT", task_root.clone()),
        ("LAMBDA_RUNTIME_DIR", task_root),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
        ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", spec.runtime)),
        ("AWS_REGION", spec.region.clone()),
        ("AWS_DEFAULT_REGION", spec.region.clone()),
        ("TZ", ":UTC".into()),
        ("LANG", "en_US.UTF-8".into()),
        // Lambda's PATH names its own image; the host's lets a bootstrap find
        // its tools (sh, curl, python) wherever this machine has them.
        (
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
    ] {
        env.insert(k.to_owned(), v);
    }
    if spec.runtime.starts_with("python") {
        // awslambdaric wraps stdout itself; this covers output printed before
        // it does, so log lines reach the host as they are written.
        env.insert("PYTHONUNBUFFERED".into(), "1".into());
    }
    env
}

/// Reads a process's output line by line into the host's log and the
/// invocation's capture.
async fn read_log(stream: impl AsyncRead + Unpin, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        let request_id = {
            let mut log = shared.log();
            log.push(line);
            log.request_id.clone().unwrap_or_default()
        };
        tracing::info!(
            target: "apigw::function",
            account = %shared.account_id,
            function = %shared.function,
            request_id = %request_id,
            "{line}"
        );
    }
}

/// Go's `os.ProcessState.String()`, which is what Lambda's
/// `Runtime exited with error: …` quotes.
fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                1 => "hangup",
                2 => "interrupt",
                3 => "quit",
                4 => "illegal instruction",
                6 => "aborted",
                7 => "bus error",
                8 => "floating point exception",
                9 => "killed",
                11 => "segmentation fault",
                13 => "broken pipe",
                15 => "terminated",
                _ => return format!("signal: {signal}"),
            };
            let core = if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            };
            return format!("signal: {name}{core}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "exited".into(),
    }
}

fn io_wording(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

// ---- Runtime API handlers --------------------------------------------------

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    loop {
        let wake = shared.wake.notified();
        {
            let mut slot = shared.slot();
            if let Some(q) = slot.queued.take() {
                let deadline = chrono::Utc::now().timestamp_millis()
                    + i64::try_from(q.timeout.as_millis()).unwrap_or(i64::MAX / 2);
                let _ = q.picked.send(());
                slot.current = Some(Current {
                    request_id: q.request_id.clone(),
                    done: q.done,
                });
                drop(slot);
                let mut headers = HeaderMap::new();
                // awslambdaric crashes on a `/next` answer without a content type.
                headers.insert("content-type", HeaderValue::from_static("application/json"));
                insert(&mut headers, "lambda-runtime-aws-request-id", &q.request_id);
                insert(
                    &mut headers,
                    "lambda-runtime-deadline-ms",
                    &deadline.to_string(),
                );
                insert(&mut headers, "lambda-runtime-invoked-function-arn", &q.arn);
                insert(&mut headers, "lambda-runtime-trace-id", &trace_id());
                if let Some(cc) = &q.client_context {
                    insert(&mut headers, "lambda-runtime-client-context", cc);
                }
                return (StatusCode::OK, headers, q.payload).into_response();
            }
        }
        wake.await;
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// An X-Ray-shaped trace id: `Root=1-{epoch hex}-{96 bits};Parent=…;Sampled=0`.
fn trace_id() -> String {
    let r = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        chrono::Utc::now().timestamp(),
        &r[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn unknown_request(id: &str) -> Response {
    runtime_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        &format!("Invalid request ID: {id}"),
    )
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Body,
) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_RESPONSE_BYTES).await else {
        if shared.resolve(&id, Outcome::ResponseTooLarge) {
            return runtime_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
            );
        }
        return unknown_request(&id);
    };
    if shared.resolve(&id, Outcome::Response(bytes)) {
        accepted()
    } else {
        unknown_request(&id)
    }
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Body,
) -> Response {
    let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    if shared.resolve(&id, Outcome::Error(bytes)) {
        accepted()
    } else {
        unknown_request(&id)
    }
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let bytes = axum::body::to_bytes(body, MAX_RESPONSE_BYTES)
        .await
        .unwrap_or_default();
    let pending = {
        let mut slot = shared.slot();
        let pending = slot.take_pending();
        if pending.is_none() {
            slot.init_error = Some(bytes.clone());
        }
        pending
    };
    if let Some(done) = pending {
        let _ = done.send(Outcome::InitError(bytes));
    }
    accepted()
}
