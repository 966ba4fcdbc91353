//! What every HTTP surface shares: API-key authentication, problem bodies, the
//! offline documentation page, `/metrics`, body limits and serving.

use crate::metrics::Metrics;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::time::Instant;

/// The interactive documentation page: plain HTML and JavaScript that fetch the
/// surface's own `openapi.json` and render it with try-it-out forms. No CDN.
pub const DOCS_HTML: &str = include_str!("docs.html");

/// The Content-Security-Policy of the documentation page: nothing but its own inline
/// script and style (by SHA-256 hash, so no other inline code runs) and requests to its
/// own origin (the OpenAPI document and the try-it-out calls).
fn docs_csp() -> &'static HeaderValue {
    static CSP: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
        let hash = |open: &str, close: &str| {
            let body = DOCS_HTML
                .split_once(open)
                .and_then(|(_, rest)| rest.split_once(close))
                .map_or("", |(b, _)| b);
            let d = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
            format!("'sha256-{}'", base64(d.as_ref()))
        };
        let csp = format!(
            "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash("<script>", "</script>"),
            hash("<style>", "</style>")
        );
        HeaderValue::from_str(&csp)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    });
    &CSP
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Security headers on every HTTP response of every surface (set where the connection is
/// served, so refusals, timeouts and 404s carry them too):
///
/// - `Strict-Transport-Security: max-age=31536000` when the listener serves TLS;
/// - `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
///   `X-Frame-Options: DENY`;
/// - `Content-Security-Policy`: the documentation page's own (its inline script and style
///   by hash, same-origin requests); a handler's own policy (the operator console's pages:
///   scripts and styles from `'self'` only); `default-src 'none'; frame-ancestors 'none'` on
///   everything else, which is data, never a page;
/// - `Cache-Control: no-store` on everything but the documentation page and its OpenAPI
///   document: resources, ACKs, DICOM and search results carry PHI and must not be kept
///   by browsers or proxies (a handler's own Cache-Control is kept).
pub fn security_headers(h: &mut HeaderMap, path: &str, tls: bool) {
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let docs = path == "/api/documentation";
    if docs {
        h.insert(header::CONTENT_SECURITY_POLICY, docs_csp().clone());
    } else if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        let v = if docs || DOC_PATHS.contains(&path) {
            "no-cache"
        } else {
            "no-store"
        };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(v));
    }
}

pub use super::keys::{Access, ApiKeys, Caller};

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

/// The client's address, put into every request's extensions where the connection is
/// served.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Identifiers a handler reports for the audit trail (e.g. the HL7 message it stored), put
/// into its response's extensions.
#[derive(Clone, Debug, Default)]
pub struct AuditEntities(pub Vec<crate::audit::Entity>);

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
    /// The audit trail.
    pub audit: crate::audit::Audit,
    /// The store, whose reachability `/readyz` reports.
    pub store: crate::store::Store,
}

impl SurfaceState {
    /// A surface of `gw` whose open paths are the documentation (plus `extra_open`).
    pub fn of(
        gw: &crate::Gateway,
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
            audit: gw.audit.clone(),
            store: gw.store.clone(),
        }
    }
}

/// Readiness path every surface serves without a key: `200 ok` once the surface is
/// served (load balancers and the fault campaigns poll it).
pub const HEALTH_PATH: &str = "/healthz";

/// Readiness path every surface serves without a key: `200 ready` when the store answers
/// a read (the database is reachable; the DICOM journal was replayed before any surface
/// was served), `503` otherwise. A load balancer sends traffic only to ready nodes; while a
/// node's database is unreachable it acknowledges nothing anyway.
pub const READY_PATH: &str = "/readyz";

/// Paths every surface serves without a key.
pub const DOC_PATHS: &[&str] = &["/api/documentation", "/api/documentation/openapi.json"];

