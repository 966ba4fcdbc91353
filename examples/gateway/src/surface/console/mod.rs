//! The operator console: a web page an operator keeps open all day, served on its own
//! listener (`--console-addr`, default `127.0.0.1:8083`) behind the gateway's API key.
//!
//! - **Dashboard** (`/`): per door (FHIR, HL7 HTTP, MPPS, MLLP, DICOM) throughput per minute,
//!   acceptance and error rates, open connections, store and journal health, charts of the
//!   last hour and day, updated live over server-sent events (`/events`).
//! - **Messages** (`/messages`): the message log (every HL7 v2/v3 message processed: time,
//!   door, sender, type, control id, outcome), each opening to its raw content with segment
//!   and field names, its ACK, the FHIR resources it produced, the parser's error position,
//!   and a Re-process action; **MPPS** (`/mpps`): the MPPS records and their state.
//! - **Studies** (`/studies`): patients, studies, series and instances as stored, with
//!   thumbnails ([`thumb`]), the MPPS state and the linked order.
//! - **Worklist** (`/worklist`) and **Audit** (`/audit`): the scheduled procedure steps and
//!   the audit trail's AuditEvents, served as [`Extension`]s ([`sections`]).
//!
//! Pages are rendered on the server with `maud` (compile-time checked, escaped by default)
//! with one small script and one style sheet embedded in the binary (no CDN, nothing fetched
//! at run time). Sections that other parts of the gateway add (worklist, audit trail) plug in
//! as [`Extension`]s: a navigation entry and a router served behind the same login.
//!
//! Access: a login page takes an API key and sets an `HttpOnly`, `SameSite=Strict` session
//! cookie (the key itself never goes into the cookie); scripts may send `X-API-Key` instead.
//! Without either, pages redirect to the login and `/api/…`, `/events` and thumbnails
//! answer 401.

pub mod live;
pub mod names;
pub mod pages;
pub mod sections;
pub mod thumb;

pub use crate::ingest::log::{self as tap, Door, Tap};

use crate::Gateway;
use crate::store::{LogBounds, LogQuery, StoreError};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use live::Live;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The console's style sheet.
pub const CSS: &str = include_str!("assets/console.css");
/// The console's script (live dashboard, keyboard shortcuts).
pub const JS: &str = include_str!("assets/console.js");
/// Name of the session cookie.
pub const COOKIE: &str = "xenrad_console";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Entries per page of the message, MPPS and study lists.
pub const PAGE: u64 = 50;

/// A navigation entry of the console.
#[derive(Clone, Debug)]
pub struct Section {
    /// Link text.
    pub title: &'static str,
    /// Path (e.g. `/worklist`).
    pub path: &'static str,
}

/// A section another part of the gateway adds (the worklist, the audit trail): its
/// navigation entry and the router serving its pages under [`Section::path`]. The router is
/// served behind the console's login; its handlers find the console's navigation in the
/// request's [`Nav`] extension and render with [`pages::layout`] to share it and the style:
///
/// ```ignore
/// async fn worklist(axum::Extension(nav): axum::Extension<Nav>) -> maud::Markup {
///     pages::layout(&nav.0, "Worklist", "/worklist", maud::html! { p { "…" } })
/// }
/// ```
pub struct Extension {
    /// Navigation entry.
    pub section: Section,
    /// Its pages.
    pub router: Router,
}

/// The console's navigation, put in every authorized request's extensions for the pages of
/// an [`Extension`].
#[derive(Clone, Debug)]
pub struct Nav(pub Arc<Vec<Section>>);

/// Live login sessions: token to expiry.
#[derive(Default)]
struct Sessions(Mutex<HashMap<String, Instant>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create(&self) -> Result<String, getrandom::Error> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw)?;
        let token = raw.iter().fold(String::with_capacity(64), |mut t, b| {
            use std::fmt::Write as _;
            let _ = write!(t, "{b:02x}");
            t
        });
        let mut s = self.lock();
        let now = Instant::now();
        s.retain(|_, exp| *exp > now);
        s.insert(token.clone(), now + SESSION_TTL);
        Ok(token)
    }

    fn valid(&self, token: &str) -> bool {
        self.lock()
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    fn end(&self, token: &str) {
        self.lock().remove(token);
    }
}

