//! The node's Prometheus metrics — CloudWatch's Count, 4XXError, 5XXError,
//! Latency and IntegrationLatency in spirit — and the small HTTP endpoint
//! that exposes them (`GET /metrics`) beside a liveness probe (`GET /healthz`).

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::body::{self, Body};
use crate::listen::{accept, stop_flag, stopped};

mod request_series;

use request_series::{Cells, RequestLabels, RequestSeries};

#[derive(Debug)]
struct Inner {
    registry: Registry,
    /// Requests, latency and integration latency, kept per thread.
    series: Arc<RequestSeries>,
    config_version: Gauge,
    throttle: crate::throttle::ThrottleMetrics,
}

/// Cheap to clone; all clones share one registry.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One answered request, as metrics see it.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    pub api_id: &'a str,
    pub stage: &'a str,
    pub resource: &'a str,
    pub method: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub integration_latency: Option<Duration>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let series = Arc::new(RequestSeries::default());
        // apigw_requests, apigw_latency_seconds, apigw_integration_latency_seconds.
        registry.register_collector(Box::new(series.clone()));
        let config_version = Gauge::default();
        registry.register(
            "apigw_config_version",
            "Version of the configuration in service",
            config_version.clone(),
        );
        let throttle = crate::throttle::ThrottleMetrics::register(&mut registry);
        Self(Arc::new(Inner {
            registry,
            throttle,
            series,
            config_version,
        }))
    }

    pub fn record(&self, r: RequestRecord<'_>) {
        let status_class = match r.status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "1xx",
        };
        SERIES.with_borrow_mut(|cache| {
            let series = match cache.iter().position(|c| c.is(&self.0, &r, status_class)) {
                Some(i) => &cache[i],
                None => {
                    if cache.len() == SERIES_CACHED {
                        cache.remove(0);
                    }
                    cache.push(self.series(&r, status_class));
                    &cache[cache.len() - 1]
                }
            };
            series.cells.record(r.latency, r.integration_latency);
        });
    }

    /// Looks this thread's cells up (creating them) the slow way: owned
    /// labels, a lock.
    fn series(&self, r: &RequestRecord<'_>, status_class: &'static str) -> Series {
        let cells = self.0.series.cells(RequestLabels {
            api_id: r.api_id.to_owned(),
            stage: r.stage.to_owned(),
            resource: r.resource.to_owned(),
            method: r.method.to_owned(),
            status_class,
        });
        Series {
            owner: Arc::downgrade(&self.0),
            api_id: r.api_id.into(),
            stage: r.stage.into(),
            resource: r.resource.into(),
            method: r.method.into(),
            status_class,
            cells,
        }
    }

    /// The throttle's Redis-fallback metrics, registered with the others.
    pub fn throttle(&self) -> &crate::throttle::ThrottleMetrics {
        &self.0.throttle
    }

    pub fn set_config_version(&self, version: u64) {
        self.0
            .config_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    /// The text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

/// How many label sets each thread keeps handles for.
const SERIES_CACHED: usize = 64;

thread_local! {
    /// Recently recorded series: a request whose labels are here touches only
    /// this thread's cells — no label strings built, no lock, no hashing.
    static SERIES: RefCell<Vec<Series>> = const { RefCell::new(Vec::new()) };
}

/// One label set's cells on this thread.
struct Series {
    /// The [`Metrics`] they belong to; a `Weak` keeps the address unique.
    owner: Weak<Inner>,
    api_id: Box<str>,
    stage: Box<str>,
    resource: Box<str>,
    method: Box<str>,
    status_class: &'static str,
    cells: Arc<Cells>,
}

impl Series {
    fn is(&self, owner: &Arc<Inner>, r: &RequestRecord<'_>, status_class: &str) -> bool {
        std::ptr::eq(self.owner.as_ptr(), Arc::as_ptr(owner))
            && self.status_class == status_class
            && *self.resource == *r.resource
            && *self.method == *r.method
            && *self.stage == *r.stage
            && *self.api_id == *r.api_id
    }
}

/// Serves `GET /metrics` and `GET /healthz` until `shutdown` completes.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop_rx = stop_flag(shutdown);
    let mut stop = stop_rx.clone();
    while let Some((stream, _)) = accept(&listener, &mut stop, "metrics").await {
        let metrics = metrics.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(answer(&metrics, &req)) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    Ok(())
}

fn answer(metrics: &Metrics, req: &Request<Incoming>) -> Response<Body> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_encodes() {
        let metrics = Metrics::new();
        metrics.record(RequestRecord {
            api_id: "a1",
            stage: "prod",
            resource: "/pets/{id}",
            method: "GET",
            status: 404,
            latency: Duration::from_millis(3),
            integration_latency: Some(Duration::from_millis(2)),
        });
        metrics.set_config_version(7);
        let text = metrics.encode();
        assert!(
            text.contains(r#"apigw_requests_total{api_id="a1",stage="prod",resource="/pets/{id}",method="GET",status_class="4xx"} 1"#),
            "{text}"
        );
        assert!(text.contains("apigw_latency_seconds_count{api_id=\"a1\",stage=\"prod\"} 1"));
        assert!(text.contains("apigw_integration_latency_seconds_count"));
        assert!(text.contains("apigw_config_version 7"));
    }

    #[test]
    fn threads_keep_their_own_cells_and_a_scrape_sums_them() {
        let metrics = Metrics::new();
        let record = |m: &Metrics| {
            for _ in 0..5 {
                m.record(RequestRecord {
                    api_id: "a1",
                    stage: "prod",
                    resource: "/x",
                    method: "GET",
                    status: 200,
                    latency: Duration::from_millis(3),
                    integration_latency: Some(Duration::from_millis(2)),
                });
            }
        };
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| record(&metrics));
            }
        });
        record(&metrics);
        let text = metrics.encode();
        assert!(
            text.contains(r#"apigw_requests_total{api_id="a1",stage="prod",resource="/x",method="GET",status_class="2xx"} 20"#),
            "{text}"
        );
        // 3 ms: above the 2 ms bound, within 4 ms; cumulative counts.
        let stage = r#"api_id="a1",stage="prod""#;
        for (le, n) in [("0.002", 0), ("0.004", 20), ("+Inf", 20)] {
            let line = format!(r#"apigw_latency_seconds_bucket{{le="{le}",{stage}}} {n}"#);
            assert!(text.contains(&line), "{line}\n{text}");
        }
        assert!(text.contains(&format!("apigw_latency_seconds_count{{{stage}}} 20")));
        assert!(
            text.contains(&format!("apigw_latency_seconds_sum{{{stage}}} 0.06")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "apigw_integration_latency_seconds_count{{{stage}}} 20"
        )));
        // One series per thread and label set, however often it records.
        assert_eq!(metrics.0.series.len(), 4);
    }

    #[test]
    fn cached_series_keep_counting_per_registry() {
        let record = |m: &Metrics, status| {
            m.record(RequestRecord {
                api_id: "a1",
                stage: "prod",
                resource: "/x",
                method: "GET",
                status,
                latency: Duration::from_millis(1),
                integration_latency: None,
            });
        };
        let (one, two) = (Metrics::new(), Metrics::new());
        for _ in 0..3 {
            record(&one, 200);
        }
        record(&one, 500);
        record(&two, 200);
        let series = r#"apigw_requests_total{api_id="a1",stage="prod",resource="/x",method="GET",status_class="#;
        let text = one.encode();
        assert!(text.contains(&format!(r#"{series}"2xx"}} 3"#)), "{text}");
        assert!(text.contains(&format!(r#"{series}"5xx"}} 1"#)), "{text}");
        assert!(text.contains("apigw_latency_seconds_count{api_id=\"a1\",stage=\"prod\"} 4"));
        let text = two.encode();
        assert!(text.contains(&format!(r#"{series}"2xx"}} 1"#)), "{text}");
    }
}
