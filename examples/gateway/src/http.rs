//! What every HTTP surface shares: API-key authentication, problem bodies, the
//! offline documentation page, `/metrics`, body limits and serving.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use subtle::ConstantTimeEq;

/// The interactive documentation page: plain HTML and JavaScript that fetch the
/// surface's own `openapi.json` and render it with try-it-out forms. No CDN.
pub const DOCS_HTML: &str = include_str!("docs.html");

/// Accepted API keys; compared in constant time.
#[derive(Clone, Default)]
pub struct ApiKeys(Arc<Vec<Vec<u8>>>);

impl ApiKeys {
    /// Builds the key set (empty strings are ignored).
    pub fn new(keys: impl IntoIterator<Item = String>) -> Self {
        ApiKeys(Arc::new(
            keys.into_iter()
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .map(String::into_bytes)
                .collect(),
        ))
    }

    /// Whether `presented` equals one of the keys. Every key is compared (no early
    /// exit) so the time taken does not reveal which key, or how much of it, matched.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let mut ok = subtle::Choice::from(0);
        for k in self.0.iter() {
            ok |= k.as_slice().ct_eq(presented);
        }
        bool::from(ok)
    }
}

/// How a surface words its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// A FHIR `OperationOutcome` (the FHIR surface).
    Fhir,
    /// An RFC 9457 problem document (`application/problem+json`).
    Problem,
}

/// An error response in the surface's style.
pub fn error_response(
    style: ErrorStyle,
    status: StatusCode,
    code: &'static str,
    detail: &str,
) -> Response {
    match style {
        ErrorStyle::Fhir => {
            use xenrad_fhir_model::outcome::{OperationOutcome, Severity};
            let body = OperationOutcome::single(Severity::Error, code, detail).to_json();
            (
                status,
                [(header::CONTENT_TYPE, "application/fhir+json")],
                body,
            )
                .into_response()
        }
        ErrorStyle::Problem => {
            let body = serde_json::json!({
                "type": "about:blank",
                "title": status.canonical_reason().unwrap_or("error"),
                "status": status.as_u16(),
                "code": code,
                "detail": detail,
            });
            (
                status,
                [(header::CONTENT_TYPE, "application/problem+json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// Per-surface state for the shared middleware.
#[derive(Clone)]
pub struct SurfaceState {
    /// Surface name, the `surface` label in metrics.
    pub name: &'static str,
    /// Accepted keys.
    pub keys: ApiKeys,
    /// Error style.
    pub style: ErrorStyle,
    /// Paths served without a key.
    pub open_paths: &'static [&'static str],
    /// The metrics registry.
    pub metrics: Metrics,
}

impl SurfaceState {
    /// A surface of `gw` whose open paths are the documentation (plus `extra_open`).
    pub fn of(
        gw: &super::Gateway,
        name: &'static str,
        style: ErrorStyle,
        open_paths: &'static [&'static str],
    ) -> Self {
        SurfaceState {
            name,
            keys: gw.keys.clone(),
            style,
            open_paths,
            metrics: gw.metrics.clone(),
        }
    }
}

/// Readiness path every surface serves without a key: `200 ok` once the surface is
/// served (load balancers and the fault campaigns poll it).
pub const HEALTH_PATH: &str = "/healthz";

/// Paths every surface serves without a key.
pub const DOC_PATHS: &[&str] = &["/api/documentation", "/api/documentation/openapi.json"];

async fn auth_and_measure(State(s): State<SurfaceState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let open = req.uri().path() == HEALTH_PATH || s.open_paths.contains(&req.uri().path());
    let response = if open || key_ok(&s.keys, req.headers()) {
        next.run(req).await
    } else {
        let missing = !req.headers().contains_key("x-api-key");
        let detail = if missing {
            "missing X-API-Key header"
        } else {
            "X-API-Key is not valid"
        };
        let mut r = error_response(s.style, StatusCode::UNAUTHORIZED, "security", detail);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("ApiKey header=\"X-API-Key\""),
        );
        r
    };
    s.metrics.observe_http(
        s.name,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

fn key_ok(keys: &ApiKeys, headers: &HeaderMap) -> bool {
    headers
        .get("x-api-key")
        .is_some_and(|v| keys.accepts(v.as_bytes()))
}

/// Wraps a surface's router with the docs page, its OpenAPI document, `/metrics`,
/// authentication, metrics and a body limit.
pub fn finish_surface(
    router: Router,
    state: SurfaceState,
    openapi_json: String,
    max_body: usize,
) -> Router {
    let style = state.style;
    let metrics = state.metrics.clone();
    let openapi = Arc::new(openapi_json);
    router
        .route(
            HEALTH_PATH,
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "ok\n") }),
        )
        .route(
            "/api/documentation",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    DOCS_HTML,
                )
            }),
        )
        .route(
            "/api/documentation/openapi.json",
            get(move || {
                let o = openapi.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], (*o).clone()) }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        m.render(),
                    )
                }
            }),
        )
        .fallback(move || async move {
            error_response(style, StatusCode::NOT_FOUND, "not-found", "no such path")
        })
        .layer(middleware::from_fn_with_state(state, auth_and_measure))
        .layer(DefaultBodyLimit::max(max_body))
}

/// Response with a body and content type.
pub fn typed(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

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
        let h = m
            .latency
            .entry((surface.to_owned(), route.to_owned()))
            .or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole_values() {
        let k = ApiKeys::new(["secret-one".to_owned(), "second".to_owned(), String::new()]);
        assert!(k.accepts(b"secret-one"));
        assert!(k.accepts(b"second"));
        assert!(!k.accepts(b"secret"));
        assert!(!k.accepts(b"secret-one "));
        assert!(!k.accepts(b""));
    }

    #[test]
    fn metrics_render_prometheus_text() {
        let m = Metrics::default();
        m.observe_http(
            "fhir",
            "/fhir/metadata",
            200,
            std::time::Duration::from_millis(2),
        );
        m.ingest("hl7v2", "stored", 120);
        let t = m.render();
        assert!(t.contains(
            "xenrad_http_requests_total{surface=\"fhir\",route=\"/fhir/metadata\",status=\"200\"} 1"
        ));
        assert!(t.contains("le=\"0.0025\"} 1"));
        assert!(t.contains("le=\"0.001\"} 0"));
        assert!(t.contains("xenrad_ingest_total{protocol=\"hl7v2\",outcome=\"stored\"} 1"));
        assert!(t.contains("xenrad_ingest_bytes_total 120"));
    }
}