/// The scope a request needs: its surface (`/dicomweb` on the FHIR origin is the
/// `dicomweb` surface) and read (GET, HEAD, a FHIR `_search` POST) or write.
pub fn scope_of(
    surface: &'static str,
    method: &axum::http::Method,
    path: &str,
) -> (&'static str, Access) {
    use axum::http::Method;
    let surface = if surface == "fhir" && (path == "/dicomweb" || path.starts_with("/dicomweb/")) {
        "dicomweb"
    } else {
        surface
    };
    let read = *method == Method::GET
        || *method == Method::HEAD
        || *method == Method::OPTIONS
        || (*method == Method::POST && path.ends_with("/_search"));
    (surface, if read { Access::Read } else { Access::Write })
}

async fn auth_and_measure(State(s): State<SurfaceState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let method = req.method().clone();
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let open = path == HEALTH_PATH || path == READY_PATH || s.open_paths.contains(&path.as_str());
    let caller = req
        .headers()
        .get("x-api-key")
        .and_then(|v| s.keys.check(v.as_bytes()));
    let (surface, access) = scope_of(s.name, &method, &path);
    let mut refused: Option<String> = None;
    // The audit trail is the gateway's own record: readable, never written through the API.
    let audit_write = s.name == "fhir"
        && access == Access::Write
        && (path == "/fhir/AuditEvent" || path.starts_with("/fhir/AuditEvent/"));
    let mut response = if audit_write && caller.is_some() {
        error_response(
            s.style,
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            "AuditEvent is written by the gateway only",
        )
    } else if open {
        next.run(req).await
    } else if let Some(caller) = &caller {
        // /metrics: any valid key.
        if path == "/metrics" || caller.scopes.allows(surface, access) {
            req.extensions_mut().insert(caller.clone());
            next.run(req).await
        } else {
            tracing::warn!(key = %caller.name, surface, access = access.as_str(), "API key lacks the scope");
            let detail = format!(
                "API key {:?} lacks the scope {surface}:{}",
                caller.name,
                access.as_str()
            );
            let r = error_response(s.style, StatusCode::FORBIDDEN, "forbidden", &detail);
            refused = Some(detail);
            r
        }
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
        refused = Some(detail.to_owned());
        r
    };
    s.metrics.observe_http(
        s.name,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    if !open && path != "/metrics" {
        let entities = response
            .extensions_mut()
            .remove::<AuditEntities>()
            .map(|e| e.0)
            .unwrap_or_default();
        if let Some(mut e) = audit_event(
            surface,
            &method,
            &path,
            query.as_deref(),
            refused,
            response.status(),
        ) {
            if e.kind == crate::audit::Kind::Ingest {
                s.metrics.observe_ingest(surface, started.elapsed());
            }
            e.who = caller.map(|c| (crate::audit::WHO_API_KEY, c.name.to_string()));
            e.address = peer;
            e.entities.extend(entities);
            s.audit.record(e);
        }
    }
    response
}

/// The audit event of one HTTP request (identifiers only: the path's resource or UIDs,
/// the names of search parameters, never their values or bodies).
fn audit_event(
    surface: &'static str,
    method: &axum::http::Method,
    path: &str,
    query: Option<&str>,
    refused: Option<String>,
    status: StatusCode,
) -> Option<crate::audit::Event> {
    use crate::audit::{Entity, Event, Kind};
    use axum::http::Method;
    if let Some(reason) = refused {
        let mut e = Event::new(Kind::Refused, surface);
        e.success = false;
        e.detail = Some(reason);
        return Some(e);
    }
    let read = *method == Method::GET || *method == Method::HEAD;
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let param_names = || {
        let mut names: Vec<&str> = query
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split('=').next())
            .filter(|k| !k.is_empty())
            .collect();
        names.sort_unstable();
        names.dedup();
        names.join(",")
    };
    let mut e = match (surface, segs.as_slice()) {
        ("fhir", ["fhir", "metadata"]) => return None,
        ("fhir", ["fhir", rt]) if read => {
            let mut e = Event::new(Kind::Search, surface);
            e.entities.push(Entity::Identifier(
                "urn:xenrad:fhir-search",
                format!("{rt}?{}", param_names()),
            ));
            e
        }
        ("fhir", ["fhir", rt, "_search"]) => {
            let mut e = Event::new(Kind::Search, surface);
            e.entities.push(Entity::Identifier(
                "urn:xenrad:fhir-search",
                format!("{rt}?{}", param_names()),
            ));
            e
        }
        ("fhir", ["fhir", rt, id, rest @ ..]) => {
            let mut e = Event::new(if read { Kind::Read } else { Kind::Write }, surface);
            if read && rest.first() == Some(&"_history") {
                e.subtype = Some("vread");
            }
            e.entities.push(Entity::Reference(format!("{rt}/{id}")));
            e
        }
        ("fhir", ["fhir"]) => Event::new(if read { Kind::Search } else { Kind::Write }, surface),
        ("dicomweb", segs) => {
            let kind = if !read {
                Kind::Ingest
            } else if matches!(segs.last(), Some(&("studies" | "series" | "instances"))) {
                Kind::Search
            } else {
                Kind::Read
            };
            let mut e = Event::new(kind, surface);
            for w in segs.windows(2) {
                if matches!(w[0], "studies" | "series" | "instances") {
                    e.entities.push(Entity::Identifier(
                        "urn:dicom:uid",
                        format!("urn:oid:{}", w[1]),
                    ));
                }
            }
            if kind == Kind::Search {
                e.entities.push(Entity::Identifier(
                    "urn:xenrad:dicomweb-search",
                    format!("{}?{}", segs.last().unwrap_or(&""), param_names()),
                ));
            }
            e
        }
        ("hl7", _) => Event::new(Kind::Ingest, surface),
        ("mpps", segs) => {
            let mut e = Event::new(if read { Kind::Read } else { Kind::Ingest }, surface);
            if let ["modality-performed-procedure-steps", uid, ..] = segs {
                e.entities.push(Entity::Identifier(
                    "urn:dicom:uid",
                    format!("urn:oid:{uid}"),
                ));
            }
            e
        }
        _ => Event::new(if read { Kind::Read } else { Kind::Write }, surface),
    };
    e.success = status.as_u16() < 400;
    if !e.success {
        e.detail = Some(format!("HTTP {}", status.as_u16()));
    }
    Some(e)
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
    let store = state.store.clone();
    let openapi = Arc::new(openapi_json);
    router
        .route(
            HEALTH_PATH,
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "ok\n") }),
        )
        .route(
            READY_PATH,
            get(move || {
                let store = store.clone();
                async move {
                    let probe = store.read(|tx| tx.count_messages("readyz")).await;
                    let (status, body) = match probe {
                        Ok(_) => (StatusCode::OK, "ready\n"),
                        Err(e) => {
                            tracing::warn!(error = %e, "not ready: the store cannot be read");
                            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n")
                        }
                    };
                    (status, [(header::CONTENT_TYPE, "text/plain")], body)
                }
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_the_docs_csp() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let csp = docs_csp().to_str().unwrap();
        // One hash each for the page's single inline script and style (44 characters of
        // base64 for SHA-256).
        for k in ["script-src 'sha256-", "style-src 'sha256-"] {
            let h = csp.split(k).nth(1).unwrap().split('\'').next().unwrap();
            assert_eq!(h.len(), 44, "{csp}");
        }
        assert_eq!(DOCS_HTML.matches("<script").count(), 1);
        assert_eq!(DOCS_HTML.matches("<style").count(), 1);
        let mut h = HeaderMap::new();
        security_headers(&mut h, "/fhir/Patient/1", true);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");
        let mut h = HeaderMap::new();
        security_headers(&mut h, "/api/documentation", false);
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        // A page's own policy is kept (the operator console); data still gets 'none'.
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'"),
        );
        security_headers(&mut h, "/messages", false);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], "default-src 'self'");
        let mut h = HeaderMap::new();
        security_headers(&mut h, "/fhir/Patient/1", false);
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'"
        );
    }

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
