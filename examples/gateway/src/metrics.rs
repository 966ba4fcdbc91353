//! The gateway's Prometheus registry: HTTP requests and latency per surface and route, ingest
//! outcomes per protocol. Every layer that counts (the ingest use cases, the surfaces) shares it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct MetricsInner {
    http: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    ingest: BTreeMap<(String, String), u64>,
    ingest_latency: BTreeMap<String, Histogram>,
    /// Values read at render time: (metric, help, type, labels, reader).
    sampled: Vec<Sampled>,
}

type Sampled = (
    &'static str,
    &'static str,
    &'static str,
    String,
    Box<dyn Fn() -> u64 + Send + Sync>,
);

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// A small Prometheus registry: HTTP requests and latency per surface and route,
/// ingest outcomes per protocol, bytes received.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Mutex<MetricsInner>>,
    bytes: Arc<AtomicU64>,
}

impl Metrics {
    /// Records one HTTP request.
    pub fn observe_http(&self, surface: &str, route: &str, status: u16, took: std::time::Duration) {
        let secs = took.as_secs_f64();
        let mut m = self.inner.lock().expect("metrics");
        *m.http
            .entry((surface.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        m.latency
            .entry((surface.to_owned(), route.to_owned()))
            .or_default()
            .observe(secs);
    }

    /// Records how long one ingest took at a door (`hl7`, `mpps`, `dicomweb`: the HTTP
    /// request; `mllp`: parse, durable store and ACK; `dicom`: indexing and the durable
    /// write of a stored instance).
    pub fn observe_ingest(&self, door: &str, took: std::time::Duration) {
        let mut m = self.inner.lock().expect("metrics");
        m.ingest_latency
            .entry(door.to_owned())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Registers a value read when the registry is rendered: `metric{labels}` (labels as
    /// written, e.g. `door="fhir"`) of type `kind` (`gauge` or `counter`). Register the
    /// series of one metric one after the other.
    pub fn sample(
        &self,
        metric: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: &str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        let mut m = self.inner.lock().expect("metrics");
        m.sampled
            .push((metric, help, kind, labels.to_owned(), Box::new(read)));
    }

    /// Records one ingest outcome (`stored`, `duplicate`, `rejected`) of a protocol.
    pub fn ingest(&self, protocol: &str, outcome: &str, bytes: usize) {
        // One structured line per message or instance; never its content (patient data).
        match outcome {
            "rejected" | "failed" => {
                tracing::warn!(target: "xenrad::ingest", protocol, outcome, bytes);
            }
            _ => tracing::info!(target: "xenrad::ingest", protocol, outcome, bytes),
        }
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let mut m = self.inner.lock().expect("metrics");
        *m.ingest
            .entry((protocol.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    /// The registry in Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let m = self.inner.lock().expect("metrics");
        let mut out = String::new();
        out.push_str(
            "# HELP xenrad_http_requests_total HTTP requests by surface, route and status.\n",
        );
        out.push_str("# TYPE xenrad_http_requests_total counter\n");
        for ((s, r, st), n) in &m.http {
            let _ = writeln!(
                out,
                "xenrad_http_requests_total{{surface=\"{s}\",route=\"{r}\",status=\"{st}\"}} {n}"
            );
        }
        out.push_str("# HELP xenrad_http_request_seconds HTTP request latency.\n");
        out.push_str("# TYPE xenrad_http_request_seconds histogram\n");
        for ((s, r), h) in &m.latency {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "xenrad_http_request_seconds_bucket{{surface=\"{s}\",route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "xenrad_http_request_seconds_bucket{{surface=\"{s}\",route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "xenrad_http_request_seconds_sum{{surface=\"{s}\",route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "xenrad_http_request_seconds_count{{surface=\"{s}\",route=\"{r}\"}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP xenrad_ingest_total Ingested messages and instances by protocol and outcome.\n",
        );
        out.push_str("# TYPE xenrad_ingest_total counter\n");
        for ((p, o), n) in &m.ingest {
            let _ = writeln!(
                out,
                "xenrad_ingest_total{{protocol=\"{p}\",outcome=\"{o}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP xenrad_ingest_seconds Time to ingest one message or instance, per door.\n",
        );
        out.push_str("# TYPE xenrad_ingest_seconds histogram\n");
        for (d, h) in &m.ingest_latency {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "xenrad_ingest_seconds_bucket{{door=\"{d}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "xenrad_ingest_seconds_bucket{{door=\"{d}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "xenrad_ingest_seconds_sum{{door=\"{d}\"}} {}", h.sum);
            let _ = writeln!(
                out,
                "xenrad_ingest_seconds_count{{door=\"{d}\"}} {}",
                h.count
            );
        }
        let mut last = "";
        for (metric, help, kind, labels, read) in &m.sampled {
            if *metric != last {
                let _ = writeln!(out, "# HELP {metric} {help}");
                let _ = writeln!(out, "# TYPE {metric} {kind}");
                last = metric;
            }
            let _ = writeln!(out, "{metric}{{{labels}}} {}", read());
        }
        out.push_str("# HELP xenrad_ingest_bytes_total Bytes of ingested payloads.\n");
        out.push_str("# TYPE xenrad_ingest_bytes_total counter\n");
        let _ = writeln!(
            out,
            "xenrad_ingest_bytes_total {}",
            self.bytes.load(Ordering::Relaxed)
        );
        out
    }
}
