//! Worklist C-FIND (PS3.4 K.6.1.2) over the store: the query's single-value keys of Table
//! K.6-1 that the store indexes become a [`WorklistFilter`] (exact values and the SPS Start
//! Date range), the store returns the rows that pass it, and xenrad-dimse's K.6 matching
//! (wild cards, PN rules, ranges, sequence matching on the SPS Sequence) decides on those
//! and builds the responses. The filter only ever narrows to a superset of the matches:
//! a key with wild cards, several values or an unknown form is left to the matching.

use super::WorklistRow;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use xenrad_dimse::assoc::policy::ts;
use xenrad_dimse::query::{
    FindOptions, FindQuery, Identifier, QueryError, Worklist, WorklistItem, decode_identifier,
};

/// The indexed-column pre-filter of one worklist query: `None` is universal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorklistFilter {
    /// Accession Number, exact.
    pub accession: Option<String>,
    /// Patient ID, exact.
    pub patient_id: Option<String>,
    /// Requested Procedure ID, exact.
    pub requested_procedure_id: Option<String>,
    /// Study Instance UID, exact.
    pub study_uid: Option<String>,
    /// Scheduled Station AE Title, exact.
    pub station_ae: Option<String>,
    /// Modality, exact.
    pub modality: Option<String>,
    /// SPS Start Date lower bound (`YYYYMMDD`, inclusive).
    pub date_from: Option<String>,
    /// SPS Start Date upper bound (`YYYYMMDD`, inclusive).
    pub date_to: Option<String>,
    /// Placer order number, exact (cancellations find their steps by it).
    pub placer: Option<String>,
    /// Filler order number, exact.
    pub filler: Option<String>,
    /// Listed steps only (C-FIND); `false` also finds the steps that left the worklist.
    pub listed_only: bool,
}

impl WorklistFilter {
    /// Whether a row passes the filter (what the store's SQL does, for tests and for
    /// backends without indexes).
    pub fn admits(&self, r: &WorklistRow) -> bool {
        let eq = |f: &Option<String>, v: &str| f.as_deref().is_none_or(|f| f == v);
        (!self.listed_only || r.listed)
            && eq(&self.placer, &r.placer)
            && eq(&self.filler, &r.filler)
            && eq(&self.accession, &r.accession)
            && eq(&self.patient_id, &r.patient_id)
            && eq(&self.requested_procedure_id, &r.requested_procedure_id)
            && eq(&self.study_uid, &r.study_uid)
            && eq(&self.station_ae, &r.station_ae)
            && eq(&self.modality, &r.modality)
            && self
                .date_from
                .as_deref()
                .is_none_or(|d| r.start_date.as_str() >= d)
            && self
                .date_to
                .as_deref()
                .is_none_or(|d| !r.start_date.is_empty() && r.start_date.as_str() <= d)
    }
}

fn value(obj: &Identifier, tag: Tag) -> Option<String> {
    let v = obj.get(tag)?.to_str().ok()?;
    let v = v.trim_matches(['\0', ' ']).to_owned();
    (!v.is_empty()).then_some(v)
}

/// An exact single value: no wild card, no multiple values.
fn exact(obj: &Identifier, tag: Tag) -> Option<String> {
    value(obj, tag).filter(|v| !v.contains(['*', '?', '\\']))
}

fn is_date(d: &str) -> bool {
    d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())
}

/// The pre-filter of a validated worklist query.
pub fn filter_of(query: &FindQuery) -> WorklistFilter {
    let id = query.identifier();
    let mut f = WorklistFilter {
        accession: exact(id, tags::ACCESSION_NUMBER),
        patient_id: exact(id, tags::PATIENT_ID),
        requested_procedure_id: exact(id, tags::REQUESTED_PROCEDURE_ID),
        study_uid: exact(id, tags::STUDY_INSTANCE_UID),
        listed_only: true,
        ..WorklistFilter::default()
    };
    let sps = id
        .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|i| i.first());
    if let Some(sps) = sps {
        f.station_ae = exact(sps, tags::SCHEDULED_STATION_AE_TITLE);
        f.modality = exact(sps, tags::MODALITY);
        if let Some(d) = value(sps, tags::SCHEDULED_PROCEDURE_STEP_START_DATE) {
            match d.split_once('-') {
                None if is_date(&d) => {
                    f.date_from = Some(d.clone());
                    f.date_to = Some(d);
                }
                Some((a, b)) => {
                    f.date_from = Some(a.trim().to_owned()).filter(|a| is_date(a));
                    f.date_to = Some(b.trim().to_owned()).filter(|b| is_date(b));
                }
                None => {}
            }
        }
    }
    f
}

