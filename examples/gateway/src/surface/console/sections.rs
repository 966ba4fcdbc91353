//! The console sections other parts of the gateway feed, plugged in as [`Extension`]s:
//!
//! - **Worklist** (`/worklist`): the scheduled procedure steps of the Modality Worklist as
//!   stored (PS3.4 K.6; filled from HL7 orders), filtered on the store's indexed columns
//!   ([`WorklistFilter`]: SPS start date, modality, station AE, accession), each with the
//!   ServiceRequest of its accession.
//! - **Audit** (`/audit`): the audit trail's `AuditEvent`s (FHIR R4 AuditEvent), newest
//!   first, found with the gateway's own FHIR search (`type`, `outcome`, `agent-name`,
//!   `_sort=-date`) on the store.

use super::{Extension, Nav, PAGE, Section, pages};
use crate::Gateway;
use crate::store::worklist::WorklistFilter;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dicom_dictionary_std::tags;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use xenrad_dimse::assoc::policy::ts;
use xenrad_dimse::query::decode_identifier;
use xenrad_fhir_model::ResourceType;

/// The worklist and audit sections.
pub fn extensions(gw: &Gateway) -> Vec<Extension> {
    vec![worklist(gw.clone()), audit(gw.clone())]
}

/// The Worklist section.
pub fn worklist(gw: Gateway) -> Extension {
    Extension {
        section: Section {
            title: "Worklist",
            path: "/worklist",
        },
        router: Router::new().route("/", get(worklist_page)).with_state(gw),
    }
}

/// The Audit section.
pub fn audit(gw: Gateway) -> Extension {
    Extension {
        section: Section {
            title: "Audit",
            path: "/audit",
        },
        router: Router::new().route("/", get(audit_page)).with_state(gw),
    }
}

fn store_problem(nav: &Nav, title: &str, path: &str, e: &impl std::fmt::Display) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        pages::layout(
            &nav.0,
            title,
            path,
            pages::problem("The store could not be read", &e.to_string()),
        ),
    )
        .into_response()
}

/// Filters of the worklist page.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct WorklistQuery {
    /// SPS start date (`YYYY-MM-DD` from a date input, or `YYYYMMDD`).
    #[serde(default)]
    pub date: String,
    /// Modality, exact.
    #[serde(default)]
    pub modality: String,
    /// Scheduled Station AE Title, exact.
    #[serde(default)]
    pub station: String,
    /// Accession Number, exact.
    #[serde(default)]
    pub accession: String,
    /// `1`: also the steps that left the worklist (completed, discontinued, cancelled).
    #[serde(default)]
    pub all: String,
    /// Page, from 1.
    #[serde(default)]
    pub page: Option<u64>,
}

fn some(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

impl WorklistQuery {
    /// The store filter (exact values; the date as a one-day range).
    pub fn filter(&self) -> WorklistFilter {
        let date = some(&self.date.replace('-', ""));
        WorklistFilter {
            accession: some(&self.accession),
            station_ae: some(&self.station),
            modality: some(&self.modality),
            date_from: date.clone(),
            date_to: date,
            listed_only: self.all != "1",
            ..WorklistFilter::default()
        }
    }

    fn link(&self, page: u64) -> String {
        let s = serde_urlencoded::to_string([
            ("date", self.date.as_str()),
            ("modality", self.modality.as_str()),
            ("station", self.station.as_str()),
            ("accession", self.accession.as_str()),
            ("all", self.all.as_str()),
            ("page", &page.to_string()),
        ])
        .unwrap_or_default();
        format!("/worklist?{s}")
    }
}

/// A worklist step as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct StepView {
    /// Patient's name (DICOM PN, `^` as spaces).
    pub patient_name: String,
    /// Patient ID.
    pub patient_id: String,
    /// Accession Number.
    pub accession: String,
    /// Modality.
    pub modality: String,
    /// Scheduled Station AE Title.
    pub station_ae: String,
    /// SPS start date and time (`YYYY-MM-DD HH:MM`).
    pub start: String,
    /// SPS Status.
    pub status: String,
    /// Whether it is on the worklist.
    pub listed: bool,
    /// Study Instance UID.
    pub study_uid: String,
    /// The ServiceRequest id of its accession.
    pub service_request: Option<String>,
}

