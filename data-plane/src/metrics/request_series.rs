//! Per-request metrics kept per thread: each proxy worker writes its own
//! cells (no lock, no cache line shared with the other workers on the hot
//! path), and a scrape sums every thread's cells by label set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

/// Latency bucket bounds in seconds: 1 ms … ~33 s (covers the 29 s
/// integration timeout), doubling; a last bucket takes the rest.
const BOUNDS: [f64; 16] = {
    let mut bounds = [0.001; 16];
    let mut i = 1;
    while i < bounds.len() {
        bounds[i] = bounds[i - 1] * 2.0;
        i += 1;
    }
    bounds
};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub api_id: String,
    pub stage: String,
    /// The resource path template, never the raw path (bounded cardinality).
    pub resource: String,
    pub method: String,
    pub status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    api_id: String,
    stage: String,
}

/// One thread's numbers for one label set. Only that thread writes them,
/// so an increment is a load and a store, not a locked instruction.
#[derive(Debug, Default)]
pub(crate) struct Cells {
    requests: AtomicU64,
    latency: HistogramCells,
    integration_latency: HistogramCells,
}

impl Cells {
    pub fn record(&self, latency: Duration, integration_latency: Option<Duration>) {
        bump(&self.requests, 1);
        self.latency.observe(latency);
        if let Some(integration) = integration_latency {
            self.integration_latency.observe(integration);
        }
    }
}

#[derive(Debug, Default)]
struct HistogramCells {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl HistogramCells {
    fn observe(&self, d: Duration) {
        let seconds = d.as_secs_f64();
        let at = BOUNDS.partition_point(|&bound| bound < seconds);
        bump(&self.buckets[at], 1);
        bump(&self.count, 1);
        bump(
            &self.sum_nanos,
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        );
    }
}

/// Single-writer increment.
fn bump(cell: &AtomicU64, by: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// Every thread's cells, by label set.
#[derive(Debug, Default)]
pub(crate) struct RequestSeries {
    cells: Mutex<HashMap<(ThreadId, RequestLabels), Arc<Cells>>>,
}

impl RequestSeries {
    /// The calling thread's cells for `labels`, made on first use. The slow
    /// path: callers keep the handle.
    pub fn cells(&self, labels: RequestLabels) -> Arc<Cells> {
        let thread = std::thread::current().id();
        let mut all = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        all.entry((thread, labels)).or_default().clone()
    }
}

#[cfg(test)]
impl RequestSeries {
    pub fn len(&self) -> usize {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Sums of every thread's cells, for one scrape.
#[derive(Default)]
struct Summed {
    count: u64,
    sum_nanos: u64,
    buckets: [u64; BOUNDS.len() + 1],
}

impl Summed {
    fn add(&mut self, cells: &HistogramCells) {
        self.count += cells.count.load(Ordering::Relaxed);
        self.sum_nanos += cells.sum_nanos.load(Ordering::Relaxed);
        for (sum, cell) in self.buckets.iter_mut().zip(&cells.buckets) {
            *sum += cell.load(Ordering::Relaxed);
        }
    }

    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    ) -> std::fmt::Result {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &n)| (BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), n))
            .collect();
        let sum = self.sum_nanos as f64 / 1e9;
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            sum, self.count, &buckets, None,
        )
    }
}

impl Collector for RequestSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let mut requests: HashMap<RequestLabels, u64> = HashMap::new();
        let mut latency: HashMap<StageLabels, Summed> = HashMap::new();
        let mut integration_latency: HashMap<StageLabels, Summed> = HashMap::new();
        {
            let all = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            for ((_, labels), cells) in all.iter() {
                *requests.entry(labels.clone()).or_default() +=
                    cells.requests.load(Ordering::Relaxed);
                let stage = StageLabels {
                    api_id: labels.api_id.clone(),
                    stage: labels.stage.clone(),
                };
                latency
                    .entry(stage.clone())
                    .or_default()
                    .add(&cells.latency);
                integration_latency
                    .entry(stage)
                    .or_default()
                    .add(&cells.integration_latency);
            }
        }
        let mut family = encoder.encode_descriptor(
            "apigw_requests",
            "Requests answered, by API, stage, resource, method and status class.",
            None,
            MetricType::Counter,
        )?;
        for (labels, n) in &requests {
            ConstCounter::new(*n).encode(family.encode_family(labels)?)?;
        }
        for (name, help, sums) in [
            (
                "apigw_latency_seconds",
                "Time from request received to response headers sent.",
                &latency,
            ),
            (
                "apigw_integration_latency_seconds",
                "Time from backend request sent to backend response headers received.",
                &integration_latency,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (stage, summed) in sums {
                summed.encode(&mut family.encode_family(stage)?)?;
            }
        }
        Ok(())
    }
}
