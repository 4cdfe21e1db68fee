//! The proxy: the data plane's public listener. Accepts HTTP/1.1 and h2c,
//! guards each connection (10 s to send a request head once it has begun,
//! 310 s idle, bounded header size), and runs each request through the
//! pipeline: ids → header size → route → resource policy and authorizers →
//! API key, usage plan and throttles → body limit → request validation →
//! integration (with its mapping templates) → gateway response on error →
//! ids on every answer → metrics.
//!
//! Not yet in the pipeline (architecture.md): caching, access logs.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apigw_http1_server::{Connection, Limits, Next, Rewound};
use apigw_proto::gateway_response::ResponseType;
use bytes::Bytes;
use futures::task::AtomicWaker;
use http::header::{self, HeaderValue};
use http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::body::{self, Body};
use crate::gateway_response::{self, GatewayError, GatewayResponses};
use crate::integration::mapping::{RequestContext, RequestView};
use crate::integration::{BackendClient, Call, CallTimer, Forwarded, backend_client};
use crate::listen::{accept, stop_flag, stopped};
use crate::metrics::{Metrics, RequestRecord};
use crate::routing::RouteOutcome;
use crate::runtime::RuntimeHandle;

/// Once a request head has begun, it must be complete within this (slow loris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no traffic for this long is closed (AWS's REST idle timeout).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(310);
/// Total size of request header names, values and line overhead (AWS REST).
pub const MAX_HEADER_BYTES: usize = 10_240;
/// Request payload limit (AWS REST: 10 MB).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// hyper's read buffer: a request head larger than this is refused by hyper
/// itself (a bare 431); smaller heads over [`MAX_HEADER_BYTES`] get our 431.
const MAX_READ_BUFFER: usize = 64 * 1024;
/// How long in-flight requests may finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long an idle-closed connection may take to go.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub const X_AMZN_REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
pub const X_AMZ_APIGW_ID: HeaderName = HeaderName::from_static("x-amz-apigw-id");

struct Shared {
    runtime: RuntimeHandle,
    metrics: Metrics,
    client: BackendClient,
}

/// Serves `listener` until `shutdown` completes, then lets in-flight
/// requests finish (up to 30 s).
pub async fn serve(
    listener: TcpListener,
    runtime: RuntimeHandle,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    runtime.attach_metrics(&metrics);
    let shared = Arc::new(Shared {
        runtime,
        metrics,
        client: backend_client(),
    });
    let stop_rx = stop_flag(shutdown);
    // Each connection holds a sender; when all are gone, all are done.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut stop = stop_rx.clone();
    while let Some((stream, peer)) = accept(&listener, &mut stop, "proxy").await {
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        tokio::spawn(connection(
            stream,
            peer,
            local,
            shared.clone(),
            stop_rx.clone(),
            alive_tx.clone(),
        ));
    }
    drop(listener);
    drop(alive_tx);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE + CLOSE_GRACE, alive_rx.recv()).await;
    Ok(())
}

/// Binds `workers` listening sockets to one address with `SO_REUSEPORT`, so
/// the kernel spreads connections over the proxy workers. Port 0 picks one
/// port for all of them.
pub fn bind_workers(
    addr: SocketAddr,
    workers: usize,
) -> std::io::Result<Vec<std::net::TcpListener>> {
    let bind = |addr: SocketAddr| -> std::io::Result<std::net::TcpListener> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        Ok(socket.into())
    };
    let first = bind(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..workers.max(1) {
        listeners.push(bind(addr)?);
    }
    Ok(listeners)
}