fn text(obj: &xenrad_dimse::query::Identifier, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(['\0', ' ']).to_owned())
        .unwrap_or_default()
}

fn start_of(date: &str, time: &str) -> String {
    let d = if date.len() == 8 {
        format!("{}-{}-{}", &date[..4], &date[4..6], &date[6..])
    } else {
        date.to_owned()
    };
    let t = time
        .get(..4)
        .map_or(String::new(), |t| format!(" {}:{}", &t[..2], &t[2..]));
    format!("{d}{t}")
}

fn step_view(r: &crate::map::worklist::WorklistRow) -> StepView {
    let mut v = StepView {
        patient_id: r.patient_id.clone(),
        accession: r.accession.clone(),
        modality: r.modality.clone(),
        station_ae: r.station_ae.clone(),
        start: start_of(&r.start_date, ""),
        status: r.status.clone(),
        listed: r.listed,
        study_uid: r.study_uid.clone(),
        ..StepView::default()
    };
    if let Ok(a) = decode_identifier(&r.attributes, ts::EXPLICIT_VR_LE) {
        v.patient_name = text(&a, tags::PATIENT_NAME).replace('^', " ");
        let sps = a
            .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|i| i.first());
        if let Some(sps) = sps {
            v.start = start_of(
                &text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
                &text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
            );
        }
    }
    v
}

async fn worklist_page(
    State(gw): State<Gateway>,
    axum::Extension(nav): axum::Extension<Nav>,
    Query(q): Query<WorklistQuery>,
) -> Response {
    let filter = q.filter();
    let page = q.page.unwrap_or(1).max(1);
    let r = gw
        .store
        .read(move |tx| {
            let rows = tx.worklist_rows(&filter)?;
            let total = rows.len() as u64;
            let mut out = Vec::new();
            for r in rows
                .iter()
                .skip(((page - 1) * PAGE) as usize)
                .take(PAGE as usize)
            {
                let mut v = step_view(r);
                v.service_request = if r.accession.is_empty() {
                    None
                } else {
                    tx.find_by_token(
                        "ServiceRequest",
                        "identifier",
                        &r.accession_system,
                        &r.accession,
                    )?
                };
                out.push(v);
            }
            Ok((total, out))
        })
        .await;
    match r {
        Ok((total, rows)) => pages::layout(
            &nav.0,
            "Worklist",
            "/worklist",
            worklist_markup(&q, page, total, &rows),
        )
        .into_response(),
        Err(e) => store_problem(&nav, "Worklist", "/worklist", &e),
    }
}

/// The worklist page's body.
pub fn worklist_markup(q: &WorklistQuery, page: u64, total: u64, rows: &[StepView]) -> Markup {
    html! {
        form.filters method="get" action="/worklist" role="search" {
            div { label for="wdate" { "Scheduled date" } input #wdate type="date" name="date" value=(q.date); }
            div { label for="wmod" { "Modality" } input #wmod type="text" name="modality" value=(q.modality) size="4"; }
            div { label for="wae" { "Station AE" } input #wae type="text" name="station" value=(q.station) size="16"; }
            div { label for="wacc" { "Accession" } input #wacc type="search" name="accession" value=(q.accession); }
            div { label for="wall" { "Steps" }
                select #wall name="all" {
                    option value="" selected[q.all != "1"] { "on the worklist" }
                    option value="1" selected[q.all == "1"] { "all, with completed and cancelled" }
                }
            }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p.empty { "No scheduled procedure steps match." }
        } @else {
            div.scroll {
                table.list #worklist {
                    caption.sr { "Scheduled procedure steps, by scheduled start" }
                    thead { tr {
                        th scope="col" { "Scheduled start" } th scope="col" { "Patient" } th scope="col" { "Accession" }
                        th scope="col" { "Modality" } th scope="col" { "Station AE" } th scope="col" { "Status" }
                        th scope="col" { "Study Instance UID" } th scope="col" { "Order" }
                    } }
                    tbody {
                        @for s in rows {
                            tr {
                                td { (s.start) }
                                td { (s.patient_name) @if !s.patient_id.is_empty() { " (" (s.patient_id) ")" } }
                                td { (s.accession) }
                                td { (s.modality) }
                                td { (s.station_ae) }
                                td { span class={"badge " (if s.listed { "ok" } else { "bad" })} { (s.status) } }
                                td { a href={"/studies/" (s.study_uid)} { (s.study_uid) } }
                                td { @match &s.service_request { Some(id) => { "ServiceRequest/" (id) }, None => "–" } }
                            }
                        }
                    }
                }
            }
        }
        (pages::pager(page, total, |p| q.link(p)))
    }
}

/// Filters of the audit page.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct AuditQuery {
    /// Event type code (`110114` user authentication, `110107` import, `rest`, …).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Outcome code (`0`, `4`, `8`, `12`).
    #[serde(default)]
    pub outcome: String,
    /// Agent name (the API key's name, an AE title, a sending application).
    #[serde(default)]
    pub agent: String,
    /// Page, from 1.
    #[serde(default)]
    pub page: Option<u64>,
}

impl AuditQuery {
    /// The FHIR search of the page (R4 AuditEvent search parameters), newest first.
    pub fn search(&self, page: u64) -> String {
        let mut pairs: Vec<(&str, String)> = [
            ("type", &self.kind),
            ("outcome", &self.outcome),
            ("agent-name", &self.agent),
        ]
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.trim().to_owned()))
        .collect();
        pairs.push(("_sort", "-date".into()));
        pairs.push(("_count", PAGE.to_string()));
        pairs.push(("_offset", ((page - 1) * PAGE).to_string()));
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    fn link(&self, page: u64) -> String {
        let s = serde_urlencoded::to_string([
            ("type", self.kind.as_str()),
            ("outcome", self.outcome.as_str()),
            ("agent", self.agent.as_str()),
            ("page", &page.to_string()),
        ])
        .unwrap_or_default();
        format!("/audit?{s}")
    }
}