/// The console's state; cheap to clone.
#[derive(Clone)]
pub struct Console {
    /// The gateway it shows.
    pub gw: Gateway,
    /// The dashboard's live counters.
    pub live: Arc<Live>,
    sessions: Arc<Sessions>,
    /// Navigation: the built-in sections, then the extensions'.
    pub sections: Arc<Vec<Section>>,
}

/// The built-in sections.
pub const SECTIONS: [Section; 4] = [
    Section {
        title: "Dashboard",
        path: "/",
    },
    Section {
        title: "Messages",
        path: "/messages",
    },
    Section {
        title: "MPPS",
        path: "/mpps",
    },
    Section {
        title: "Studies",
        path: "/studies",
    },
];

impl Console {
    /// A console over `gw` with the extensions' sections in its navigation.
    pub fn new(gw: Gateway, extensions: &[Extension]) -> Self {
        let live = Arc::new(Live::new(live::totals(&gw)));
        let mut sections = SECTIONS.to_vec();
        sections.extend(extensions.iter().map(|e| e.section.clone()));
        Console {
            gw,
            live,
            sessions: Arc::new(Sessions::default()),
            sections: Arc::new(sections),
        }
    }

    /// The message log bounds configured for the gateway.
    pub fn bounds(&self) -> LogBounds {
        log_bounds(&self.gw.config)
    }
}

/// The message log bounds of a configuration.
pub fn log_bounds(c: &crate::Config) -> LogBounds {
    LogBounds {
        entries: c.console_log_entries.max(1),
        bodies: c.console_log_bodies,
    }
}

/// The console's router (with its login) and the extensions' routers behind it.
pub fn router(console: Console, extensions: Vec<Extension>) -> Router {
    let mut r = Router::new()
        .route("/", get(dashboard))
        .route("/api/dashboard", get(api_dashboard))
        .route("/events", get(events))
        .route("/messages", get(messages))
        .route("/api/messages", get(api_messages))
        .route("/messages/{seq}", get(message))
        .route("/api/messages/{seq}", get(api_message))
        .route("/messages/{seq}/reprocess", post(reprocess))
        .route("/mpps", get(mpps_list))
        .route("/mpps/{uid}", get(mpps_one))
        .route("/studies", get(studies))
        .route("/studies/{uid}", get(study))
        .route("/thumbnail/{sop}", get(thumbnail))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route(
            "/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/assets/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .route(
            crate::surface::http::HEALTH_PATH,
            get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "ok\n") }),
        )
        .fallback(not_found)
        .with_state(console.clone());
    for e in extensions {
        r = r.nest(e.section.path, e.router);
    }
    r.layer(middleware::from_fn_with_state(console, guard))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Headers every console answer carries: no framing by other sites, no sniffing, scripts and
/// styles from the console only.
fn harden(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Whether a request carries a valid session or API key.
fn authorized(c: &Console, headers: &HeaderMap) -> bool {
    let key_ok = headers
        .get("x-api-key")
        .is_some_and(|v| c.gw.keys.accepts(v.as_bytes()));
    key_ok || session_token(headers).is_some_and(|t| c.sessions.valid(t))
}

const OPEN: [&str; 4] = [
    "/login",
    "/assets/console.css",
    "/assets/console.js",
    crate::surface::http::HEALTH_PATH,
];

async fn guard(State(c): State<Console>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut r = if OPEN.contains(&path.as_str()) || authorized(&c, req.headers()) {
        req.extensions_mut().insert(Nav(c.sections.clone()));
        next.run(req).await
    } else if path.starts_with("/api/") || path == "/events" || path.starts_with("/thumbnail/") {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::json!({"type": "about:blank", "title": "Unauthorized", "status": 401,
                "code": "security", "detail": "log in to the console or send X-API-Key"})
            .to_string(),
        )
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("ApiKey header=\"X-API-Key\""),
        );
        r
    } else {
        let next_path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        Redirect::to(&format!(
            "/login?next={}",
            serde_urlencoded::to_string([("", next_path.as_str())])
                .unwrap_or_default()
                .trim_start_matches('=')
        ))
        .into_response()
    };
    harden(&mut r);
    r
}

