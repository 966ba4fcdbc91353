//! The console's handlers on a real store: login and refusals, the message log and its
//! pages, re-processing, the dashboard's JSON.
#![allow(clippy::many_single_char_names)]

use super::*;
use crate::ingest::log::Tap;
use axum::http::Request as HttpRequest;
use clap::Parser as _;
use tower::ServiceExt as _;

const KEY: &str = "console-test-key";

fn gateway(dir: &std::path::Path) -> Gateway {
    gateway_audited(dir, false)
}

fn gateway_audited(dir: &std::path::Path, audited: bool) -> Gateway {
    let config = crate::Config::parse_from([
        "xenrad-gateway",
        "--data-dir",
        dir.to_str().unwrap(),
        "--api-key",
        KEY,
        "--dicom-journal-mb",
        "1",
    ]);
    let keys = crate::load_keys(&config).unwrap();
    let store = crate::store::Store::open(&config.data_dir).unwrap();
    let metrics = crate::metrics::Metrics::default();
    let (images, _) = crate::store::qr::Images::load(&store).unwrap();
    let dicom_sink = Arc::new(crate::surface::dicom::open_sink(&config).unwrap());
    Gateway {
        audit: if audited {
            crate::audit::Audit::start(store.clone())
        } else {
            crate::audit::Audit::disabled()
        },
        images: Arc::new(images),
        dicom_sink,
        hl7v2: Arc::new(crate::ingest::v2_handler(&store, &metrics, &config)),
        hl7v3: Arc::new(crate::ingest::v3_handler(&store, &metrics)),
        console: Tap::with_log(&store, log_bounds(&config)),
        config: Arc::new(config),
        store,
        metrics,
        keys,
    }
}

