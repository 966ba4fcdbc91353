//! The console's pages, rendered with `maud` (every interpolated value is HTML-escaped).

use super::names::{field_name, segment_name};
use super::{ListQuery, MessageView, PAGE, Section, StudyLinks, StudySummary};
use crate::store::{MessageLogEntry, MppsRow};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::{Value, json};

/// The page chrome: skip link, navigation (the current section marked), main content.
#[allow(clippy::needless_pass_by_value)] // callers build the body in the call
pub fn layout(sections: &[Section], title: &str, current: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Xenrad console" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Xenrad console" }
                    nav aria-label="Sections" {
                        ul {
                            @for s in sections {
                                li {
                                    @if s.path == current {
                                        a href=(s.path) aria-current="page" { (s.title) }
                                    } @else {
                                        a href=(s.path) { (s.title) }
                                    }
                                }
                            }
                        }
                    }
                    form.logout method="post" action="/logout" {
                        button type="submit" { "Log out" }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The login page.
pub fn login(error: Option<&str>, next: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · Xenrad console" }
                link rel="stylesheet" href="/assets/console.css";
            }
            body.login {
                main #main {
                    h1 { "Xenrad console" }
                    form method="post" action="/login" {
                        @if let Some(e) = error {
                            p.error role="alert" #login-error { (e) }
                        }
                        label for="key" { "API key" }
                        input #key type="password" name="key" autocomplete="current-password"
                            required autofocus aria-describedby="key-help";
                        p #key-help .help { "The gateway's API key (the one its doors accept as X-API-Key)." }
                        input type="hidden" name="next" value=(next);
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// Body of the 404 page.
pub fn not_found() -> Markup {
    html! { p { "Nothing here. " a href="/" { "Back to the dashboard" } "." } }
}

/// A problem statement.
pub fn problem(what: &str, detail: &str) -> Markup {
    html! { div.problem role="alert" { p { strong { (what) } } p { (detail) } } }
}

#[allow(clippy::cast_precision_loss)] // a display rounded to 0.1
fn fmt_bytes(v: &Value) -> String {
    let Some(b) = v.as_u64() else {
        return "unknown".into();
    };
    let (n, unit) = match b {
        b if b >= 1 << 30 => (b as f64 / f64::from(1u32 << 30), "GiB"),
        b if b >= 1 << 20 => (b as f64 / f64::from(1u32 << 20), "MiB"),
        b if b >= 1 << 10 => (b as f64 / 1024.0, "KiB"),
        b => (b as f64, "B"),
    };
    format!("{n:.1} {unit}")
}

fn pct(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |p| format!("{p:.1} %"))
}

/// The dashboard, first drawn from `snap` (the script then follows `/events`).
pub fn dashboard(snap: &Value) -> Markup {
    let empty = vec![];
    let doors = snap["doors"].as_array().unwrap_or(&empty);
    let h = &snap["health"];
    html! {
        p.live #live-status role="status" aria-live="polite" { "Updated " span #updated { (snap["time"].as_str().unwrap_or("")) } }
        section aria-labelledby="doors-h" {
            h2 #doors-h { "Doors" }
            div.cards {
                @for d in doors {
                    @let id = d["id"].as_str().unwrap_or("");
                    article.card data-door=(id) aria-labelledby={"door-" (id)} {
                        h3 #{"door-" (id)} { (d["name"].as_str().unwrap_or("")) }
                        dl {
                            div { dt { (d["unit"].as_str().unwrap_or("")) " / min" } dd data-k="per_minute" { (d["per_minute"]) } }
                            div { dt { "accepted" } dd data-k="accepted" { (d["accepted"]) } }
                            div { dt { "errors" } dd data-k="errors" { (d["errors"]) } }
                            div { dt { "acceptance" } dd data-k="acceptance_pct" { (pct(&d["acceptance_pct"])) } }
                            div { dt { "error rate" } dd data-k="error_pct" { (pct(&d["error_pct"])) } }
                            div { dt { "open connections" } dd data-k="open" { @if d["open"].is_null() { "–" } @else { (d["open"]) } } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="charts-h" {
            h2 #charts-h { "Throughput" }
            div.charts {
                figure {
                    figcaption #hour-cap { "Last hour, per minute (accepted and errors, all doors)" }
                    div.chart #chart-hour role="img" aria-labelledby="hour-cap" {}
                }
                figure {
                    figcaption #day-cap { "Last day, per 10 minutes" }
                    div.chart #chart-day role="img" aria-labelledby="day-cap" {}
                }
            }
            ul.legend aria-label="Chart legend" {
                @for d in doors {
                    li data-door=(d["id"].as_str().unwrap_or("")) { span.swatch aria-hidden="true" {} (d["name"].as_str().unwrap_or("")) }
                }
                li.errors { span.swatch aria-hidden="true" {} "errors (dashed)" }
            }
        }
        section aria-labelledby="health-h" {
            h2 #health-h { "Health" }
            dl.health #health {
                div { dt { "status" } dd data-h="status" { (h["status"].as_str().unwrap_or("starting")) } }
                div { dt { "store read" } dd data-h="read" {
                    @if h["store"]["ok"].as_bool() == Some(true) { "ok, " (h["store"]["read_ms"]) " ms" } @else { "failing" }
                } }
                div { dt { "database" } dd data-h="db" { (fmt_bytes(&h["store"]["database_bytes"])) ", WAL " (fmt_bytes(&h["store"]["wal_bytes"])) } }
                div { dt { "free disk" } dd data-h="disk" { (fmt_bytes(&h["disk"]["free_bytes"])) " of " (fmt_bytes(&h["disk"]["total_bytes"])) } }
                div { dt { "DICOM journal" } dd data-h="journal" { (h["journal"]["lanes"]) " lanes, " (fmt_bytes(&h["journal"]["bytes"])) } }
                div { dt { "message log dropped" } dd data-h="dropped" { (h["message_log"]["dropped"]) } }
            }
        }
        script type="application/json" #snapshot { (PreEscaped(snap.to_string().replace("</", "<\\/"))) }
    }
}

/// A log entry as `/api/messages` lists it.
pub fn entry_json(e: &MessageLogEntry) -> Value {
    json!({
        "seq": e.seq, "time": e.received_at, "door": e.door, "protocol": e.protocol,
        "sender": e.sender, "control_id": e.message_id, "type": e.message_type,
        "outcome": e.outcome, "error": e.error, "error_location": e.error_location,
        "reprocessed_as": e.reprocessed_as,
    })
}

fn outcome_class(o: &str) -> &'static str {
    match o {
        "stored" | "duplicate" => "ok",
        _ => "bad",
    }
}

fn page_link(q: &ListQuery, page: u64) -> String {
    let s = serde_urlencoded::to_string([
        ("q", q.q.as_str()),
        ("door", q.door.as_str()),
        ("outcome", q.outcome.as_str()),
        ("page", &page.to_string()),
    ])
    .unwrap_or_default();
    format!("/messages?{s}")
}

/// Links to the previous and next page of a list of `total` entries, [`PAGE`] a page.
pub fn pager(page: u64, total: u64, link: impl Fn(u64) -> String) -> Markup {
    let pages = total.div_ceil(PAGE).max(1);
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href=(link(page - 1)) rel="prev" { "← Newer" } }
            span { "Page " (page) " of " (pages) " (" (total) ")" }
            @if page < pages { a href=(link(page + 1)) rel="next" { "Older →" } }
        }
    }
}

/// The message list.
pub fn messages(q: &ListQuery, total: u64, rows: &[MessageLogEntry]) -> Markup {
    let page = q.page.unwrap_or(1).max(1);
    let sel = |v: &str, cur: &str| v == cur;
    html! {
        form.filters method="get" action="/messages" role="search" {
            div { label for="q" { "Control id, sender or type" } input #q type="search" name="q" value=(q.q); }
            div { label for="door" { "Door" }
                select #door name="door" {
                    @for (v, t) in [("", "any"), ("hl7-http", "HL7 HTTP"), ("mllp", "MLLP"), ("console", "console (re-processed)")] {
                        option value=(v) selected[sel(v, &q.door)] { (t) }
                    }
                }
            }
            div { label for="outcome" { "Outcome" }
                select #outcome name="outcome" {
                    @for (v, t) in [("", "any"), ("accepted", "accepted"), ("errors", "errors"), ("rejected", "rejected (AR)"), ("invalid", "invalid (AE)"), ("failed", "failed (store)")] {
                        option value=(v) selected[sel(v, &q.outcome)] { (t) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
        p { "MPPS records are under " a href="/mpps" { "MPPS" } "." }
        @if rows.is_empty() {
            p.empty { "No messages match." }
        } @else {
            div.scroll {
                table.list #messages {
                    caption.sr { "Messages, newest first" }
                    thead { tr { th scope="col" { "Time" } th scope="col" { "Door" } th scope="col" { "Sender" } th scope="col" { "Type" } th scope="col" { "Control id" } th scope="col" { "Outcome" } } }
                    tbody {
                        @for e in rows {
                            tr {
                                td { time datetime=(e.received_at) { (e.received_at.replace('T', " ").trim_end_matches('Z')) } }
                                td { (e.door) }
                                td { (e.sender) }
                                td { (e.message_type) }
                                td { a href={"/messages/" (e.seq)} { @if e.message_id.is_empty() { "(none)" } @else { (e.message_id) } } }
                                td { span class={"badge " (outcome_class(&e.outcome))} { (e.outcome) }
                                    @if let Some(n) = e.reprocessed_as { " " a href={"/messages/" (n)} { "→ re-processed" } } }
                            }
                        }
                    }
                }
            }
        }
        (pager(page, total, |p| page_link(q, p)))
    }
}

/// Where the error is, as `(segment name, occurrence, segment position, field)`.
fn highlight(loc: &str) -> (Option<(String, usize)>, Option<usize>, Option<usize>) {
    // `segment 2, field 7, byte 57` (the parser's position).
    if let Some(rest) = loc.strip_prefix("segment ") {
        let mut seg = None;
        let mut field = None;
        for part in std::iter::once(rest).chain(loc.split(", ").skip(1)) {
            let part = part.split(',').next().unwrap_or_default();
            if let Some(f) = part.strip_prefix("field ") {
                field = f.trim().parse().ok();
            } else if seg.is_none() {
                seg = part.trim().parse().ok();
            }
        }
        return (None, seg, field);
    }
    // `PID-7`, `PID(2)-3-1` (an ERR location or a field named in the error).
    let Some((seg, rest)) = loc.split_once('-') else {
        return (None, None, None);
    };
    let (name, occ) = match seg.split_once('(') {
        Some((n, o)) => (n, o.trim_end_matches(')').parse().unwrap_or(1)),
        None => (seg, 1),
    };
    let field = rest.split(['-', '(']).next().and_then(|f| f.parse().ok());
    (Some((name.to_owned(), occ)), None, field)
}

type Segments = Vec<(String, usize, Vec<(usize, String)>)>;

/// Segments and fields of an HL7 v2 message: through `xenrad-hl7v2`'s parser, or (a
/// message it refused) split on the separators so the operator still sees it.
fn v2_segments(raw: &[u8]) -> (Segments, Option<String>) {
    match xenrad_hl7v2::Message::parse(raw) {
        Ok(m) => (
            m.segments()
                .map(|s| {
                    let fields = s
                        .fields()
                        .enumerate()
                        .map(|(i, f)| (i + 1, String::from_utf8_lossy(f.raw()).into_owned()))
                        .collect();
                    (s.name().to_owned(), s.index(), fields)
                })
                .collect(),
            None,
        ),
        Err(e) => {
            let sep = if raw.len() > 3 && raw.starts_with(b"MSH") {
                raw[3]
            } else {
                b'|'
            };
            let segs =
                raw.split(|b| *b == b'\r' || *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .enumerate()
                    .map(|(i, line)| {
                        let parts: Vec<&[u8]> = line.split(|b| *b == sep).collect();
                        let name = String::from_utf8_lossy(parts[0]).into_owned();
                        let fields =
                            if name == "MSH" {
                                std::iter::once((1, char::from(sep).to_string()))
                                    .chain(parts.iter().skip(1).enumerate().map(|(j, p)| {
                                        (j + 2, String::from_utf8_lossy(p).into_owned())
                                    }))
                                    .collect()
                            } else {
                                parts
                                    .iter()
                                    .skip(1)
                                    .enumerate()
                                    .map(|(j, p)| (j + 1, String::from_utf8_lossy(p).into_owned()))
                                    .collect()
                            };
                        (name, i + 1, fields)
                    })
                    .collect();
            (segs, Some(e.to_string()))
        }
    }
}

/// The raw message with segment and field names; the field at `loc` is marked.
pub fn v2_view(raw: &[u8], loc: &str) -> Markup {
    let (segs, parse_error) = v2_segments(raw);
    let (by_name, by_index, field) = highlight(loc);
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    html! {
        @if let Some(e) = parse_error {
            p.parse-error role="alert" #parse-error { "Parser: " (e) }
        }
        div.segments {
            @for (name, index, fields) in &segs {
                @let occ = { let n = seen.entry(name.clone()).or_default(); *n += 1; *n };
                @let seg_hit = by_index == Some(*index) || by_name.as_ref().is_some_and(|(n, o)| n == name && *o == occ);
                details.segment open[seg_hit || segs.len() <= 12] class=[seg_hit.then_some("hit")] {
                    summary {
                        span.segid { (name) } " "
                        @if let Some(n) = segment_name(name) { span.segname { (n) } }
                        @if seg_hit { " " span.badge.bad { "error here" } }
                    }
                    table.fields {
                        caption.sr { (name) " fields" }
                        thead { tr { th scope="col" { "Field" } th scope="col" { "Name" } th scope="col" { "Value" } } }
                        tbody {
                            @for (n, v) in fields {
                                @let hit = seg_hit && field == Some(*n);
                                tr class=[hit.then_some("hit")] id=[hit.then_some("error-field")] {
                                    th scope="row" { (name) "-" (n) }
                                    td { (field_name(name, *n).unwrap_or("")) }
                                    td { code { (v) } @if hit { " " span.badge.bad { "error" } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn text_lines(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn pretty_json(s: &str) -> String {
    serde_json::from_str::<Value>(s)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| s.to_owned())
}

/// One message.
pub fn message(v: &MessageView) -> Markup {
    let e = &v.entry;
    let v3 = e.protocol == "hl7v3";
    html! {
        dl.summary #summary {
            div { dt { "Time" } dd { (e.received_at) } }
            div { dt { "Door" } dd { (e.door) } }
            div { dt { "Protocol" } dd { (e.protocol) } }
            div { dt { "Sender" } dd { (e.sender) } }
            div { dt { "Type" } dd { (e.message_type) } }
            div { dt { "Control id" } dd #control-id { (e.message_id) } }
            div { dt { "Outcome" } dd { span #outcome class={"badge " (outcome_class(&e.outcome))} { (e.outcome) } } }
            @if !e.error.is_empty() { div { dt { "Error" } dd #error { (e.error) } } }
            @if !e.error_location.is_empty() { div { dt { "Position" } dd #error-position { (e.error_location) } } }
            @if let Some(n) = e.reprocessed_as { div { dt { "Re-processed" } dd { a href={"/messages/" (n)} { "as entry " (n) } } } }
        }
        section aria-labelledby="content-h" {
            h2 #content-h { "Content" }
            @match &e.body {
                Some(b) if v3 => pre.raw { code { (String::from_utf8_lossy(b)) } },
                Some(b) => (v2_view(b, &e.error_location)),
                None => p.empty { "The content of this message is no longer kept (the log keeps the content of the newest failures only)." },
            }
        }
        section aria-labelledby="ack-h" {
            h2 #ack-h { "Acknowledgement" }
            pre.raw #ack { code { (text_lines(&e.ack)) } }
        }
        section aria-labelledby="res-h" {
            h2 #res-h { "FHIR resources produced" }
            @if v.resources.is_empty() {
                p.empty { @if matches!(e.outcome.as_str(), "stored" | "duplicate") { "None (this message type projects nothing, or it was v3)." } @else { "None: the message was not stored." } }
            } @else {
                ul.resources {
                    @for (t, id, json) in &v.resources {
                        li { details { summary { (t) "/" (id) } pre.raw { code { (pretty_json(json)) } } } }
                    }
                }
            }
        }
        section aria-labelledby="re-h" {
            h2 #re-h { "Re-process" }
            form.reprocess method="post" action={"/messages/" (e.seq) "/reprocess"} {
                label for="content" { "Message content (edit to fix it, one segment per line)" }
                textarea #content name="content" rows="10" spellcheck="false" {
                    @if let Some(b) = &e.body { @if v3 { (String::from_utf8_lossy(b)) } @else { (text_lines(b)) } }
                }
                button type="submit" #reprocess { "Re-process" }
            }
        }
    }
}

/// The MPPS list.
pub fn mpps_list(page: u64, total: u64, rows: &[MppsRow]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No MPPS records yet." }
        } @else {
            div.scroll {
                table.list #mpps {
                    caption.sr { "MPPS records, latest change first" }
                    thead { tr { th scope="col" { "Updated" } th scope="col" { "SOP Instance UID" } th scope="col" { "Status" } th scope="col" { "Study" } th scope="col" { "Version" } } }
                    tbody {
                        @for r in rows {
                            @let (status, study, _) = super::mpps_view(&r.uid, r.version, &r.state);
                            tr {
                                td { (r.updated_at) }
                                td { a href={"/mpps/" (r.uid)} { (r.uid) } }
                                td { span.badge class=(if status == "DISCONTINUED" { "bad" } else { "ok" }) { (status) } }
                                td { @if study.is_empty() { "–" } @else { a href={"/studies/" (study)} { (study) } } }
                                td { (r.version) }
                            }
                        }
                    }
                }
            }
        }
        (pager(page, total, |p| format!("/mpps?page={p}")))
    }
}

/// One MPPS record.
pub fn mpps_one(
    uid: &str,
    version: u64,
    status: &str,
    study: &str,
    json: &str,
    procedure: Option<&(String, String)>,
) -> Markup {
    html! {
        dl.summary {
            div { dt { "SOP Instance UID" } dd { (uid) } }
            div { dt { "Status" } dd #mpps-status { (status) } }
            div { dt { "Version" } dd { (version) } }
            div { dt { "Study" } dd { @if study.is_empty() { "–" } @else { a href={"/studies/" (study)} { (study) } } } }
        }
        h2 { "Attributes" }
        pre.raw { code { (json) } }
        h2 { "FHIR Procedure" }
        @match procedure {
            Some((id, j)) => details { summary { "Procedure/" (id) } pre.raw { code { (pretty_json(j)) } } },
            None => p.empty { "None." },
        }
    }
}

/// The study list.
pub fn studies(q: &str, page: u64, total: u64, rows: &[StudySummary]) -> Markup {
    html! {
        form.filters method="get" action="/studies" role="search" {
            div { label for="sq" { "Patient, ID, accession or study" } input #sq type="search" name="q" value=(q); }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p.empty { "No studies match." }
        } @else {
            div.scroll {
                table.list #studies {
                    caption.sr { "Studies, newest first" }
                    thead { tr { th scope="col" { "Patient" } th scope="col" { "Patient ID" } th scope="col" { "Date" } th scope="col" { "Description" } th scope="col" { "Modalities" } th scope="col" { "Series" } th scope="col" { "Instances" } } }
                    tbody {
                        @for s in rows {
                            tr {
                                td { a href={"/studies/" (s.uid)} { @if s.patient_name.is_empty() { "(no name)" } @else { (s.patient_name.replace('^', " ")) } } }
                                td { (s.patient_id) }
                                td { (s.date) }
                                td { (s.description) }
                                td { (s.modalities.join(", ")) }
                                td { (s.series.len()) }
                                td { (s.instances) }
                            }
                        }
                    }
                }
            }
        }
        (pager(page, total, |p| format!("/studies?{}", serde_urlencoded::to_string([("q", q), ("page", &p.to_string())]).unwrap_or_default())))
    }
}

/// One study.
pub fn study(s: &StudySummary, links: &StudyLinks) -> Markup {
    html! {
        dl.summary {
            div { dt { "Patient" } dd { (s.patient_name.replace('^', " ")) } }
            div { dt { "Patient ID" } dd { (s.patient_id) } }
            div { dt { "Date" } dd { (s.date) } }
            div { dt { "Accession" } dd { (s.accession) } }
            div { dt { "Study Instance UID" } dd { (s.uid) } }
            div { dt { "MPPS" } dd #study-mpps {
                @if links.mpps.is_empty() { "none" }
                @for (uid, status) in &links.mpps { a href={"/mpps/" (uid)} { (status) } " " }
            } }
            div { dt { "Order" } dd { @match &links.order { Some((id, _)) => { "ServiceRequest/" (id) }, None => "none found by accession" } } }
        }
        @for (uid, modality, number, desc, instances) in &s.series {
            section.series aria-label={"Series " (number) " " (desc)} {
                h2 { "Series " (number) " · " (modality) " · " (desc) }
                p.uid { (uid) }
                ul.thumbs {
                    @for (sop, inst_no, ts) in instances {
                        li {
                            figure {
                                img src={"/thumbnail/" (sop)} width="160" height="160" loading="lazy"
                                    alt={"Instance " (inst_no) " of series " (number)};
                                figcaption { "Instance " (inst_no) br; small { (ts) } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some((id, j)) = &links.imaging_study {
            h2 { "FHIR ImagingStudy" }
            details { summary { "ImagingStudy/" (id) } pre.raw { code { (pretty_json(j)) } } }
        }
        @if let Some((id, j)) = &links.order {
            h2 { "Order" }
            details { summary { "ServiceRequest/" (id) } pre.raw { code { (pretty_json(j)) } } }
        }
    }
}

/// What stands in for a thumbnail the decoder cannot make.
pub fn no_preview_svg(ts: &str) -> String {
    let ts: String = ts
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160" viewBox="0 0 160 160"><rect width="160" height="160" fill="#222"/><text x="80" y="76" fill="#eee" font-size="13" text-anchor="middle" font-family="sans-serif">no preview</text><text x="80" y="96" fill="#ccc" font-size="9" text-anchor="middle" font-family="sans-serif">{ts}</text></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_parser_and_err_positions() {
        assert_eq!(
            highlight("segment 2, field 7, byte 57"),
            (None, Some(2), Some(7))
        );
        assert_eq!(highlight("PID-7"), (Some(("PID".into(), 1)), None, Some(7)));
        assert_eq!(
            highlight("OBX(2)-5-1"),
            (Some(("OBX".into(), 2)), None, Some(5))
        );
        assert_eq!(highlight(""), (None, None, None));
    }

    #[test]
    fn shows_field_names_and_marks_the_error() {
        let raw = b"MSH|^~\\&|APP|FAC|XEN|FAC|20240101||ADT^A08|C-9|P|2.5.1\rPID|1||ID1||Doe^John||not-a-date|M\r";
        let html = v2_view(raw, "PID-7").into_string();
        assert!(html.contains("Message Control ID"));
        assert!(html.contains("Date/Time of Birth"));
        assert!(html.contains("id=\"error-field\""));
        assert!(html.contains("not-a-date"));
    }

    #[test]
    fn a_message_the_parser_refuses_is_still_shown() {
        let raw = b"MSH|^~\\&|APP|FAC\rP\x01D|1\r";
        let html = v2_view(raw, "segment 2, byte 20").into_string();
        assert!(html.contains("Parser: "));
        assert!(html.contains("Sending Facility"));
    }

    #[test]
    fn escapes_content() {
        let raw = b"MSH|^~\\&|<script>|FAC|XEN|FAC|20240101||ADT^A08|C|P|2.5.1\r";
        let html = v2_view(raw, "").into_string();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