/// Serves each listener on a thread of its own with a single-threaded tokio
/// runtime (thread per core, as nginx runs a worker per core): a connection,
/// its backend calls and their pooled backend connections stay on one thread,
/// so the hot path never wakes another thread or contends on a lock.
pub async fn serve_workers(
    listeners: Vec<std::net::TcpListener>,
    runtime: RuntimeHandle,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_rx = stop_flag(shutdown);
    let mut workers = Vec::with_capacity(listeners.len());
    for (i, listener) in listeners.into_iter().enumerate() {
        let (done_tx, done_rx) = oneshot::channel();
        let runtime = runtime.clone();
        let metrics = metrics.clone();
        let mut stop = stop_rx.clone();
        std::thread::Builder::new()
            .name(format!("apigw-proxy-{i}"))
            .spawn(move || {
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|rt| {
                        rt.block_on(async move {
                            let listener = TcpListener::from_std(listener)?;
                            serve(listener, runtime, metrics, async move {
                                stopped(&mut stop).await;
                            })
                            .await
                        })
                    });
                let _ = done_tx.send(served);
            })?;
        workers.push(done_rx);
    }
    for done in workers {
        done.await
            .map_err(|_| std::io::Error::other("a proxy worker thread died"))??;
    }
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let _ = stream.set_nodelay(true);
    // Formatted once per connection, not per request.
    let caller = Arc::new(Peer {
        forwarded: Forwarded::new(&peer.ip().to_string(), local.port()),
        call_timer: CallTimer::default(),
    });
    let activity = Arc::new(Activity::new());
    let io = Watched {
        inner: stream,
        activity: activity.clone(),
    };
    let conn = serve_connection(io, shared, caller, activity.clone());
    tokio::pin!(conn);
    let mut closing_by: Option<Instant> = None;
    // One timer for the connection's life, re-armed only when it fires (or
    // on shutdown): requests themselves never touch it.
    let sleep = tokio::time::sleep(HEADER_READ_TIMEOUT);
    tokio::pin!(sleep);
    let shutdown = stopped(&mut stop);
    tokio::pin!(shutdown);
    // The timer and the shutdown signal wake the task through their own
    // waker, so the task's other wake-ups (every read and write of the
    // connection) poll the connection alone.
    let watchdog = Arc::new(WatchdogWake::default());
    let watchdog_waker = Waker::from(watchdog.clone());
    loop {
        let head = activity.head_deadline();
        let idle = activity.idle_deadline();
        // With no head in progress, look again within one head timeout: a
        // head that begins meanwhile is then still cut off exactly on time.
        let deadline = closing_by.unwrap_or_else(|| {
            head.unwrap_or_else(|| Instant::now() + HEADER_READ_TIMEOUT)
                .min(idle)
        });
        sleep.as_mut().reset(deadline.into());
        // The timer was just reset: poll it (and the signal) at least once.
        watchdog.woken.store(true, Ordering::Release);
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(Watch::Ended(result));
            }
            // Registered before the flag is read, so no wake-up is lost.
            watchdog.task.register(cx.waker());
            if !watchdog.woken.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
            let mut own = Context::from_waker(&watchdog_waker);
            if closing_by.is_none() && shutdown.as_mut().poll(&mut own).is_ready() {
                return Poll::Ready(Watch::Shutdown);
            }
            if sleep.as_mut().poll(&mut own).is_ready() {
                return Poll::Ready(Watch::Timer);
            }
            Poll::Pending
        })
        .await;
        match event {
            Watch::Ended(result) => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            Watch::Shutdown => {
                if activity.close_gracefully() {
                    return;
                }
                closing_by = Some(Instant::now() + SHUTDOWN_GRACE);
            }
            Watch::Timer => {
                let now = Instant::now();
                activity.look(now);
                let head = activity.head_deadline();
                let idle = activity.idle_deadline();
                if closing_by.is_some() || head.is_some_and(|h| h <= now) {
                    tracing::debug!(%peer, "closing connection (request head too slow or close overdue)");
                    return;
                }
                if idle <= now {
                    if activity.close_gracefully() {
                        return;
                    }
                    closing_by = Some(now + CLOSE_GRACE);
                }
            }
        }
    }
}

/// Requests the lean server does not serve (see apigw-http1-server) go to
/// hyper: a body this large is streamed there, under the 10 MB limit.
const LEAN_MAX_BODY: usize = 64 * 1024;