struct Fixture {
    gw: Gateway,
    app: Router,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.gw.store.close();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(name: &str) -> Fixture {
    fixture_with(name, Vec::new)
}

fn fixture_with(name: &str, extensions: impl Fn() -> Vec<Extension>) -> Fixture {
    let dir = std::env::temp_dir().join(format!("xenrad-console-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let gw = gateway(&dir);
    let app = router(Console::new(gw.clone(), &extensions()), extensions());
    Fixture { gw, app, dir }
}

async fn send(app: &Router, req: HttpRequest<Body>) -> (StatusCode, HeaderMap, String) {
    let r = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 24).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn get(path: &str, auth: Option<(&str, &str)>) -> HttpRequest<Body> {
    let mut b = HttpRequest::get(path);
    if let Some((k, v)) = auth {
        b = b.header(k, v);
    }
    b.body(Body::empty()).unwrap()
}

fn form(path: &str, body: &str, auth: Option<(&str, &str)>) -> HttpRequest<Body> {
    let mut b =
        HttpRequest::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((k, v)) = auth {
        b = b.header(k, v);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

const GOOD: &str = "MSH|^~\\&|RIS|HOSP|XEN|FAC|20240101120000||ADT^A08|C-GOOD-1|P|2.5.1\rPID|1||ID-7^^^HOSP||Doe^John||19800101|M\r";
const BAD: &str = "MSH|^~\\&|RIS|HOSP|XEN|FAC|20240101120000||ADT^A08|C-BAD-1|P|2.5.1\rPID|1||ID-8^^^HOSP||Doe^Jane||notadate|F\r";

#[tokio::test]
async fn pages_refuse_without_a_valid_key_and_login_sets_a_strict_cookie() {
    let f = fixture("login");
    let (s, h, _) = send(&f.app, get("/messages?q=x", None)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/login?next=%2Fmessages%3Fq%3Dx");
    for p in [
        "/api/dashboard",
        "/events",
        "/api/messages",
        "/thumbnail/1.2.3",
    ] {
        let (s, h, _) = send(&f.app, get(p, None)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{p}");
        assert!(h.contains_key(header::WWW_AUTHENTICATE));
    }
    let (s, _, _) = send(&f.app, get("/api/dashboard", Some(("x-api-key", "wrong")))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(&f.app, get("/", Some(("cookie", "xenrad_console=forged")))).await;
    assert_eq!(s, StatusCode::SEE_OTHER);

    let (s, h, body) = send(&f.app, get("/login?next=/studies", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains(r#"<label for="key">API key</label>"#),
        "{body}"
    );
    assert!(
        h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );

    let (s, h, body) = send(&f.app, form("/login", "key=nope&next=%2F", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(!h.contains_key(header::SET_COOKIE));
    assert!(body.contains("That API key is not valid."));

    // An open redirect is not followed.
    let (s, h, _) = send(
        &f.app,
        form(
            "/login",
            &format!("key={KEY}&next=%2F%2Fevil.example"),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/");
    let cookie = h[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("xenrad_console="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(KEY));
    let session = cookie.split(';').next().unwrap().to_owned();
    let (s, _, body) = send(&f.app, get("/", Some(("cookie", &session)))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("<h1>Dashboard</h1>"));
    assert!(body.contains(r#"aria-current="page""#));

    // After logging out the session is gone.
    let (s, _, _) = send(&f.app, form("/logout", "", Some(("cookie", &session)))).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = send(&f.app, get("/", Some(("cookie", &session)))).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_failed_message_is_found_shown_at_its_position_and_reprocessed() {
    let f = fixture("messages");
    let auth = Some(("x-api-key", KEY));
    let good = crate::ingest::v2(&f.gw, Bytes::from_static(GOOD.as_bytes())).await;
    assert_eq!(good.http_status, 200);
    let bad = crate::ingest::v2(&f.gw, Bytes::from_static(BAD.as_bytes())).await;
    assert_eq!(bad.http_status, 400);
    let junk = crate::ingest::v2(&f.gw, Bytes::from_static(b"MSH|^~\\&|X\rP\x01D|1\r")).await;
    assert_eq!(junk.http_status, 400);
    f.gw.console.flush().await;

    let (s, _, body) = send(&f.app, get("/api/messages?q=C-BAD", auth)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], 1, "{v}");
    let m = &v["messages"][0];
    assert_eq!(m["control_id"], "C-BAD-1");
    assert_eq!(m["outcome"], "invalid");
    assert_eq!(m["door"], "hl7-http");
    assert_eq!(m["error_location"], "PID-7");
    let seq = m["seq"].as_i64().unwrap();

    let (_, _, body) = send(&f.app, get("/api/messages?outcome=errors", auth)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], 2, "{v}");
    let rejected = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["outcome"] == "rejected")
        .unwrap();
    assert!(
        rejected["error_location"]
            .as_str()
            .unwrap()
            .starts_with("segment 2"),
        "{rejected}"
    );

    let (s, _, html) = send(&f.app, get(&format!("/messages/{seq}"), auth)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"id="error-field""#), "{html}");
    assert!(html.contains("Date/Time of Birth"));
    assert!(html.contains("Patient Identifier List"));
    assert!(html.contains("MSA|AE|C-BAD-1"));

    // The stored one links the Patient it produced.
    let (_, _, body) = send(&f.app, get("/api/messages?q=C-GOOD", auth)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let good_seq = v["messages"][0]["seq"].as_i64().unwrap();
    let (_, _, body) = send(&f.app, get(&format!("/api/messages/{good_seq}"), auth)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["outcome"], "stored");
    assert!(
        v["resources"][0].as_str().unwrap().starts_with("Patient/"),
        "{v}"
    );
    assert!(v["content"].as_str().unwrap().contains("C-GOOD-1"));

    // Re-processed as is: still invalid. Fixed: stored, and linked from the original.
    let (s, h, _) = send(
        &f.app,
        form(&format!("/messages/{seq}/reprocess"), "", auth),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let again: i64 = h[header::LOCATION]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (_, _, body) = send(&f.app, get(&format!("/api/messages/{again}"), auth)).await;
    assert!(body.contains(r#""outcome":"invalid""#), "{body}");
    let fixed = BAD.replace("notadate", "19810203").replace('\r', "\n");
    let enc = serde_urlencoded::to_string([("content", fixed.as_str())]).unwrap();
    let (s, h, _) = send(
        &f.app,
        form(&format!("/messages/{seq}/reprocess"), &enc, auth),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let new: i64 = h[header::LOCATION]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (_, _, body) = send(&f.app, get(&format!("/api/messages/{new}"), auth)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["outcome"], "stored", "{v}");
    assert_eq!(v["door"], "console");
    let (_, _, body) = send(&f.app, get(&format!("/api/messages/{seq}"), auth)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["reprocessed_as"], new);

    // The list page finds it by control id and marks it re-processed.
    let (_, _, html) = send(&f.app, get("/messages?q=C-BAD-1", auth)).await;
    assert!(html.contains("→ re-processed"), "{html}");
}

#[tokio::test]
async fn dashboard_counts_per_door() {
    let f = fixture("dashboard");
    let auth = Some(("x-api-key", KEY));
    for _ in 0..3 {
        crate::ingest::v2(&f.gw, Bytes::from_static(GOOD.as_bytes())).await;
    }
    crate::ingest::v2(&f.gw, Bytes::from_static(BAD.as_bytes())).await;
    f.gw.metrics
        .observe_http("fhir", "/fhir/Patient", 200, Duration::from_millis(1));
    f.gw.metrics
        .observe_http("fhir", "/fhir/Patient", 401, Duration::from_millis(1));
    f.gw.metrics.observe_http(
        "fhir",
        crate::surface::http::HEALTH_PATH,
        200,
        Duration::from_millis(1),
    );
    f.gw.metrics.ingest("dicom", "stored", 10);
    let (s, _, body) = send(&f.app, get("/api/dashboard", auth)).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let door = |id: &str| {
        v["doors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            door("hl7")["accepted"].as_u64(),
            door("hl7")["errors"].as_u64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(door("hl7")["error_pct"], 25.0);
    assert_eq!(
        (
            door("fhir")["accepted"].as_u64(),
            door("fhir")["errors"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(door("dicom")["accepted"], 1);
    assert_eq!(door("mllp")["total"], 0);
    assert_eq!(v["hour"]["points"], 60);
    assert_eq!(v["day"]["points"], 144);
}

#[tokio::test]
async fn a_stored_v3_message_shows_its_stored_content() {
    let f = fixture("v3");
    let auth = Some(("x-api-key", KEY));
    let msg = xenrad_hl7v3::testgen::corpus(7, 1).remove(0);
    let out = crate::ingest::v3(&f.gw, Bytes::from(msg.clone().into_bytes())).await;
    assert_eq!(out.http_status, 200);
    f.gw.console.flush().await;
    let (_, _, body) = send(&f.app, get("/api/messages?q=PRPA_IN", auth)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["messages"][0]["protocol"], "hl7v3");
    assert_eq!(v["messages"][0]["outcome"], "stored");
    let seq = v["messages"][0]["seq"].as_i64().unwrap();
    let (_, _, body) = send(&f.app, get(&format!("/api/messages/{seq}"), auth)).await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["content"].as_str(), Some(msg.as_str()), "{v}");
    assert!(v["ack"].as_str().unwrap().contains("MCCI_IN000002UV01"));
}

#[tokio::test]
async fn an_extension_is_served_behind_the_login_with_the_navigation() {
    let ext = || {
        vec![Extension {
            section: Section {
                title: "Worklist",
                path: "/worklist",
            },
            router: Router::new().route(
                "/",
                axum::routing::get(|axum::Extension(nav): axum::Extension<Nav>| async move {
                    pages::layout(
                        &nav.0,
                        "Worklist",
                        "/worklist",
                        maud::html! { p { "items" } },
                    )
                }),
            ),
        }]
    };
    let f = fixture_with("ext", ext);
    let (s, _, _) = send(&f.app, get("/worklist", None)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, html) = send(&f.app, get("/worklist", Some(("x-api-key", KEY)))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(r#"<a href="/worklist" aria-current="page">Worklist</a>"#),
        "{html}"
    );
    let (_, _, html) = send(&f.app, get("/", Some(("x-api-key", KEY)))).await;
    assert!(html.contains(r#"<a href="/worklist">Worklist</a>"#));
}

/// A gateway with its audit trail and the console with its worklist and audit sections.
fn sections_fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("xenrad-console-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let gw = gateway_audited(&dir, true);
    let app = router(
        Console::new(gw.clone(), &sections::extensions(&gw)),
        sections::extensions(&gw),
    );
    Fixture { gw, app, dir }
}

/// An order (HL7 v2.3.1 ORM^O01, chapter 4) for one CT step at 2025-01-24 14:30.
const ORM: &str = "MSH|^~\\&|RIS|RAD|XENRAD|GW|20250124||ORM^O01^ORM_O01|ORM-WL-1|P|2.3.1\r\
PID|1||P1^^^HOSP^MR||DOE^JANE^Q||19700101|F\r\
PV1|1|O|RADWARD|||||D7^HOUSE^GREG|||||||||||V9^^^HOSP^VN\r\
ORC|NW|PL1^RIS|FL1^DSS^1.2.840.99^ISO||SC||^^^202501241430|||||O5^WHO^OLIVIA\r\
OBR|1|PL1^RIS|FL1^DSS|CTH^CT HEAD^L||||||||||||O5^WHO^OLIVIA||ACC-WL-1|RP1|SPS1||||CT|||||||HEAD^Headache\r\
ZDS|1.2.3.4.99^RIS^Application^DICOM\r";

/// Sends an HL7 v2 message to the HL7 HTTP door (authentication and audit included).
async fn post_v2(gw: &Gateway, body: &str, key: &str) -> StatusCode {
    let mut req = HttpRequest::post("/v2/ingest")
        .header(header::CONTENT_TYPE, "application/hl7-v2")
        .header("x-api-key", key)
        .body(Body::from(body.to_owned()))
        .unwrap();
    req.extensions_mut().insert(crate::surface::http::PeerAddr(
        "192.0.2.7:40000".parse().unwrap(),
    ));
    let (s, _, body) = send(&crate::surface::hl7::router(gw.clone()), req).await;
    assert!(s != StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    s
}

#[tokio::test]
async fn an_ingested_order_is_on_the_worklist_page() {
    let f = sections_fixture("worklist");
    let auth = Some(("x-api-key", KEY));
    for p in ["/worklist", "/audit", "/worklist?accession=ACC-WL-1"] {
        let (s, h, _) = send(&f.app, get(p, None)).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{p}");
        assert!(h[header::LOCATION].to_str().unwrap().starts_with("/login"));
        let (s, _, _) = send(&f.app, get(p, Some(("x-api-key", "wrong")))).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{p}");
    }
    let (s, _, html) = send(&f.app, get("/worklist", auth)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("No scheduled procedure steps match."),
        "{html}"
    );

    assert_eq!(post_v2(&f.gw, ORM, KEY).await, StatusCode::OK);
    let (s, _, html) = send(&f.app, get("/worklist", auth)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(r#"<a href="/worklist" aria-current="page">Worklist</a>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<table class="list" id="worklist">"#),
        "{html}"
    );
    for want in [
        "<td>ACC-WL-1</td>",
        "DOE JANE Q (P1)",
        "<td>CT</td>",
        "2025-01-24 14:30",
        r#"<a href="/studies/1.2.3.4.99">1.2.3.4.99</a>"#,
        "ServiceRequest/",
    ] {
        assert!(html.contains(want), "{want} in {html}");
    }
    // The filters narrow on the store's columns.
    for (q, listed) in [
        ("date=2025-01-24&modality=CT", true),
        ("accession=ACC-WL-1", true),
        ("date=2025-01-25", false),
        ("modality=MR", false),
        ("accession=ACC-OTHER", false),
        ("station=NOSUCHAE", false),
    ] {
        let (s, _, html) = send(&f.app, get(&format!("/worklist?{q}"), auth)).await;
        assert_eq!(s, StatusCode::OK, "{q}");
        assert_eq!(html.contains("<td>ACC-WL-1</td>"), listed, "{q}: {html}");
    }
    // A cancellation takes the step off the worklist; "all" still shows it.
    let cancel = ORM
        .replace("ORC|NW|", "ORC|CA|")
        .replace("ORM-WL-1", "ORM-WL-2");
    assert_eq!(post_v2(&f.gw, &cancel, KEY).await, StatusCode::OK);
    let (_, _, html) = send(&f.app, get("/worklist", auth)).await;
    assert!(!html.contains("<td>ACC-WL-1</td>"), "{html}");
    let (_, _, html) = send(&f.app, get("/worklist?all=1", auth)).await;
    assert!(html.contains("<td>ACC-WL-1</td>"), "{html}");
    assert!(html.contains(r#"<span class="badge bad">"#), "{html}");
}

#[tokio::test]
async fn audit_events_of_a_refused_and_an_accepted_request_are_listed() {
    let f = sections_fixture("audit");
    let auth = Some(("x-api-key", KEY));
    assert_eq!(
        post_v2(&f.gw, ORM, "not-the-key").await,
        StatusCode::UNAUTHORIZED
    );
    // Events are recorded to the millisecond: keep the two apart for the order check.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(post_v2(&f.gw, ORM, KEY).await, StatusCode::OK);
    f.gw.audit.flush().await;

    let (s, _, html) = send(&f.app, get("/audit", auth)).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains(r#"<a href="/audit" aria-current="page">Audit</a>"#),
        "{html}"
    );
    assert_eq!(html.matches("<tr data-id=").count(), 2, "{html}");
    // Newest first: the accepted ingest, then the refusal.
    let ingest = html.find("ORM-WL-1").expect("the ingest's control id");
    let refused = html.find("X-API-Key is not valid").expect("the refusal");
    assert!(ingest < refused, "{html}");
    assert!(html.contains("<td>192.0.2.7</td>"), "{html}");

    let (_, _, html) = send(&f.app, get("/audit?outcome=4", auth)).await;
    assert_eq!(html.matches("<tr data-id=").count(), 1, "{html}");
    assert!(html.contains("X-API-Key is not valid"), "{html}");
    assert!(html.contains("<td>anonymous</td>"), "{html}");
    assert!(
        html.contains("user authentication (110114) / login (110122)"),
        "{html}"
    );
    let (_, _, html) = send(&f.app, get("/audit?type=110107&outcome=0", auth)).await;
    assert_eq!(html.matches("<tr data-id=").count(), 1, "{html}");
    assert!(html.contains("ORM-WL-1"), "{html}");
    let (_, _, html) = send(&f.app, get("/audit?agent=anonymous", auth)).await;
    assert_eq!(html.matches("<tr data-id=").count(), 1, "{html}");
    assert!(html.contains("X-API-Key is not valid"), "{html}");
    let (_, _, html) = send(&f.app, get("/audit?type=110104", auth)).await;
    assert!(html.contains("No audit events match."), "{html}");
    // A malformed filter is a defined answer, not a failure.
    let (s, _, _) = send(&f.app, get("/audit?outcome=x%7C", auth)).await;
    assert!(s == StatusCode::OK || s == StatusCode::BAD_REQUEST, "{s}");
}
