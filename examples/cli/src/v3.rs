//! `xenrad v3 …` subcommands: a JSON summary of an HL7 v3 message and its MCCI accept ack.

use std::path::PathBuf;

use serde_json::{Value, json};
use xenrad_hl7v3::types::{AddrPartKind, Ii};
use xenrad_hl7v3::{AckBuilder, AckDetail, AckKind, Header, Outcome};

use super::{CliResult, read_input};

/// Subcommands of `xenrad v3`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Parses a message strictly and prints one JSON object (header, trigger event, patients).
    Json {
        /// Message file, or `-` for standard input.
        file: PathBuf,
    },
    /// Prints the MCCI_IN000002UV01 accept ack for a message (CE/AE with the error when it is
    /// not well-formed; nothing when its acceptAckCode says not to acknowledge).
    Ack {
        /// Message file, or `-` for standard input.
        file: PathBuf,
        /// Use application codes AA/AE/AR instead of commit codes CA/CE/CR.
        #[arg(long)]
        application: bool,
        /// Print the ack even when acceptAckCode is NE (or ER and the message is accepted).
        #[arg(long)]
        always: bool,
    },
}

fn ii(id: Option<&Ii<'_>>) -> Value {
    match id {
        Some(i) => json!({
            "root": i.root,
            "extension": i.extension,
            "null_flavor": i.null_flavor,
        }),
        None => Value::Null,
    }
}

fn header_json(h: &Header<'_>) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    let interaction = h
        .interaction_id
        .as_ref()
        .and_then(|i| i.extension.as_deref())
        .unwrap_or(h.interaction);
    m.insert("interaction_id".into(), json!(interaction));
    m.insert("message_id".into(), ii(h.message_id.as_ref()));
    m.insert("creation_time".into(), json!(h.creation_time));
    m.insert("processing_code".into(), json!(h.processing_code));
    m.insert("processing_mode_code".into(), json!(h.processing_mode_code));
    m.insert("accept_ack_code".into(), json!(h.accept_ack_code));
    m.insert("sender".into(), ii(h.sender.as_ref()));
    m.insert("receiver".into(), ii(h.receiver.as_ref()));
    m.insert("trigger_event".into(), json!(h.trigger_event));
    if h.ack_type_code.is_some() {
        m.insert(
            "acknowledgement".into(),
            json!({ "type_code": h.ack_type_code, "target_message": ii(h.ack_target.as_ref()) }),
        );
    }
    if h.soap {
        m.insert(
            "soap".into(),
            json!({ "message_id": h.wsa_message_id, "action": h.wsa_action }),
        );
    }
    m
}