/// Serves the connection's requests with the lean HTTP/1.1 server until one
/// it does not serve (HTTP/1.0, h2c, chunked or large bodies, malformed
/// heads), then hands the connection, with the bytes already read, to
/// hyper for the rest of its life.
async fn serve_connection(
    io: Watched,
    shared: Arc<Shared>,
    caller: Arc<Peer>,
    activity: Arc<Activity>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let limits = Limits {
        max_head: MAX_READ_BUFFER,
        max_body: LEAN_MAX_BODY,
    };
    let mut conn = Connection::new(io, limits);
    loop {
        match conn.next_request().await {
            Next::Request(parts) => {
                let in_flight = activity.begin_request();
                let Some(body) = conn.body().await else {
                    return Ok(());
                };
                let ids = RequestIds::new();
                let mut response =
                    handle(parts, RequestBody::Read(body), &ids, &shared, &caller).await;
                let closing = activity.closing.load(Ordering::Acquire);
                let lines = ids.field_lines(&mut response);
                let open = conn.respond(response, closing, lines).await?;
                drop(in_flight);
                if !open {
                    return Ok(());
                }
            }
            Next::Closed => return Ok(()),
            Next::HandOff => break,
        }
    }
    activity.handed_off.store(true, Ordering::Release);
    let (io, read) = conn.into_parts();
    let service = {
        let activity = activity.clone();
        service_fn(move |request: Request<Incoming>| {
            let shared = shared.clone();
            let caller = caller.clone();
            let in_flight = activity.begin_request();
            async move {
                let (parts, incoming) = request.into_parts();
                let ids = RequestIds::new();
                let mut response =
                    handle(parts, RequestBody::Unread(incoming), &ids, &shared, &caller).await;
                ids.insert_into(&mut response);
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog enforces both the slow-loris and the idle timeout;
        // hyper's own head timer would cost a boxed timer per request.
        .header_read_timeout(None)
        .max_buf_size(MAX_READ_BUFFER)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_READ_BUFFER as u32);
    let conn = builder.serve_connection(TokioIo::new(Rewound::new(io, read)), service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    // The watchdog polls this right after it sets `closing`.
    std::future::poll_fn(|cx| {
        if !shutting_down && activity.closing.load(Ordering::Acquire) {
            conn.as_mut().graceful_shutdown();
            shutting_down = true;
        }
        conn.as_mut().poll(cx)
    })
    .await
}

/// What woke the connection's watchdog loop.
enum Watch<E> {
    /// The connection is done (its result).
    Ended(Result<(), E>),
    Shutdown,
    Timer,
}

/// The waker of the watchdog's own futures: notes that one of them is ready
/// to be polled, then wakes the connection's task.
#[derive(Default)]
struct WatchdogWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for WatchdogWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// The caller's end of a connection, formatted once, and the connection's
/// timer for integration calls.
struct Peer {
    forwarded: Forwarded,
    call_timer: CallTimer,
}

/// Traffic on one connection, as the watchdog sees it.
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last read or write the watchdog
    /// knows the time of.
    last_io: AtomicU64,
    /// Traffic since the watchdog last looked: reads and writes only set
    /// this (no clock reading per write); the watchdog, which wakes at least
    /// every [`HEADER_READ_TIMEOUT`], dates it when it looks.
    io_since_look: AtomicBool,
    /// 1 + milliseconds since `epoch` when bytes arrived with no request in
    /// progress (a head has begun); 0 when none.
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    /// HTTP/2 has its own framing limits; the head clock is HTTP/1's.
    h2: AtomicBool,
    /// The connection should close once its requests in flight are answered.
    closing: AtomicBool,
    /// hyper serves the connection (apigw-http1-server handed it over).
    handed_off: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_io: AtomicU64::new(0),
            io_since_look: AtomicBool::new(false),
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            h2: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            handed_off: AtomicBool::new(false),
        }
    }

    fn ms_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }

    fn on_read(&self, first_bytes: &[u8], first: bool) {
        if first && first_bytes.starts_with(b"PRI * HTTP/2.0") {
            self.h2.store(true, Ordering::Relaxed);
        }
        // The watchdog reads this when its timer fires; no wake-up needed.
        // Only a head's first bytes are dated now: the slow-loris clock
        // starts there.
        if !self.h2.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
        {
            let now = self.ms_at(Instant::now());
            self.last_io.store(now, Ordering::Relaxed);
            let _ =
                self.head_since
                    .compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed);
        } else {
            self.io_since_look.store(true, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.io_since_look.store(true, Ordering::Relaxed);
    }

    /// The watchdog's look at `now`: traffic since the last look counts as
    /// traffic now (a connection is idle-closed at most one look late).
    fn look(&self, now: Instant) {
        if self.io_since_look.swap(false, Ordering::Relaxed) {
            self.last_io.fetch_max(self.ms_at(now), Ordering::Relaxed);
        }
    }

    /// Asks the connection to close once its requests in flight are
    /// answered; true when it can close at once (the lean server between
    /// requests; hyper is told through `closing` and shuts down itself).
    fn close_gracefully(&self) -> bool {
        if !self.handed_off.load(Ordering::Acquire) && self.in_flight.load(Ordering::Acquire) == 0 {
            return true;
        }
        self.closing.store(true, Ordering::Release);
        false
    }

    fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
        InFlight(self.clone())
    }

    fn head_deadline(&self) -> Option<Instant> {
        match self.head_since.load(Ordering::Acquire) {
            0 => None,
            since => Some(self.at(since - 1) + HEADER_READ_TIMEOUT),
        }
    }

    fn idle_deadline(&self) -> Instant {
        self.at(self.last_io.load(Ordering::Relaxed)) + IDLE_TIMEOUT
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // No clock reading here: the answer's write, which always follows,
        // records the activity.
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A TCP stream that reports its traffic to [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let first = self.activity.last_io.load(Ordering::Relaxed) == 0 && before == 0;
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read(&buf.filled()[before..], first);
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.on_write();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the metrics record about where a request went.
#[derive(Default)]
struct Trace<'r> {
    api_id: &'r str,
    stage: &'r str,
    resource: &'r str,
    integration_latency: Option<Duration>,
}

/// Runs a request through the pipeline and records it. The answer does not
/// carry the ids yet: the caller adds them ([`RequestIds`]), with whatever
/// fields of those names the answer had removed.
async fn handle(
    parts: http::request::Parts,
    body: RequestBody,
    request_ids: &RequestIds,
    shared: &Shared,
    peer: &Peer,
) -> Response<Body> {
    let started = Instant::now();
    let runtime = shared.runtime.load();
    let method = parts.method.clone();
    let mut trace = Trace::default();
    let ids = Ids {
        request_id: request_ids.request_id(),
        extended_id: request_ids.extended_id(),
        arrived: started,
    };
    let response = pipeline(parts, body, shared, &runtime, ids, peer, &mut trace).await;
    shared.metrics.record(RequestRecord {
        api_id: trace.api_id,
        stage: trace.stage,
        resource: trace.resource,
        method: method.as_str(),
        status: response.status().as_u16(),
        latency: started.elapsed(),
        integration_latency: trace.integration_latency,
    });
    response
}

/// A request's ids, and when it arrived.
#[derive(Clone, Copy)]
struct Ids<'a> {
    request_id: &'a str,
    extended_id: &'a str,
    arrived: Instant,
}

async fn pipeline<'r>(
    parts: http::request::Parts,
    mut body: RequestBody,
    shared: &Shared,
    runtime: &'r crate::runtime::Runtime,
    ids: Ids<'_>,
    peer: &Peer,
    trace: &mut Trace<'r>,
) -> Response<Body> {
    if header_bytes(&parts.headers) > MAX_HEADER_BYTES {
        return headers_too_large();
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let path = parts.uri.path();
    let mut context = RequestContext {
        request_id: ids.request_id,
        extended_request_id: ids.extended_id,
        http_method: parts.method.as_str(),
        path,
        protocol: protocol(parts.version),
        domain_name: host.map_or("", crate::routing::strip_port),
        source_ip: &peer.forwarded.ip,
        request_time_epoch: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0)),
        ..Default::default()
    };
    let matched = match runtime.table().route(host, parts.method.as_str(), path) {
        RouteOutcome::UnknownApiOrStage => return gateway_response::forbidden(),
        RouteOutcome::NoRoute { stage } => {
            trace.api_id = stage.api_id();
            trace.stage = stage.stage_name();
            context.api_id = stage.api_id();
            context.stage = stage.stage_name();
            context.account_id = &stage.snapshot().deployment.account_id;
            context.deployment_id = &stage.snapshot().deployment.deployment_id;
            let view = RequestView {
                headers: &parts.headers,
                raw_query: parts.uri.query(),
                path_parameters: None,
                context,
            };
            return render(
                runtime.stage(stage).map(|s| s.gateway_responses()),
                &GatewayError::new(ResponseType::MissingAuthenticationToken),
                &view,
            );
        }
        RouteOutcome::Matched(matched) => matched,
    };
    let stage = matched.stage;
    let deployment = &stage.snapshot().deployment;
    trace.api_id = stage.api_id();
    trace.stage = stage.stage_name();
    trace.resource = &matched.route.path;
    context.api_id = stage.api_id();
    context.stage = stage.stage_name();
    context.account_id = &deployment.account_id;
    context.deployment_id = &deployment.deployment_id;
    context.resource_id = &matched.route.resource_id;
    context.resource_path = &matched.route.path;
    let view = RequestView {
        headers: &parts.headers,
        raw_query: parts.uri.query(),
        path_parameters: Some(&matched.path_parameters),
        context,
    };
    let responses = runtime.stage(stage).map(|s| s.gateway_responses());
    // AWS_IAM signatures cover the body: on those routes it is read first.
    let mut prechecked = None;
    if let Some(auth) = runtime
        .stage(stage)
        .map(|s| s.auth())
        .filter(|a| a.needs_body(matched.route_index))
    {
        prechecked = match auth.precheck_signature(&parts, runtime.principals()) {
            Ok(p) => Some(Box::new(p)),
            Err(error) => return render(responses, &error, &view),
        };
        body = match body.read(&parts.headers).await {
            Ok(bytes) => RequestBody::Read(bytes),
            Err(error) => return render(responses, &error, &view),
        };
    }
    // Resource policy, IAM and authorizers (crate::auth); their output rides on the view.
    // First, as on AWS: callers that may not call never spend a tenant's quota.
    let guarded = runtime
        .stage(stage)
        .map(|s| s.auth())
        .filter(|auth| !auth.is_open(matched.route_index));
    let authorized = match guarded {
        None => crate::auth::Authorized::default(),
        Some(auth) => {
            let signed = crate::auth::Signed {
                parts: &parts,
                body: body.read_so_far(),
                principals: runtime.principals(),
                prechecked,
            };
            // Boxed: authorizers' futures (Lambda calls, JWKS fetches) are
            // large, and an open route should not carry their size in its own.
            match Box::pin(auth.authorize(matched.route_index, &view, signed)).await {
                Ok(authorized) => authorized,
                Err(error) => return render(responses, &error, &view),
            }
        }
    };
    let view = authorized.attach(view);
    // API key, usage plan, quota and throttles (crate::throttle), before the body is read.
    let limits = stage.runtime().limits();
    let api_key = if !limits.key_required(matched.route_index) {
        None
    } else if limits.key_from_authorizer {
        view.context.usage_identifier_key
    } else {
        parts.headers.get("x-api-key").and_then(|v| v.to_str().ok())
    };
    let admitted_key = match shared.runtime.throttle() {
        Some(throttle) => match throttle
            .check_at(limits, matched.route_index, api_key, ids.arrived)
            .await
        {
            Ok(key) => key,
            Err(rejection) => {
                return render(responses, &crate::throttle::gateway_error(rejection), &view);
            }
        },
        None => None,
    };
    let mut view = view;
    if let Some(id) = admitted_key.as_deref() {
        view.context.api_key_id = Some(id);
        view.context.api_key = api_key;
    }
    let body = match body.read(&parts.headers).await {
        Ok(body) => body,
        Err(error) => return render(responses, &error, &view),
    };
    // Request validation (crate::validation): required parameters, then the body's model.
    if let Some(Err(error)) = runtime
        .stage(stage)
        .map(|s| s.validate(matched.route_index, &view, &body))
    {
        return render(responses, &error, &view);
    }
    let Some(integration) = runtime.integration(&matched) else {
        tracing::error!(
            api_id = trace.api_id,
            stage = trace.stage,
            "matched route without a compiled integration"
        );
        return render(
            responses,
            &GatewayError::new(ResponseType::ApiConfigurationError),
            &view,
        );
    };
    let call = Call {
        view: &view,
        method: &parts.method,
        headers: &parts.headers,
        body,
        client: &shared.client,
        caller: &peer.forwarded,
        timer: &peer.call_timer,
    };
    match integration
        .invoke(call, &mut trace.integration_latency)
        .await
    {
        Ok(response) => response,
        Err(error) => render(responses, &error, &view),
    }
}