async fn not_found(State(c): State<Console>) -> Response {
    (
        StatusCode::NOT_FOUND,
        pages::layout(&c.sections, "Not found", "", pages::not_found()),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only a local path may follow a login (no open redirect).
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

async fn login_page(Query(q): Query<NextQuery>) -> Response {
    pages::login(None, safe_next(&q.next)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    next: String,
}

async fn login(State(c): State<Console>, body: Bytes) -> Response {
    let form: LoginForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                pages::login(Some("The form could not be read."), "/"),
            )
                .into_response();
        }
    };
    let next = safe_next(&form.next).to_owned();
    if form.key.trim().is_empty() || !c.gw.keys.accepts(form.key.trim().as_bytes()) {
        // A little slower to answer a wrong key: guessing stays slow.
        tokio::time::sleep(Duration::from_millis(300)).await;
        return (
            StatusCode::UNAUTHORIZED,
            pages::login(Some("That API key is not valid."), &next),
        )
            .into_response();
    }
    let Ok(token) = c.sessions.create() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut r = Redirect::to(&next).into_response();
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(c): State<Console>, headers: HeaderMap) -> Response {
    if let Some(t) = session_token(&headers) {
        c.sessions.end(t);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("xenrad_console=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

async fn dashboard(State(c): State<Console>) -> Response {
    let snap = c.live.snapshot(&c.gw);
    pages::layout(&c.sections, "Dashboard", "/", pages::dashboard(&snap)).into_response()
}

async fn api_dashboard(State(c): State<Console>) -> Response {
    json_response(&c.live.snapshot(&c.gw))
}

fn json_response(v: &serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// The dashboard's live feed: a `snapshot` event at once and every two seconds.
async fn events(State(c): State<Console>) -> Response {
    let stream = futures_util::stream::unfold((c, true), |(c, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let data = c.live.snapshot(&c.gw).to_string();
        let ev = Event::default().event("snapshot").data(data);
        Some((Ok::<_, std::convert::Infallible>(ev), (c, false)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Query of the message list.
#[derive(Deserialize, Default, Debug)]
pub struct ListQuery {
    /// Search text (control id, sender, type).
    #[serde(default)]
    pub q: String,
    /// Door.
    #[serde(default)]
    pub door: String,
    /// Outcome filter.
    #[serde(default)]
    pub outcome: String,
    /// Page, from 1.
    #[serde(default)]
    pub page: Option<u64>,
}

impl ListQuery {
    fn log_query(&self) -> LogQuery {
        LogQuery {
            text: self.q.clone(),
            door: self.door.clone(),
            outcome: self.outcome.clone(),
            offset: (self.page.unwrap_or(1).max(1) - 1) * PAGE,
            limit: PAGE,
        }
    }
}

fn store_error(c: &Console, e: &StoreError) -> Response {
    tracing::warn!(error = %e, "console: store read failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        pages::layout(
            &c.sections,
            "Store unavailable",
            "",
            pages::problem("The store could not be read", &e.to_string()),
        ),
    )
        .into_response()
}

async fn messages(State(c): State<Console>, Query(q): Query<ListQuery>) -> Response {
    let lq = q.log_query();
    match c.gw.store.read(move |tx| tx.message_log(&lq)).await {
        Ok((total, rows)) => pages::layout(
            &c.sections,
            "Messages",
            "/messages",
            pages::messages(&q, total, &rows),
        )
        .into_response(),
        Err(e) => store_error(&c, &e),
    }
}

async fn api_messages(State(c): State<Console>, Query(q): Query<ListQuery>) -> Response {
    let lq = q.log_query();
    match c.gw.store.read(move |tx| tx.message_log(&lq)).await {
        Ok((total, rows)) => json_response(&serde_json::json!({
            "total": total,
            "page": q.page.unwrap_or(1).max(1),
            "page_size": PAGE,
            "messages": rows.iter().map(pages::entry_json).collect::<Vec<_>>(),
        })),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// A message log entry with what the console shows about it.
pub struct MessageView {
    /// The entry, with its raw content when kept.
    pub entry: crate::store::MessageLogEntry,
    /// FHIR resources the message produced: `(type, id, JSON)`.
    pub resources: Vec<(String, String, String)>,
}

/// The FHIR resources an HL7 v2 message projects into, as `(resource type, identifier
/// system, identifier value)` of each (found through the identifier index): its patient (and
/// the one a merge retires), its order.
pub fn v2_projected(m: &xenrad_hl7v2::Message<'_>) -> Vec<(&'static str, String, String)> {
    use crate::map::hl7v2::{V2Effect, effect};
    let patient = |f: &crate::map::PatientFacts| {
        f.identifiers
            .first()
            .map(|(s, v)| ("Patient", s.clone(), v.clone()))
    };
    match effect(m) {
        Ok(V2Effect::Patient(f)) => patient(&f).into_iter().collect(),
        Ok(V2Effect::Merge(f, (s, v))) => patient(&f)
            .into_iter()
            .chain(std::iter::once(("Patient", s, v)))
            .collect(),
        Ok(V2Effect::Order(o)) => o
            .identifiers
            .first()
            .map(|(s, v)| ("ServiceRequest", s.clone(), v.clone()))
            .into_iter()
            .chain(patient(&o.patient))
            .collect(),
        _ => Vec::new(),
    }
}

async fn load_message(c: &Console, seq: i64) -> Result<Option<MessageView>, StoreError> {
    c.gw.store
        .read(move |tx| {
            let Some(entry) = tx.message_log_entry(seq)? else {
                return Ok(None);
            };
            let mut resources = Vec::new();
            if entry.protocol == "hl7v2"
                && matches!(entry.outcome.as_str(), "stored" | "duplicate")
                && let Some(body) = &entry.body
                && let Ok(m) = xenrad_hl7v2::Message::parse(body)
            {
                for (rt, system, value) in v2_projected(&m) {
                    if let Some(id) = tx.find_by_token(rt, "identifier", &system, &value)?
                        && let Some(r) = tx.resource(rt, &id)?
                        && !resources.iter().any(|(t, i, _)| t == rt && *i == id)
                    {
                        resources.push((rt.to_owned(), id, r.json().to_owned()));
                    }
                }
            }
            Ok(Some(MessageView { entry, resources }))
        })
        .await
}

async fn message(State(c): State<Console>, Path(seq): Path<i64>) -> Response {
    match load_message(&c, seq).await {
        Ok(Some(v)) => pages::layout(
            &c.sections,
            &format!("Message {}", v.entry.message_id),
            "/messages",
            pages::message(&v),
        )
        .into_response(),
        Ok(None) => not_found(State(c)).await,
        Err(e) => store_error(&c, &e),
    }
}

async fn api_message(State(c): State<Console>, Path(seq): Path<i64>) -> Response {
    match load_message(&c, seq).await {
        Ok(Some(v)) => {
            let mut j = pages::entry_json(&v.entry);
            j["content"] = serde_json::json!(
                v.entry
                    .body
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            );
            j["ack"] = serde_json::json!(String::from_utf8_lossy(&v.entry.ack));
            j["resources"] = v
                .resources
                .iter()
                .map(|(t, i, _)| serde_json::json!(format!("{t}/{i}")))
                .collect();
            json_response(&j)
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct ReprocessForm {
    #[serde(default)]
    content: String,
}

/// Turns the lines of a text area back into an HL7 v2 message (segments end with CR).
pub fn v2_from_text(text: &str) -> Vec<u8> {
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split(['\r', '\n']) {
        if line.trim().is_empty() {
            continue;
        }
        out.push_str(line);
        out.push('\r');
    }
    out.into_bytes()
}

/// Runs a logged message (as kept, or as edited by the operator) through the same handler
/// as its door, logs the result (door `console`) and links it from the original entry.
/// Returns the new entry's `seq`.
pub async fn reprocess_entry(
    c: &Console,
    seq: i64,
    edited: Option<&str>,
) -> Result<Option<i64>, String> {
    let Some(entry) =
        c.gw.store
            .read(move |tx| tx.message_log_entry(seq))
            .await
            .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let v3 = entry.protocol == "hl7v3";
    let raw: Bytes = match edited.filter(|t| !t.trim().is_empty()) {
        Some(t) if v3 => Bytes::from(t.trim().as_bytes().to_vec()),
        Some(t) => Bytes::from(v2_from_text(t)),
        None => Bytes::from(
            entry
                .body
                .ok_or("the message's content is no longer kept; paste it to re-process")?,
        ),
    };
    let e = if v3 {
        let out = c.gw.hl7v3.process(raw.clone()).await;
        tap::v3_entry(Door::Console, &raw, &out)
    } else {
        let out = c.gw.hl7v2.process(raw.clone()).await;
        tap::v2_entry(Door::Console, &raw, &out)
    };
    let bounds = c.bounds();
    c.gw.store
        .write(move |tx| {
            let new = tx.log_message(&e, bounds)?;
            tx.mark_reprocessed(seq, new)?;
            Ok(new)
        })
        .await
        .map(Some)
        .map_err(|e| e.to_string())
}

async fn reprocess(State(c): State<Console>, Path(seq): Path<i64>, body: Bytes) -> Response {
    let form: ReprocessForm = serde_urlencoded::from_bytes(&body).unwrap_or(ReprocessForm {
        content: String::new(),
    });
    match reprocess_entry(&c, seq, Some(&form.content)).await {
        Ok(Some(new)) => Redirect::to(&format!("/messages/{new}")).into_response(),
        Ok(None) => not_found(State(c)).await,
        Err(e) => (
            StatusCode::CONFLICT,
            pages::layout(
                &c.sections,
                "Not re-processed",
                "/messages",
                pages::problem("The message was not re-processed", &e),
            ),
        )
            .into_response(),
    }
}

#[derive(Deserialize, Default)]
struct PageQuery {
    #[serde(default)]
    page: Option<u64>,
    #[serde(default)]
    q: String,
}

async fn mpps_list(State(c): State<Console>, Query(q): Query<PageQuery>) -> Response {
    let page = q.page.unwrap_or(1).max(1);
    match c
        .gw
        .store
        .read(move |tx| tx.mpps_records((page - 1) * PAGE, PAGE))
        .await
    {
        Ok((total, rows)) => pages::layout(
            &c.sections,
            "MPPS",
            "/mpps",
            pages::mpps_list(page, total, &rows),
        )
        .into_response(),
        Err(e) => store_error(&c, &e),
    }
}

/// An MPPS record as the seed JSON the MPPS door speaks, and its status.
pub fn mpps_view(uid: &str, version: u64, state: &str) -> (String, String, String) {
    let limits = xenrad_mpps::Limits::default();
    match xenrad_mpps::codec::record::decode(state.as_bytes(), uid, version, &limits) {
        Ok(rec) => {
            let inst = xenrad_mpps::MppsInstance {
                sop_instance_uid: rec.sop_instance_uid.clone(),
                attributes: rec.attributes,
            };
            let seed = xenrad_mpps::codec::seed::encode(&inst);
            let pretty = serde_json::from_slice::<serde_json::Value>(&seed)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| String::from_utf8_lossy(&seed).into_owned());
            (
                inst.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                inst.study_instance_uid().unwrap_or_default().to_owned(),
                pretty,
            )
        }
        Err(e) => (String::new(), String::new(), format!("not readable: {e}")),
    }
}

async fn mpps_one(State(c): State<Console>, Path(uid): Path<String>) -> Response {
    let u = uid.clone();
    let r =
        c.gw.store
            .read(move |tx| {
                let Some((version, state)) = tx.mpps(&u)? else {
                    return Ok(None);
                };
                let id = crate::project::derived_id("proc", &u);
                let procedure = tx
                    .resource("Procedure", &id)?
                    .map(|r| (id, r.json().to_owned()));
                Ok(Some((version, state, procedure)))
            })
            .await;
    match r {
        Ok(Some((version, state, procedure))) => {
            let (status, study, json) = mpps_view(&uid, version, &state);
            pages::layout(
                &c.sections,
                &format!("MPPS {uid}"),
                "/mpps",
                pages::mpps_one(&uid, version, &status, &study, &json, procedure.as_ref()),
            )
            .into_response()
        }
        Ok(None) => not_found(State(c)).await,
        Err(e) => store_error(&c, &e),
    }
}

/// A series of a study: `(uid, modality, number, description, instances as (SOP Instance
/// UID, instance number, transfer syntax))`.
pub type Series = (
    String,
    String,
    String,
    String,
    Vec<(String, String, String)>,
);

/// A study as the console lists it.
#[derive(Debug, Default, Clone)]
pub struct StudySummary {
    /// Study Instance UID.
    pub uid: String,
    /// Patient's name (DICOM PN).
    pub patient_name: String,
    /// Patient ID.
    pub patient_id: String,
    /// Study date.
    pub date: String,
    /// Study description.
    pub description: String,
    /// Accession number.
    pub accession: String,
    /// Modalities of its series.
    pub modalities: Vec<String>,
    /// Series: `(uid, modality, number, description, instances as (SOP instance UID, number, transfer syntax))`.
    pub series: Vec<Series>,
    /// Instances.
    pub instances: usize,
}

fn attr(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_owned())
        .unwrap_or_default()
}

fn add_instance(
    studies: &mut Vec<StudySummary>,
    inst: &crate::store::InstanceRow,
    q: &crate::store::QueryRow,
) {
    use dicom_dictionary_std::tags;
    let Ok(rec) = crate::store::qr::record_from_rows(inst, q) else {
        return;
    };
    let a = &rec.attributes;
    let at = studies
        .iter()
        .position(|s| s.uid == inst.study_uid)
        .unwrap_or_else(|| {
            studies.push(StudySummary {
                uid: inst.study_uid.clone(),
                patient_name: attr(a, tags::PATIENT_NAME),
                patient_id: attr(a, tags::PATIENT_ID),
                date: attr(a, tags::STUDY_DATE),
                description: attr(a, tags::STUDY_DESCRIPTION),
                accession: attr(a, tags::ACCESSION_NUMBER),
                ..StudySummary::default()
            });
            studies.len() - 1
        });
    let s = &mut studies[at];
    s.instances += 1;
    let modality = attr(a, tags::MODALITY);
    if !modality.is_empty() && !s.modalities.contains(&modality) {
        s.modalities.push(modality.clone());
    }
    let series = s
        .series
        .iter()
        .position(|x| x.0 == inst.series_uid)
        .unwrap_or_else(|| {
            s.series.push((
                inst.series_uid.clone(),
                modality,
                attr(a, tags::SERIES_NUMBER),
                attr(a, tags::SERIES_DESCRIPTION),
                Vec::new(),
            ));
            s.series.len() - 1
        });
    s.series[series].4.push((
        inst.sop_instance_uid.clone(),
        attr(a, tags::INSTANCE_NUMBER),
        inst.transfer_syntax.clone(),
    ));
}

async fn studies(State(c): State<Console>, Query(q): Query<PageQuery>) -> Response {
    let text = q.q.trim().to_lowercase();
    let r =
        c.gw.store
            .read(move |tx| {
                let mut all = Vec::new();
                tx.for_each_query_row(&mut |inst, row| {
                    add_instance(&mut all, &inst, &row);
                    Ok(())
                })?;
                Ok(all)
            })
            .await;
    match r {
        Ok(mut all) => {
            all.retain(|s| {
                text.is_empty()
                    || [
                        &s.patient_name,
                        &s.patient_id,
                        &s.accession,
                        &s.uid,
                        &s.description,
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&text))
            });
            all.sort_by(|a, b| b.date.cmp(&a.date).then(a.uid.cmp(&b.uid)));
            let page = q.page.unwrap_or(1).max(1);
            let total = all.len() as u64;
            let rows: Vec<_> = all
                .into_iter()
                .skip(((page - 1) * PAGE) as usize)
                .take(PAGE as usize)
                .collect();
            pages::layout(
                &c.sections,
                "Studies",
                "/studies",
                pages::studies(&q.q, page, total, &rows),
            )
            .into_response()
        }
        Err(e) => store_error(&c, &e),
    }
}

/// What the study page shows beyond the instances.
pub struct StudyLinks {
    /// The ImagingStudy resource: `(id, JSON)`.
    pub imaging_study: Option<(String, String)>,
    /// The order found by the accession number: `(id, JSON)`.
    pub order: Option<(String, String)>,
    /// MPPS records of this study: `(uid, status)`.
    pub mpps: Vec<(String, String)>,
}

async fn study(State(c): State<Console>, Path(uid): Path<String>) -> Response {
    let u = uid.clone();
    let r =
        c.gw.store
            .read(move |tx| {
                let mut all = Vec::new();
                for (inst, row) in tx.query_rows_in(&u, None, None)? {
                    add_instance(&mut all, &inst, &row);
                }
                let Some(s) = all.pop() else {
                    return Ok(None);
                };
                let study_id = crate::project::derived_id("study", &u);
                let imaging_study = tx
                    .resource("ImagingStudy", &study_id)?
                    .map(|r| (study_id, r.json().to_owned()));
                // The order the ingest linked: by Study Instance UID, then accession (under
                // whatever system the site configured), as C-STORE and MPPS find it.
                let order = match crate::ingest::worklist::order_for(tx, &u, &s.accession)?
                    .and_then(|l| l.service_request)
                {
                    Some(id) => tx
                        .resource("ServiceRequest", &id)?
                        .map(|r| (id, r.json().to_owned())),
                    None => None,
                };
                let mut mpps = Vec::new();
                let (_, rows) = tx.mpps_records(0, 1000)?;
                for m in rows.iter().filter(|m| m.state.contains(&u)) {
                    let (status, study, _) = mpps_view(&m.uid, m.version, &m.state);
                    if study == u {
                        mpps.push((m.uid.clone(), status));
                    }
                }
                Ok(Some((
                    s,
                    StudyLinks {
                        imaging_study,
                        order,
                        mpps,
                    },
                )))
            })
            .await;
    match r {
        Ok(Some((s, links))) => pages::layout(
            &c.sections,
            &format!("Study: {} {}", s.patient_name.replace('^', " "), s.date),
            "/studies",
            pages::study(&s, &links),
        )
        .into_response(),
        Ok(None) => not_found(State(c)).await,
        Err(e) => store_error(&c, &e),
    }
}

async fn thumbnail(State(c): State<Console>, Path(sop): Path<String>) -> Response {
    let r = c.gw.store.read(move |tx| tx.instance(&sop)).await;
    let Ok(Some(inst)) = r else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ts = inst.transfer_syntax.clone();
    let png =
        tokio::task::spawn_blocking(move || thumb::thumbnail(std::path::Path::new(&inst.path)))
            .await;
    match png {
        Ok(Ok(png)) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "private, max-age=86400"),
            ],
            Body::from(png),
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, transfer_syntax = %ts, "console: no thumbnail");
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                [(header::CONTENT_TYPE, "image/svg+xml")],
                pages::no_preview_svg(&ts),
            )
                .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Serves the console on `listener` (with the HTTP surfaces' limits) until `shutdown`, and
/// samples the dashboard's counters meanwhile.
pub async fn serve(
    gw: Gateway,
    listener: tokio::net::TcpListener,
    extensions: Vec<Extension>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let console = Console::new(gw.clone(), &extensions);
    let sampler = tokio::spawn(live::sample_loop(gw.clone(), console.live.clone()));
    let limits = gw.config.http_limits();
    let r = crate::surface::limits::serve(
        listener,
        router(console, extensions),
        None,
        crate::surface::limits::HttpLimits {
            // The event stream is one long answer.
            request_timeout: Duration::from_secs(24 * 3600),
            ..limits
        },
        crate::surface::http::ErrorStyle::Problem,
        std::sync::Arc::default(),
        shutdown,
    )
    .await;
    sampler.abort();
    r
}

#[cfg(test)]
mod tests;