fn summary(bytes: &[u8]) -> Result<Value, xenrad_hl7v3::V3Error> {
    let msg = xenrad_hl7v3::strict(bytes)?;
    let mut m = header_json(msg.header());
    let patients: Vec<Value> = msg
        .patients()
        .iter()
        .map(|p| {
            let names: Vec<Value> = p
                .names()
                .map(|n| json!({ "use": n.use_(), "given": n.given().collect::<Vec<_>>(), "family": n.family().collect::<Vec<_>>() }))
                .collect();
            let addresses: Vec<Value> = p
                .addresses()
                .map(|a| {
                    let lines: Vec<_> =
                        a.parts().filter(|x| x.kind == AddrPartKind::StreetAddressLine).map(|x| x.value).collect();
                    json!({
                        "use": a.use_(),
                        "lines": lines,
                        "city": a.get(AddrPartKind::City),
                        "state": a.get(AddrPartKind::State),
                        "postal_code": a.get(AddrPartKind::PostalCode),
                        "country": a.get(AddrPartKind::Country),
                    })
                })
                .collect();
            json!({
                "ids": p.ids().map(|i| ii(Some(&i))).collect::<Vec<_>>(),
                "other_ids": p.other_ids().map(|i| ii(Some(&i))).collect::<Vec<_>>(),
                "status": p.status_code(),
                "names": names,
                "gender": p.gender().and_then(|g| g.code()),
                "birth_time": p.birth_time().and_then(|t| t.value),
                "addresses": addresses,
                "telecoms": p.telecoms().map(|t| json!({ "value": t.value, "use": t.use_ })).collect::<Vec<_>>(),
            })
        })
        .collect();
    if !patients.is_empty() {
        m.insert("patients".into(), Value::Array(patients));
    }
    // PDQ/PIX queries (and the query echoed in their responses).
    if let Some(q) = msg.query() {
        let r = q.to_record();
        let ids = |v: &[Ii<'static>]| v.iter().map(|i| ii(Some(i))).collect::<Vec<_>>();
        m.insert(
            "query".into(),
            json!({
                "query_id": ii(r.query_id.as_ref()),
                "status": r.status_code,
                "names": r.names.iter().map(|n| json!({
                    "given": n.given().collect::<Vec<_>>(),
                    "family": n.family().collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "gender": r.gender,
                "birth_time": r.birth_time,
                "patient_ids": ids(&r.living_subject_ids),
                "patient_identifiers": ids(&r.patient_identifiers),
                "data_sources": ids(&r.data_sources),
                "other_ids_scoping_organizations": ids(&r.other_ids_scoping_organizations),
            }),
        );
    }
    if let Some(a) = msg.query_ack() {
        m.insert(
            "query_ack".into(),
            json!({
                "query_id": ii(a.query_id.as_ref()),
                "response_code": a.response_code,
                "total": a.total,
                "current": a.current,
                "remaining": a.remaining,
            }),
        );
    }
    Ok(Value::Object(m))
}

/// Runs one `xenrad v3` subcommand.
pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Json { file } => {
            let bytes = read_input(&file)?;
            let v = summary(&bytes)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Ack {
            file,
            application,
            always,
        } => {
            let bytes = read_input(&file)?;
            let kind = if application {
                AckKind::Application
            } else {
                AckKind::Commit
            };
            // Strict pass first; if it fails, acknowledge with the error using what the header pass read.
            let (outcome, detail, code) = match xenrad_hl7v3::strict(&bytes) {
                Ok(_) => (Outcome::Accept, None, std::process::ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("xenrad: {e}");
                    (
                        Outcome::Error,
                        Some(AckDetail::from_error(&e)),
                        std::process::ExitCode::from(2),
                    )
                }
            };
            let header = xenrad_hl7v3::header(&bytes).unwrap_or_default();
            let mut b = AckBuilder::new(&header, outcome).kind(kind);
            if let Some(d) = detail {
                b = b.detail(d);
            }
            if always || b.is_requested() {
                print!("{}", b.build());
            } else {
                eprintln!(
                    "xenrad: acceptAckCode {:?}: no accept ack",
                    header.accept_ack_code.as_deref().unwrap_or("")
                );
            }
            Ok(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn json_summary_of_a_generated_patient_feed() {
        let msg = xenrad_hl7v3::testgen::message(7, 3);
        let xml = msg.encode();
        let v = summary(xml.as_bytes()).unwrap();
        assert_eq!(v["interaction_id"], "PRPA_IN201301UV02");
        assert_eq!(v["message_id"]["extension"], "MSG00000003");
        assert_eq!(v["trigger_event"], "PRPA_TE201301UV02");
        let rec = &msg.patients[0];
        let p = &v["patients"][0];
        assert_eq!(p["gender"].as_str(), rec.gender.as_deref());
        assert_eq!(p["birth_time"].as_str(), rec.birth_time.as_deref());
        assert_eq!(
            p["ids"][0]["extension"].as_str(),
            rec.ids[0].extension.as_deref()
        );
        let family: Vec<&str> = rec.names[0].family().collect();
        assert_eq!(p["names"][0]["family"][0].as_str(), Some(family[0]));
        assert_eq!(
            p["addresses"].as_array().unwrap().len(),
            rec.addresses.len()
        );
    }

    #[test]
    fn json_summary_of_a_pix_query_built_with_the_encoder() {
        use xenrad_hl7v3::encode::query::QueryMessage;
        use xenrad_hl7v3::payload::QueryRecord;
        use xenrad_hl7v3::types::Ii;
        let id = |r: &str, e: Option<&str>| Ii {
            root: Some(r.to_owned().into()),
            extension: e.map(|e| e.to_owned().into()),
            ..Ii::default()
        };
        let q = QueryMessage {
            transmission: xenrad_hl7v3::encode::patient::TransmissionRecord {
                interaction: "PRPA_IN201309UV02".into(),
                message_id: id("1.2.3", Some("q9")),
                creation_time: "20240102030405".into(),
                receiver: id("1.9", None),
                sender: id("1.8", None),
                ..Default::default()
            },
            query: Some(QueryRecord {
                query_id: Some(id("1.2.3.4", Some("77"))),
                status_code: Some("new".into()),
                patient_identifiers: vec![id("1.2.840.1", Some("P1"))],
                data_sources: vec![id("2.16.840.1.113883.4.1", None)],
                ..QueryRecord::default()
            }),
            ..QueryMessage::default()
        };
        let v = summary(q.encode().as_bytes()).unwrap();
        assert_eq!(v["trigger_event"], "PRPA_TE201309UV02");
        assert_eq!(v["query"]["query_id"]["extension"], "77");
        assert_eq!(v["query"]["patient_identifiers"][0]["extension"], "P1");
        assert_eq!(
            v["query"]["data_sources"][0]["root"],
            "2.16.840.1.113883.4.1"
        );
        assert!(v.get("query_ack").is_none());
    }

    #[test]
    fn json_summary_reports_position_of_errors() {
        let e = summary(b"<a>\n<b></a>").unwrap_err();
        assert_eq!((e.line, e.column), (2, 4));
    }
}