fn render(
    responses: Option<&GatewayResponses>,
    error: &GatewayError,
    view: &RequestView<'_>,
) -> Response<Body> {
    match responses {
        Some(r) => r.render(error, Some(view)),
        None => GatewayResponses::default().render(error, Some(view)),
    }
}

/// A request body not read yet (hyper streams it), or read already (the
/// lean server's small bodies; AWS_IAM routes).
enum RequestBody {
    Unread(Incoming),
    Read(Bytes),
}

impl RequestBody {
    async fn read(self, headers: &HeaderMap) -> Result<Bytes, GatewayError> {
        match self {
            Self::Unread(incoming) => read_body(headers, incoming).await,
            Self::Read(bytes) => Ok(bytes),
        }
    }

    fn read_so_far(&self) -> &[u8] {
        match self {
            Self::Unread(_) => &[],
            Self::Read(bytes) => bytes,
        }
    }
}

/// The whole request body, within [`MAX_BODY_BYTES`]: a declared length
/// over it is refused before reading; an undeclared one is cut off at it.
async fn read_body(headers: &HeaderMap, incoming: Incoming) -> Result<Bytes, GatewayError> {
    if hyper::body::Body::is_end_stream(&incoming) {
        return Ok(Bytes::new());
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(GatewayError::new(ResponseType::RequestTooLarge));
    }
    match Limited::new(incoming, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::new(ResponseType::RequestTooLarge))
        }
        Err(e) => {
            tracing::debug!(error = %e, "could not read the request body");
            Err(GatewayError::new(ResponseType::BadRequestBody))
        }
    }
}