/// The matches among the rows the store returned for [`filter_of`], as C-FIND response
/// identifiers (the query's keys filled, SPS items filtered, Specific Character Set set), up
/// to `opts.max_matches` (the flag says whether more matched).
pub fn find_in_rows(
    query: &FindQuery,
    rows: Vec<WorklistRow>,
    opts: &FindOptions,
) -> Result<(Vec<Identifier>, bool), QueryError> {
    let mut wl = Worklist::new();
    for r in rows {
        let attributes = decode_identifier(&r.attributes, ts::EXPLICIT_VR_LE)?;
        wl.insert(WorklistItem {
            source: r.step_key.into(),
            attributes,
        });
    }
    let mut m = wl.find(query, opts);
    let out: Vec<Identifier> = m.by_ref().collect();
    Ok((out, m.truncated()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::order::{OrderSettings, read_order};
    use crate::map::worklist::item_row;
    use xenrad_dimse::query::{InformationModel, identifier_from_pairs};
    use xenrad_hl7v2::Message;

    fn row(acc: &str, pid: &str, name: &str, modality: &str, ae: &str, when: &str) -> WorklistRow {
        let raw = format!(
            "MSH|^~\\&|RIS|RAD|X|Y|2025||OMI^O23|1|P|2.5.1\r\
PID|1||{pid}^^^H^MR||{name}\r\
ORC|NW|PL{acc}^RIS\r\
TQ1|1||||||{when}\r\
OBR|1|PL{acc}^RIS||CTH^CT HEAD^L\r\
IPC|{acc}|RP{acc}|1.2.3.{pid}|SPS{acc}|{modality}||||{ae}\r"
        );
        let m = Message::parse(raw.as_bytes()).expect("parses");
        let o = read_order(&m, &OrderSettings::default()).expect("order");
        let s = &o.steps[0];
        item_row(s, s.study_uid.as_deref().expect("uid")).expect("row")
    }

    fn rows() -> Vec<WorklistRow> {
        vec![
            row("A1", "1", "DOE^JANE", "CT", "CT1", "20250124100000"),
            row("A2", "2", "DOE^JOHN", "MR", "MR1", "20250125100000"),
            row("A3", "3", "ROE^RICHARD", "CT", "CT1", "20250126100000"),
        ]
    }

    fn query(pairs: &[(&str, &str)]) -> Result<FindQuery, QueryError> {
        FindQuery::parse(
            identifier_from_pairs(pairs)?,
            InformationModel::ModalityWorklist,
        )
    }

    fn run(pairs: &[(&str, &str)]) -> (WorklistFilter, Vec<String>) {
        let mut pairs = pairs.to_vec();
        if !pairs.iter().any(|(k, _)| *k == "AccessionNumber") {
            // Return key: responses carry the query's keys only.
            pairs.push(("AccessionNumber", ""));
        }
        let q = query(&pairs).expect("query");
        let f = filter_of(&q);
        let admitted: Vec<WorklistRow> = rows().into_iter().filter(|r| f.admits(r)).collect();
        let (found, _) = find_in_rows(&q, admitted, &FindOptions::default()).expect("find");
        let accs = found
            .iter()
            .map(|i| value(i, tags::ACCESSION_NUMBER).unwrap_or_default())
            .collect();
        (f, accs)
    }

    #[test]
    fn exact_keys_become_the_filter() {
        let (f, accs) = run(&[
            ("AccessionNumber", "A2"),
            ("PatientName", ""),
            ("ScheduledProcedureStepSequence.Modality", "MR"),
        ]);
        assert_eq!(f.accession.as_deref(), Some("A2"));
        assert_eq!(f.modality.as_deref(), Some("MR"));
        assert_eq!(accs, ["A2"]);
    }

    #[test]
    fn date_ranges_become_bounds() {
        let (f, accs) = run(&[(
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
            "20250125-",
        )]);
        assert_eq!(
            (f.date_from.as_deref(), f.date_to.as_deref()),
            (Some("20250125"), None)
        );
        assert_eq!(accs, ["A2", "A3"]);
        let (f, accs) = run(&[(
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
            "20250124",
        )]);
        assert_eq!(f.date_to.as_deref(), Some("20250124"));
        assert_eq!(accs, ["A1"]);
        let (_, accs) = run(&[(
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
            "-20250125",
        )]);
        assert_eq!(accs, ["A1", "A2"]);
    }

    #[test]
    fn wild_cards_are_left_to_the_matching() {
        let (f, accs) = run(&[("PatientName", "DOE*"), ("PatientID", "*")]);
        assert_eq!(
            f,
            WorklistFilter {
                listed_only: true,
                ..WorklistFilter::default()
            }
        );
        assert_eq!(accs, ["A1", "A2"]);
        let (f, accs) = run(&[(
            "ScheduledProcedureStepSequence.ScheduledStationAETitle",
            "CT?",
        )]);
        assert_eq!(f.station_ae, None);
        assert_eq!(accs, ["A1", "A3"]);
    }

    #[test]
    fn the_station_ae_and_patient_id_filter() {
        let (f, accs) = run(&[
            ("PatientID", "3"),
            (
                "ScheduledProcedureStepSequence.ScheduledStationAETitle",
                "CT1",
            ),
        ]);
        assert_eq!(
            (f.patient_id.as_deref(), f.station_ae.as_deref()),
            (Some("3"), Some("CT1"))
        );
        assert_eq!(accs, ["A3"]);
    }

    #[test]
    fn a_malformed_date_range_is_refused_with_a900() {
        let e = query(&[(
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
            "2025-01-24",
        )])
        .expect_err("malformed");
        assert_eq!(e.status(), 0xA900);
    }

    #[test]
    fn the_match_limit_truncates() {
        let q = query(&[("PatientName", "")]).expect("query");
        let opts = FindOptions {
            max_matches: Some(2),
            ..FindOptions::default()
        };
        let (found, truncated) = find_in_rows(&q, rows(), &opts).expect("find");
        assert_eq!((found.len(), truncated), (2, true));
    }
}