/// An AuditEvent as the page shows it (read from the stored resource).
#[derive(Debug, Clone, Default)]
pub struct EventView {
    /// Resource id.
    pub id: String,
    /// `recorded`.
    pub recorded: String,
    /// `type` code and display, then subtype codes.
    pub kind: String,
    /// `action` (C, R, U, D, E).
    pub action: String,
    /// `outcome` code.
    pub outcome: String,
    /// `outcomeDesc`.
    pub outcome_desc: String,
    /// Agents: name (or who identifier) and network address.
    pub agents: Vec<(String, String)>,
    /// `source.site`.
    pub site: String,
    /// Entity identifiers or references.
    pub entities: Vec<String>,
}

/// Names of the event codes the gateway's audit trail uses (DICOM PS3.16 CID 400/401
/// "DCM" codes, and FHIR R4 audit-event-type `rest` / restful-interaction).
fn code_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "110104" => "DICOM instances transferred",
        "110107" => "import",
        "110114" => "user authentication",
        "110122" => "login",
        "rest" => "RESTful operation",
        _ => return None,
    })
}

fn coding_text(c: &Value) -> String {
    let code = c["code"].as_str().unwrap_or_default();
    match c["display"].as_str().or(code_name(code)) {
        Some(d) => format!("{d} ({code})"),
        None => code.to_owned(),
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Reads the fields the page shows from an AuditEvent's JSON.
pub fn event_view(id: &str, v: &Value) -> EventView {
    let empty = Vec::new();
    let arr = |k: &str| v[k].as_array().unwrap_or(&empty).clone();
    let mut kind = coding_text(&v["type"]);
    for st in arr("subtype") {
        kind.push_str(" / ");
        kind.push_str(&coding_text(&st));
    }
    EventView {
        id: id.to_owned(),
        recorded: s(&v["recorded"]),
        kind,
        action: s(&v["action"]),
        outcome: s(&v["outcome"]),
        outcome_desc: s(&v["outcomeDesc"]),
        agents: arr("agent")
            .iter()
            .map(|a| {
                let name = a["name"]
                    .as_str()
                    .or(a["who"]["identifier"]["value"].as_str())
                    .or(a["who"]["display"].as_str())
                    .unwrap_or("")
                    .to_owned();
                (name, s(&a["network"]["address"]))
            })
            .collect(),
        site: s(&v["source"]["site"]),
        entities: arr("entity")
            .iter()
            .filter_map(|e| {
                e["what"]["identifier"]["value"]
                    .as_str()
                    .or(e["what"]["reference"].as_str())
                    .map(str::to_owned)
            })
            .collect(),
    }
}

fn outcome_name(code: &str) -> &'static str {
    // FHIR R4 AuditEventOutcome (http://hl7.org/fhir/audit-event-outcome).
    match code {
        "0" => "success",
        "4" => "minor failure",
        "8" => "serious failure",
        "12" => "major failure",
        _ => "unknown",
    }
}

async fn audit_page(
    State(gw): State<Gateway>,
    axum::Extension(nav): axum::Extension<Nav>,
    Query(q): Query<AuditQuery>,
) -> Response {
    let page = q.page.unwrap_or(1).max(1);
    let query = match crate::search::parse(ResourceType::AuditEvent, &q.search(page)) {
        Ok(query) => query,
        Err(oo) => {
            return (
                StatusCode::BAD_REQUEST,
                pages::layout(
                    &nav.0,
                    "Audit",
                    "/audit",
                    html! {
                        (pages::problem("The filter is not valid", &oo.to_json()))
                        p { a href="/audit" { "Clear the filters" } }
                    },
                ),
            )
                .into_response();
        }
    };
    let r = gw
        .store
        .read(move |tx| tx.search("AuditEvent", &query))
        .await;
    match r {
        Ok(p) => {
            let rows: Vec<EventView> = p
                .rows
                .iter()
                .map(|(id, r)| {
                    let v = serde_json::from_str(r.json()).unwrap_or(Value::Null);
                    event_view(id, &v)
                })
                .collect();
            pages::layout(
                &nav.0,
                "Audit",
                "/audit",
                audit_markup(&q, page, p.total as u64, &rows),
            )
            .into_response()
        }
        Err(e) => store_problem(&nav, "Audit", "/audit", &e),
    }
}

/// The audit page's body.
pub fn audit_markup(q: &AuditQuery, page: u64, total: u64, rows: &[EventView]) -> Markup {
    html! {
        form.filters method="get" action="/audit" role="search" {
            div { label for="atype" { "Type" }
                select #atype name="type" {
                    @for (v, t) in [("", "any"), ("110107", "import (HL7, MPPS)"), ("110104", "DICOM instances transferred"), ("rest", "RESTful operation"), ("110114", "user authentication")] {
                        option value=(v) selected[v == q.kind] { (t) }
                    }
                }
            }
            div { label for="aout" { "Outcome" }
                select #aout name="outcome" {
                    @for (v, t) in [("", "any"), ("0", "success"), ("4", "minor failure (refused)"), ("8", "serious failure"), ("12", "major failure")] {
                        option value=(v) selected[v == q.outcome] { (t) }
                    }
                }
            }
            div { label for="aagent" { "Agent name" } input #aagent type="search" name="agent" value=(q.agent); }
            button type="submit" { "Search" }
        }
        p { "The same events are searchable at " code { "/fhir/AuditEvent" } "." }
        @if rows.is_empty() {
            p.empty { "No audit events match." }
        } @else {
            div.scroll {
                table.list #audit {
                    caption.sr { "Audit events, newest first" }
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Type" } th scope="col" { "Action" }
                        th scope="col" { "Outcome" } th scope="col" { "Agent" } th scope="col" { "Address" }
                        th scope="col" { "Door" } th scope="col" { "Entities" }
                    } }
                    tbody {
                        @for e in rows {
                            tr data-id=(e.id) {
                                td { time datetime=(e.recorded) { (e.recorded.replace('T', " ").trim_end_matches('Z')) } }
                                td { (e.kind) }
                                td { (e.action) }
                                td { span class={"badge " (if e.outcome == "0" { "ok" } else { "bad" })} { (outcome_name(&e.outcome)) }
                                    @if !e.outcome_desc.is_empty() { " " (e.outcome_desc) } }
                                td { @for (i, (n, _)) in e.agents.iter().enumerate() { @if i > 0 { ", " } (n) } }
                                td { @for (i, (_, a)) in e.agents.iter().enumerate() { @if i > 0 { ", " } (a) } }
                                td { (e.site) }
                                td { @for (i, x) in e.entities.iter().enumerate() { @if i > 0 { br; } (x) } }
                            }
                        }
                    }
                }
            }
        }
        (pages::pager(page, total, |p| q.link(p)))
    }
}