/// Header bytes as AWS counts them: names, values, `: ` and CRLF.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

fn headers_too_large() -> Response<Body> {
    let mut response = Response::new(body::full(
        r#"{"message":"Request Header Fields Too Large"}"#,
    ));
    *response.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

thread_local! {
    /// Request ids need to be unique, not unpredictable: a small fast
    /// generator per thread, seeded from the OS once. (`Uuid::new_v4` would
    /// make a `getrandom` syscall per request, `thread_rng` run ChaCha.)
    static IDS: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(rand::thread_rng()).unwrap_or_else(|_| SmallRng::seed_from_u64(rand::random())));
}

fn random<T>() -> T
where
    rand::distributions::Standard: rand::distributions::Distribution<T>,
{
    IDS.with_borrow_mut(|rng| rng.r#gen())
}

/// A random (v4) UUID.
fn request_id() -> uuid::Uuid {
    // One u128 draw: an array would be drawn byte by byte.
    uuid::Builder::from_random_bytes(random::<u128>().to_le_bytes()).into_uuid()
}

/// A request's ids as the answer's two fields, encoded once:
/// `x-amzn-requestid: {uuid}\r\nx-amz-apigw-id: {extended id}\r\n`. The lean
/// server writes these lines after the answer's own fields; hyper's answers
/// get them as header-map entries.
struct RequestIds {
    lines: [u8; RequestIds::LEN],
}

impl RequestIds {
    const REQUEST_AT: usize = "x-amzn-requestid: ".len();
    const EXTENDED_AT: usize = Self::REQUEST_AT + 36 + "\r\nx-amz-apigw-id: ".len();
    const LEN: usize = Self::EXTENDED_AT + 16 + 2;

    fn new() -> Self {
        let mut lines = [0u8; Self::LEN];
        lines[..Self::REQUEST_AT].copy_from_slice(b"x-amzn-requestid: ");
        request_id()
            .hyphenated()
            .encode_lower(&mut lines[Self::REQUEST_AT..Self::REQUEST_AT + 36]);
        lines[Self::REQUEST_AT + 36..Self::EXTENDED_AT].copy_from_slice(b"\r\nx-amz-apigw-id: ");
        lines[Self::EXTENDED_AT..Self::EXTENDED_AT + 16].copy_from_slice(&extended_request_id().0);
        lines[Self::LEN - 2..].copy_from_slice(b"\r\n");
        Self { lines }
    }

    fn request_id(&self) -> &str {
        std::str::from_utf8(&self.lines[Self::REQUEST_AT..Self::REQUEST_AT + 36])
            .expect("a formatted UUID is ASCII")
    }

    fn extended_id(&self) -> &str {
        std::str::from_utf8(&self.lines[Self::EXTENDED_AT..Self::EXTENDED_AT + 16])
            .expect("base64 characters are ASCII")
    }

    /// The answer's fields, for the lean server: any of these names the
    /// answer has (a backend's) give way to them.
    fn field_lines(&self, response: &mut Response<Body>) -> &[u8] {
        let headers = response.headers_mut();
        headers.remove(X_AMZN_REQUEST_ID);
        headers.remove(X_AMZ_APIGW_ID);
        &self.lines
    }

    /// The same as header-map entries, for hyper.
    fn insert_into(&self, response: &mut Response<Body>) {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(self.request_id()) {
            headers.insert(X_AMZN_REQUEST_ID, v);
        }
        if let Ok(v) = HeaderValue::from_str(self.extended_id()) {
            headers.insert(X_AMZ_APIGW_ID, v);
        }
    }
}

/// AWS's `extendedRequestId` shape: 15 base64 characters and `=`, on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ExtendedId([u8; 16]);

fn extended_request_id() -> ExtendedId {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // 15 × 6 bits out of one 128-bit draw.
    let mut bits: u128 = random();
    let mut id = [b'='; 16];
    for byte in &mut id[..15] {
        *byte = ALPHABET[(bits & 63) as usize];
        bits >>= 6;
    }
    ExtendedId(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_ids_look_like_aws() {
        let id = extended_request_id();
        assert_eq!(id.0[15], b'=');
        assert!(
            id.0[..15]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        );
        assert_ne!(id, extended_request_id());
    }

    #[test]
    fn request_ids_make_the_answers_two_fields() {
        let ids = RequestIds::new();
        let lines = std::str::from_utf8(&ids.lines).unwrap();
        assert_eq!(
            lines,
            format!(
                "x-amzn-requestid: {}\r\nx-amz-apigw-id: {}\r\n",
                ids.request_id(),
                ids.extended_id()
            )
        );
        assert_eq!(
            uuid::Uuid::parse_str(ids.request_id())
                .unwrap()
                .get_version_num(),
            4
        );
        assert!(ids.extended_id().ends_with('='));
        let mut response = Response::new(body::full(""));
        response.headers_mut().insert(
            X_AMZN_REQUEST_ID,
            HeaderValue::from_static("from-a-backend"),
        );
        assert_eq!(ids.field_lines(&mut response), &ids.lines[..]);
        assert!(
            response.headers().get(X_AMZN_REQUEST_ID).is_none(),
            "ours replace a backend's"
        );
        ids.insert_into(&mut response);
        assert_eq!(response.headers()[X_AMZN_REQUEST_ID], ids.request_id());
        assert_eq!(response.headers()[X_AMZ_APIGW_ID], ids.extended_id());
    }

    #[test]
    fn request_ids_are_v4_uuids() {
        let id = request_id();
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(id, request_id());
    }

    #[test]
    fn header_bytes_counts_line_overhead() {
        let mut headers = HeaderMap::new();
        headers.insert("ab", HeaderValue::from_static("cd"));
        assert_eq!(header_bytes(&headers), 8);
    }
}
