//! Orders → scheduled procedure steps (pure): ORM^O01, OMI^O23 and OMG^O19 read through
//! xenrad-hl7v2's typed views into [`OrderMessage`] facts, one [`StepFacts`] per order group
//! (ORC with its TQ1/OBR/IPC segments; an OMI order with several IPC segments has one step
//! per IPC). No store, no clock, no randomness: the Study Instance UID is the order's (IPC-3,
//! else ZDS-1) or `None`, and the store generates one for a new step and keeps it.
//!
//! The two tables below are the documented mapping (the gateway README repeats them); each
//! row has its own test in this module.
//!
//! **Order control** (ORC-1, HL7 table 0119; ORC-5 order status, table 0038):
//!
//! | ORC-1 | ORC-5 | worklist | SPS status | ServiceRequest.status |
//! |---|---|---|---|---|
//! | NW (new order) | any | item added (a redelivery updates it) | SCHEDULED | active |
//! | SN (send order number: new order from the filler) | any | item added | SCHEDULED | active |
//! | XO (change order) | any | item updated, Study Instance UID kept | SCHEDULED | active |
//! | SC (status changed) | IP | item kept, updated | STARTED | active |
//! | SC | CM | item removed | COMPLETED | completed |
//! | SC | CA | item removed | CANCELED | revoked |
//! | SC | DC | item removed | DISCONTINUED | revoked |
//! | SC | HD | item removed | (unchanged) | on-hold |
//! | SC | SC, other, empty | item updated | SCHEDULED | active |
//! | CA (cancel), OC (order canceled) | any | item removed | CANCELED | revoked |
//! | DC (discontinue), OD (order discontinued) | any | item removed | DISCONTINUED | revoked |
//! | any other | any | unchanged | (unchanged) | as the order status says (CM completed, CA/DC revoked, HD on-hold, else active) |
//!
//! **Fields** (IHE RAD TF-2 4.4 / 4.5 and Appendix B, DICOM PS3.4 Table K.6-1):
//!
//! | DICOM attribute | from |
//! |---|---|
//! | Patient's Name (0010,0010) | PID-5 (family^given^middle) |
//! | Patient ID (0010,0020), Issuer of Patient ID (0010,0021) | PID-3 first repetition, its CX-4 namespace |
//! | Patient's Birth Date (0010,0030), Sex (0010,0040) | PID-7, PID-8 |
//! | Accession Number (0008,0050) | IPC-1, else OBR-18 (required for NW/SN/XO/SC) |
//! | Requested Procedure ID (0040,1001) | IPC-2, else OBR-19, else the accession number |
//! | Study Instance UID (0020,000D) | IPC-3, else ZDS-1, else generated once by the store |
//! | Requested Procedure Description (0032,1060) | OBR-44 text, else OBR-4 text |
//! | Requested Procedure Code Sequence (0032,1064) | OBR-44, else OBR-4 |
//! | Placer / Filler Order Number (0040,2016 / 0040,2017) | ORC-2 / ORC-3, else OBR-2 / OBR-3 |
//! | Referring Physician's Name (0008,0090) | PV1-8 |
//! | Requesting Physician (0032,1032) | OBR-16, else ORC-12 |
//! | Admission ID (0038,0010) | PV1-19 |
//! | Reason for the Requested Procedure (0040,1002) | OBR-31 |
//! | Requested Procedure Priority (0040,1003) | TQ1-9 (S → STAT, A → HIGH, R → ROUTINE, else empty) |
//! | SPS Sequence (0040,0100) › Scheduled Station AE Title (0040,0001) | IPC-9 |
//! | › SPS Start Date / Time (0040,0002 / 0040,0003) | TQ1-7, else OBR-27-4, else ORC-7-4, else OBR-36, else OBR-7 |
//! | › Modality (0008,0060) | IPC-5, else OBR-24 |
//! | › SPS Description (0040,0007) | IPC-6 text, else the requested procedure description |
//! | › Scheduled Protocol Code Sequence (0040,0008) | IPC-6 |
//! | › SPS ID (0040,0009) | IPC-4, else OBR-20, else the requested procedure ID |
//! | › Scheduled Station Name (0040,0010) | IPC-7 |
//! | › SPS Location (0040,0011) | IPC-8, else PV1-3 |
//! | › SPS Status (0040,0020) | the order control table |
//!
//! The accession's identifier system (FHIR `ServiceRequest.identifier` typed `ACSN`) is the
//! site's `--accession-system` when given; else derived from the filler's assigning authority
//! (ORC-3, which assigns accession numbers in IHE SWF), else the placer's (ORC-2): EI-3 as
//! `urn:oid:` when EI-4 is `ISO`, EI-3 as is when it is a URI, else the EI-2 namespace; else
//! the sending application (MSH-3).

use std::borrow::Cow;
use xenrad_hl7v2::Message;
use xenrad_hl7v2::datetime::{DateTime, Precision};
use xenrad_hl7v2::views::{Coded, EntityId, Ipc, Obr, Orc, Tq1};

/// What an order control (with its order status) does to the worklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorklistChange {
    /// Add the step, or update it (its Study Instance UID kept).
    Upsert,
    /// Remove the step (a completed or discontinued step leaves the worklist).
    Remove,
    /// Leave the worklist as it is.
    Unchanged,
}

/// One row of the order control table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderEffect {
    /// Worklist change.
    pub worklist: WorklistChange,
    /// Scheduled Procedure Step Status (0040,0020) the step gets (PS3.3 C.4.10 defined
    /// terms); empty: unchanged. A removed step keeps it (it shows when the site keeps
    /// finished steps listed).
    pub sps_status: &'static str,
    /// FHIR ServiceRequest.status.
    pub request_status: &'static str,
}

/// The order control table (module docs): ORC-1 and ORC-5 → worklist change, SPS status and
/// ServiceRequest.status.
#[allow(clippy::match_same_arms)] // one arm per row of the documented table
pub fn order_effect(control: &str, status: Option<&str>) -> OrderEffect {
    use WorklistChange::{Remove, Unchanged, Upsert};
    let e = |worklist, sps_status, request_status| OrderEffect {
        worklist,
        sps_status,
        request_status,
    };
    match (control, status.unwrap_or("")) {
        ("NW" | "SN" | "XO", _) => e(Upsert, "SCHEDULED", "active"),
        ("SC", "IP") => e(Upsert, "STARTED", "active"),
        ("SC", "CM") => e(Remove, "COMPLETED", "completed"),
        ("SC", "CA") => e(Remove, "CANCELED", "revoked"),
        ("SC", "DC") => e(Remove, "DISCONTINUED", "revoked"),
        ("SC", "HD") => e(Remove, "", "on-hold"),
        ("SC", _) => e(Upsert, "SCHEDULED", "active"),
        ("CA" | "OC", _) => e(Remove, "CANCELED", "revoked"),
        ("DC" | "OD", _) => e(Remove, "DISCONTINUED", "revoked"),
        (_, "CM") => e(Unchanged, "", "completed"),
        (_, "CA" | "DC") => e(Unchanged, "", "revoked"),
        ("HD" | "OH", _) | (_, "HD") => e(Unchanged, "", "on-hold"),
        _ => e(Unchanged, "", "active"),
    }
}

/// A code: (coding system, code, meaning).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Code {
    /// Coding scheme designator (HL7 CE-3; `L` for local codes).
    pub system: String,
    /// Code value.
    pub code: String,
    /// Code meaning.
    pub meaning: String,
}

impl From<Coded<'_>> for Code {
    fn from(c: Coded<'_>) -> Self {
        Code {
            system: c.system.trim().to_owned(),
            code: c.code.trim().to_owned(),
            meaning: c.text.trim().to_owned(),
        }
    }
}

/// An order number with its assigning application (HL7 EI).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderNumber {
    /// EI-1.
    pub id: String,
    /// EI-2 namespace.
    pub namespace: String,
    /// The assigning authority as an identifier system (see the module docs), empty when
    /// the EI names none.
    pub system: String,
}

/// The identifier system of an EI's assigning authority: EI-3 as `urn:oid:` when EI-4 is
/// ISO, EI-3 as is when it is a URI, else the EI-2 namespace.
fn ei_system(e: &EntityId<'_>) -> String {
    let uid = e.universal_id.trim();
    if !uid.is_empty() {
        if e.universal_id_type.eq_ignore_ascii_case("ISO") {
            return format!("urn:oid:{uid}");
        }
        if uid.contains(':') {
            return uid.to_owned();
        }
    }
    e.namespace.trim().to_owned()
}

impl From<EntityId<'_>> for OrderNumber {
    fn from(e: EntityId<'_>) -> Self {
        OrderNumber {
            system: ei_system(&e),
            id: e.id.trim().to_owned(),
            namespace: e.namespace.trim().to_owned(),
        }
    }
}

/// The patient as the worklist item names it (DICOM values).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepPatient {
    /// Patient ID (PID-3-1).
    pub id: String,
    /// Issuer of Patient ID (PID-3-4 namespace).
    pub issuer: String,
    /// Patient's Name, DICOM PN (`family^given^middle`, trailing empties dropped).
    pub name: String,
    /// Patient's Birth Date, DICOM DA (`YYYYMMDD`) or empty.
    pub birth_date: String,
    /// Patient's Sex: `M`, `F`, `O` or empty.
    pub sex: String,
}

/// One scheduled procedure step, as an order describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepFacts {
    /// Placer order number (ORC-2, else OBR-2).
    pub placer: Option<OrderNumber>,
    /// Filler order number (ORC-3, else OBR-3).
    pub filler: Option<OrderNumber>,
    /// Accession Number.
    pub accession: String,
    /// The accession's identifier system (site setting, else derived; module docs).
    pub accession_system: String,
    /// Requested Procedure ID.
    pub requested_procedure_id: String,
    /// Requested procedure code.
    pub procedure: Option<Code>,
    /// Scheduled Procedure Step ID.
    pub sps_id: String,
    /// SPS description.
    pub sps_description: String,
    /// Scheduled protocol code.
    pub protocol: Option<Code>,
    /// Modality.
    pub modality: String,
    /// Scheduled Station AE Title.
    pub station_ae: String,
    /// Scheduled Station Name.
    pub station_name: String,
    /// SPS location.
    pub location: String,
    /// SPS start date (DA) and time (TM); empty when the order gives none.
    pub start_date: String,
    /// See `start_date`.
    pub start_time: String,
    /// Study Instance UID from the order (IPC-3, ZDS-1); `None`: the store generates one.
    pub study_uid: Option<String>,
    /// Referring Physician's Name (PN).
    pub referring: String,
    /// Requesting Physician (PN).
    pub requesting: String,
    /// Admission ID (PV1-19).
    pub admission_id: String,
    /// Reason for the requested procedure (OBR-31).
    pub reason: String,
    /// Requested Procedure Priority (STAT, HIGH, ROUTINE) or empty.
    pub priority: String,
    /// SPS status of an upserted step (order control table).
    pub sps_status: &'static str,
    /// The patient.
    pub patient: StepPatient,
}

impl StepFacts {
    /// The step's key in the store: accession and SPS ID (unique per PS3.4 K.6-1 within an
    /// issuer; the accession system keeps two sites apart).
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.accession_system, self.accession, self.sps_id
        )
    }
}

/// An order message reduced to its worklist effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderMessage {
    /// The order control table row of the (first) ORC.
    pub effect: OrderEffect,
    /// ORC-1 as sent.
    pub control: String,
    /// One step per order group (per IPC in OMI).
    pub steps: Vec<StepFacts>,
}

/// Why an order cannot become a worklist step (the message is refused whole: nothing is
/// written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderError {
    /// The HL7 field at fault (`OBR-18`, `ORC-1`, ...), for ERR-2.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Site settings of the mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderSettings {
    /// The accession number's identifier system; `None`: derived (module docs).
    pub accession_system: Option<String>,
}

fn s(c: Option<Cow<'_, str>>) -> String {
    c.map(|c| c.trim().to_owned()).unwrap_or_default()
}

/// DICOM PN from HL7 name components (trailing empty components dropped).
fn pn(parts: &[&str]) -> String {
    let mut v: Vec<&str> = parts.iter().map(|p| p.trim()).collect();
    while v.last().is_some_and(|p| p.is_empty()) {
        v.pop();
    }
    v.join("^")
}

/// DICOM DA and TM of an HL7 DTM, to its precision (a date alone has no time).
pub fn dicom_date_time(t: &DateTime) -> (String, String) {
    let date = t.value.format("%Y%m%d").to_string();
    let time = match t.precision {
        Precision::Year | Precision::Month | Precision::Day => String::new(),
        Precision::Hour => t.value.format("%H").to_string(),
        Precision::Minute => t.value.format("%H%M").to_string(),
        _ => t.value.format("%H%M%S").to_string(),
    };
    (date, time)
}

/// One order group: the ORC and the TQ1/OBR/IPC segments that follow it.
#[derive(Default)]
struct Group<'a> {
    orc: Option<Orc<'a>>,
    tq1: Option<Tq1<'a>>,
    obr: Option<Obr<'a>>,
    ipcs: Vec<Ipc<'a>>,
}

fn groups<'a>(m: &Message<'a>) -> Vec<Group<'a>> {
    let mut out: Vec<Group<'a>> = Vec::new();
    for seg in m.segments() {
        match seg.name() {
            "ORC" => out.push(Group {
                orc: Some(Orc(seg)),
                ..Group::default()
            }),
            "TQ1" | "OBR" | "IPC" => {
                if out.is_empty() {
                    out.push(Group::default());
                }
                let g = out.last_mut().expect("a group");
                match seg.name() {
                    "TQ1" => {
                        g.tq1.get_or_insert(Tq1(seg));
                    }
                    "OBR" => {
                        if g.obr.is_some() {
                            // A second OBR under one ORC (ORM allows it): its own group,
                            // sharing the ORC.
                            let orc = g.orc;
                            out.push(Group {
                                orc,
                                obr: Some(Obr(seg)),
                                ..Group::default()
                            });
                        } else {
                            g.obr = Some(Obr(seg));
                        }
                    }
                    _ => g.ipcs.push(Ipc(seg)),
                }
            }
            _ => {}
        }
    }
    out.retain(|g| g.obr.is_some() || !g.ipcs.is_empty());
    out
}

fn priority(tq1: Option<&Tq1<'_>>) -> String {
    match tq1.and_then(Tq1::priority).as_deref() {
        Some("S") => "STAT",
        Some("A") => "HIGH",
        Some("R") => "ROUTINE",
        _ => "",
    }
    .to_owned()
}

/// The patient of a step from PID.
fn patient(m: &Message<'_>) -> StepPatient {
    let Some(pid) = m.pid() else {
        return StepPatient::default();
    };
    let first = pid.identifiers().into_iter().next();
    let name = pid
        .name()
        .map(|n| pn(&[&n.family, &n.given, &n.middle]))
        .unwrap_or_default();
    StepPatient {
        id: first
            .as_ref()
            .map(|i| i.id.trim().to_owned())
            .unwrap_or_default(),
        issuer: first
            .map(|i| i.authority.trim().to_owned())
            .unwrap_or_default(),
        name,
        birth_date: pid
            .birth_date()
            .map(|d| d.value.format("%Y%m%d").to_string())
            .unwrap_or_default(),
        sex: match pid.sex().as_deref().map(str::trim) {
            Some(x @ ("M" | "F" | "O")) => x.to_owned(),
            _ => String::new(),
        },
    }
}

/// Reads an order message (ORM^O01, OMI^O23, OMG^O19) into its worklist effect. Errors name
/// the field at fault: no ORC/OBR, or (for an order control that schedules) no accession.
pub fn read_order(m: &Message<'_>, settings: &OrderSettings) -> Result<OrderMessage, OrderError> {
    let groups = groups(m);
    let Some(first) = groups.first() else {
        return Err(OrderError {
            field: "OBR",
            message: "the order has no OBR (or IPC) segment".into(),
        });
    };
    let control = first
        .orc
        .and_then(|o| o.order_control())
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OrderError {
            field: "ORC-1",
            message: "order control is empty".into(),
        })?;
    let status = first.orc.and_then(|o| o.order_status());
    let effect = order_effect(&control, status.as_deref().map(str::trim));
    let patient = patient(m);
    let pv1 = m.pv1();
    let referring = pv1
        .and_then(|p| p.referring_doctor())
        .map(|d| pn(&[&d.family, &d.given]))
        .unwrap_or_default();
    let admission_id = s(pv1.and_then(|p| p.visit_number()));
    let pv1_location = s(pv1.and_then(|p| p.assigned_location()));
    let zds_uid = m
        .segments_named("ZDS")
        .find_map(|z| xenrad_hl7v2::views::Zds(z).study_instance_uid())
        .map(|u| u.trim().to_owned());
    let sending_app = m
        .sending_application()
        .and_then(|f| f.component(1))
        .map(|c| c.text().trim().to_owned())
        .unwrap_or_default();
    let mut steps = Vec::new();
    for g in &groups {
        let obr = g.obr;
        let placer = g
            .orc
            .and_then(|o| o.placer_order())
            .or_else(|| obr.and_then(|o| o.placer_order()))
            .map(OrderNumber::from);
        let filler = g
            .orc
            .and_then(|o| o.filler_order())
            .or_else(|| obr.and_then(|o| o.filler_order()))
            .map(OrderNumber::from);
        let accession_system = settings
            .accession_system
            .clone()
            .filter(|x| !x.is_empty())
            .or_else(|| {
                filler
                    .as_ref()
                    .map(|f| f.system.clone())
                    .filter(|x| !x.is_empty())
            })
            .or_else(|| {
                placer
                    .as_ref()
                    .map(|p| p.system.clone())
                    .filter(|x| !x.is_empty())
            })
            .unwrap_or_else(|| sending_app.clone());
        let procedure: Option<Code> = obr
            .and_then(|o| o.procedure_code())
            .or_else(|| obr.and_then(|o| o.service()))
            .map(Code::from);
        let requested_description = procedure
            .as_ref()
            .map(|p| p.meaning.clone())
            .unwrap_or_default();
        let start = g
            .tq1
            .and_then(|t| t.start())
            .or_else(|| obr.and_then(|o| o.quantity_timing_start()))
            .or_else(|| g.orc.and_then(|o| o.quantity_timing_start()))
            .or_else(|| obr.and_then(|o| o.scheduled_time()))
            .or_else(|| obr.and_then(|o| o.observation_time()));
        let (start_date, start_time) = start.as_ref().map(dicom_date_time).unwrap_or_default();
        let requesting = obr
            .and_then(|o| o.ordering_provider())
            .or_else(|| g.orc.and_then(|o| o.ordering_provider()))
            .map(|d| pn(&[&d.family, &d.given]))
            .unwrap_or_default();
        // One step per IPC (OMI), else one for the OBR.
        let ipcs: Vec<Option<Ipc<'_>>> = if g.ipcs.is_empty() {
            vec![None]
        } else {
            g.ipcs.iter().copied().map(Some).collect()
        };
        for ipc in ipcs {
            let accession = s(ipc
                .and_then(|i| i.accession_number())
                .or_else(|| obr.and_then(|o| o.accession_number())));
            if accession.is_empty() && effect.worklist == WorklistChange::Upsert {
                return Err(OrderError {
                    field: "OBR-18",
                    message: "no accession number (IPC-1 or OBR-18): the order cannot be \
                              scheduled"
                        .into(),
                });
            }
            let requested_procedure_id = s(ipc
                .and_then(|i| i.requested_procedure_id())
                .or_else(|| obr.and_then(|o| o.requested_procedure_id())));
            let requested_procedure_id = if requested_procedure_id.is_empty() {
                accession.clone()
            } else {
                requested_procedure_id
            };
            let sps_id = s(ipc
                .and_then(|i| i.scheduled_procedure_step_id())
                .or_else(|| obr.and_then(|o| o.scheduled_procedure_step_id())));
            let sps_id = if sps_id.is_empty() {
                requested_procedure_id.clone()
            } else {
                sps_id
            };
            let protocol = ipc.and_then(|i| i.protocol_code()).map(Code::from);
            let sps_description = protocol
                .as_ref()
                .map(|p| p.meaning.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| requested_description.clone());
            let location = s(ipc.and_then(|i| i.scheduled_location()));
            let study_uid = ipc
                .and_then(|i| i.study_instance_uid())
                .map(|u| u.trim().to_owned())
                .or_else(|| zds_uid.clone())
                .filter(|u| !u.is_empty());
            if let Some(u) = &study_uid
                && !is_uid(u)
            {
                return Err(OrderError {
                    field: if ipc.is_some() { "IPC-3" } else { "ZDS-1" },
                    message: format!("{u:?} is not a DICOM UID"),
                });
            }
            steps.push(StepFacts {
                placer: placer.clone(),
                filler: filler.clone(),
                accession,
                accession_system: accession_system.clone(),
                requested_procedure_id,
                procedure: procedure.clone(),
                sps_id,
                sps_description,
                protocol,
                modality: s(ipc
                    .and_then(|i| i.modality())
                    .or_else(|| obr.and_then(|o| o.modality()))),
                station_ae: s(ipc.and_then(|i| i.scheduled_station_ae_title())),
                station_name: s(ipc.and_then(|i| i.scheduled_station_name())),
                location: if location.is_empty() {
                    pv1_location.clone()
                } else {
                    location
                },
                start_date: start_date.clone(),
                start_time: start_time.clone(),
                study_uid,
                referring: referring.clone(),
                requesting: requesting.clone(),
                admission_id: admission_id.clone(),
                reason: s(obr.and_then(|o| o.reason_for_study())),
                priority: priority(g.tq1.as_ref()),
                sps_status: effect.sps_status,
                patient: patient.clone(),
            });
        }
    }
    Ok(OrderMessage {
        effect,
        control,
        steps,
    })
}

/// A DICOM UID (PS3.5 9.1): digits and dots, components without leading zeros, ≤ 64 chars.
pub fn is_uid(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(control: &str, status: Option<&str>) -> (WorklistChange, &'static str, &'static str) {
        let e = order_effect(control, status);
        (e.worklist, e.sps_status, e.request_status)
    }

    // The order control table, one row per test.
    #[test]
    fn row_nw_adds_a_scheduled_step() {
        assert_eq!(
            effect("NW", None),
            (WorklistChange::Upsert, "SCHEDULED", "active")
        );
        assert_eq!(
            effect("NW", Some("SC")),
            (WorklistChange::Upsert, "SCHEDULED", "active")
        );
    }
    #[test]
    fn row_sn_adds_a_scheduled_step() {
        assert_eq!(
            effect("SN", None),
            (WorklistChange::Upsert, "SCHEDULED", "active")
        );
    }
    #[test]
    fn row_xo_updates_the_step() {
        assert_eq!(
            effect("XO", Some("SC")),
            (WorklistChange::Upsert, "SCHEDULED", "active")
        );
    }
    #[test]
    fn row_sc_ip_starts_the_step() {
        assert_eq!(
            effect("SC", Some("IP")),
            (WorklistChange::Upsert, "STARTED", "active")
        );
    }
    #[test]
    fn row_sc_cm_removes_and_completes() {
        assert_eq!(
            effect("SC", Some("CM")),
            (WorklistChange::Remove, "COMPLETED", "completed")
        );
    }
    #[test]
    fn row_sc_ca_dc_removes_cancels_or_discontinues_and_revokes() {
        assert_eq!(
            effect("SC", Some("CA")),
            (WorklistChange::Remove, "CANCELED", "revoked")
        );
        assert_eq!(
            effect("SC", Some("DC")),
            (WorklistChange::Remove, "DISCONTINUED", "revoked")
        );
    }
    #[test]
    fn row_sc_hd_removes_and_holds() {
        assert_eq!(
            effect("SC", Some("HD")),
            (WorklistChange::Remove, "", "on-hold")
        );
    }
    #[test]
    fn row_sc_other_updates_the_step() {
        assert_eq!(
            effect("SC", Some("SC")),
            (WorklistChange::Upsert, "SCHEDULED", "active")
        );
        assert_eq!(
            effect("SC", None),
            (WorklistChange::Upsert, "SCHEDULED", "active")
        );
    }
    #[test]
    fn row_ca_oc_removes_and_revokes() {
        assert_eq!(
            effect("CA", None),
            (WorklistChange::Remove, "CANCELED", "revoked")
        );
        assert_eq!(
            effect("OC", Some("CA")),
            (WorklistChange::Remove, "CANCELED", "revoked")
        );
    }
    #[test]
    fn row_dc_od_removes_and_revokes() {
        assert_eq!(
            effect("DC", None),
            (WorklistChange::Remove, "DISCONTINUED", "revoked")
        );
        assert_eq!(
            effect("OD", None),
            (WorklistChange::Remove, "DISCONTINUED", "revoked")
        );
    }
    #[test]
    fn row_other_controls_leave_the_worklist() {
        assert_eq!(
            effect("OK", None),
            (WorklistChange::Unchanged, "", "active")
        );
        assert_eq!(
            effect("RE", Some("CM")),
            (WorklistChange::Unchanged, "", "completed")
        );
        assert_eq!(
            effect("UA", Some("CA")),
            (WorklistChange::Unchanged, "", "revoked")
        );
        assert_eq!(
            effect("HD", None),
            (WorklistChange::Unchanged, "", "on-hold")
        );
    }

    const ORM: &str = "MSH|^~\\&|RIS|RAD|XENRAD|GW|20250124||ORM^O01^ORM_O01|M1|P|2.3.1\r\
PID|1||P1^^^HOSP^MR||DOE^JANE^Q||19700101|F\r\
PV1|1|O|RADWARD|||||D7^HOUSE^GREG|||||||||||V9^^^HOSP^VN\r\
ORC|NW|PL1^RIS|FL1^DSS^1.2.840.99^ISO||SC||^^^202501241430|||||O5^WHO^OLIVIA\r\
OBR|1|PL1^RIS|FL1^DSS|CTH^CT HEAD^L||||||||||||O5^WHO^OLIVIA||ACC1|RP1|SPS1||||CT|||||||HEAD^Headache\r\
ZDS|1.2.3.4^RIS^Application^DICOM\r";

    fn read(raw: &str) -> Result<OrderMessage, OrderError> {
        let m = Message::parse(raw.as_bytes()).expect("parses");
        read_order(&m, &OrderSettings::default())
    }

    fn one(raw: &str) -> StepFacts {
        let o = read(raw).expect("order");
        assert_eq!(o.steps.len(), 1);
        o.steps.into_iter().next().expect("step")
    }

    // The field table, one row per test.
    #[test]
    fn field_patient_name_id_issuer_birth_sex() {
        let p = one(ORM).patient;
        assert_eq!(
            (&*p.name, &*p.id, &*p.issuer, &*p.birth_date, &*p.sex),
            ("DOE^JANE^Q", "P1", "HOSP", "19700101", "F")
        );
    }
    #[test]
    fn field_accession_from_obr18_else_ipc1() {
        assert_eq!(one(ORM).accession, "ACC1");
        let omi =
            ORM.replace("ORM^O01^ORM_O01", "OMI^O23^OMI_O23") + "IPC|ACC2|RP2|1.2.3.5|SPS2|MR\r";
        assert_eq!(one(&omi).accession, "ACC2");
    }
    #[test]
    fn field_requested_procedure_id_from_obr19_else_accession() {
        assert_eq!(one(ORM).requested_procedure_id, "RP1");
        let no_rp = ORM.replace("|ACC1|RP1|SPS1|", "|ACC1||SPS1|");
        assert_eq!(one(&no_rp).requested_procedure_id, "ACC1");
    }
    #[test]
    fn field_study_uid_from_ipc3_else_zds1_else_none() {
        assert_eq!(one(ORM).study_uid.as_deref(), Some("1.2.3.4"));
        let omi = ORM.to_owned() + "IPC|ACC2|RP2|1.2.3.5|SPS2|MR\r";
        assert_eq!(one(&omi).study_uid.as_deref(), Some("1.2.3.5"));
        let none = ORM.replace("ZDS|1.2.3.4^RIS^Application^DICOM\r", "");
        assert_eq!(one(&none).study_uid, None);
    }
    #[test]
    fn field_requested_procedure_code_and_description_from_obr4() {
        let s = one(ORM);
        assert_eq!(
            s.procedure,
            Some(Code {
                system: "L".into(),
                code: "CTH".into(),
                meaning: "CT HEAD".into()
            })
        );
        assert_eq!(s.sps_description, "CT HEAD");
    }
    #[test]
    fn field_placer_and_filler_order_numbers() {
        let s = one(ORM);
        let placer = s.placer.expect("placer");
        assert_eq!((&*placer.id, &*placer.system), ("PL1", "RIS"));
        let filler = s.filler.expect("filler");
        assert_eq!(
            (&*filler.id, &*filler.system),
            ("FL1", "urn:oid:1.2.840.99")
        );
    }
    #[test]
    fn field_referring_requesting_admission_reason() {
        let s = one(ORM);
        assert_eq!(
            (&*s.referring, &*s.requesting, &*s.admission_id, &*s.reason),
            ("HOUSE^GREG", "WHO^OLIVIA", "V9", "Headache")
        );
    }
    #[test]
    fn field_priority_from_tq1_9() {
        assert_eq!(one(ORM).priority, "");
        let with_tq1 = ORM.replace("OBR|1|", "TQ1|1||||||202501241500||S\rOBR|1|");
        assert_eq!(one(&with_tq1).priority, "STAT");
    }
    #[test]
    fn field_sps_start_from_tq1_else_orc7() {
        let s = one(ORM);
        assert_eq!((&*s.start_date, &*s.start_time), ("20250124", "1430"));
        let with_tq1 = ORM.replace("OBR|1|", "TQ1|1||||||20250125093015\rOBR|1|");
        let s = one(&with_tq1);
        assert_eq!((&*s.start_date, &*s.start_time), ("20250125", "093015"));
    }
    #[test]
    fn field_modality_station_sps_id_location_protocol_from_ipc() {
        let omi = ORM.to_owned() + "IPC|ACC1|RP1|1.2.3.5|SPS9|MR|PR1^Plain^L|ST1|ROOM 3|MR_AE\r";
        let s = one(&omi);
        assert_eq!(
            (
                &*s.modality,
                &*s.station_ae,
                &*s.station_name,
                &*s.sps_id,
                &*s.location,
                &*s.sps_description
            ),
            ("MR", "MR_AE", "ST1", "SPS9", "ROOM 3", "Plain")
        );
        assert_eq!(s.protocol.map(|p| p.code).as_deref(), Some("PR1"));
    }
    #[test]
    fn field_modality_sps_id_location_from_obr_and_pv1_without_ipc() {
        let s = one(ORM);
        assert_eq!(
            (&*s.modality, &*s.sps_id, &*s.location, &*s.station_ae),
            ("CT", "SPS1", "RADWARD", "")
        );
        let no_sps = ORM.replace("|ACC1|RP1|SPS1|", "|ACC1|RP1||");
        assert_eq!(one(&no_sps).sps_id, "RP1");
    }
    #[test]
    fn field_sps_status_from_order_control() {
        assert_eq!(one(ORM).sps_status, "SCHEDULED");
        let ip = ORM
            .replace("ORC|NW|", "ORC|SC|")
            .replace("||SC||^^^", "||IP||^^^");
        assert_eq!(one(&ip).sps_status, "STARTED");
    }
    #[test]
    fn omi_with_two_ipcs_has_two_steps_sharing_the_order() {
        let omi = ORM.replace("ORM^O01^ORM_O01", "OMI^O23^OMI_O23")
            + "IPC|ACC1|RP1|1.2.3.5|SPSA|CT\rIPC|ACC1|RP1|1.2.3.5|SPSB|CT\r";
        let o = read(&omi).expect("order");
        let ids: Vec<&str> = o.steps.iter().map(|s| s.sps_id.as_str()).collect();
        assert_eq!(ids, ["SPSA", "SPSB"]);
        assert_ne!(o.steps[0].key(), o.steps[1].key());
    }
    #[test]
    fn accession_system_setting_else_filler_else_placer_else_sender() {
        assert_eq!(one(ORM).accession_system, "urn:oid:1.2.840.99");
        let m = Message::parse(ORM.as_bytes()).expect("parses");
        let set = OrderSettings {
            accession_system: Some("http://hospital.example/accession".into()),
        };
        let o = read_order(&m, &set).expect("order");
        assert_eq!(
            o.steps[0].accession_system,
            "http://hospital.example/accession"
        );
        let placer_only = ORM
            .replace("|FL1^DSS^1.2.840.99^ISO|", "||")
            .replace("|FL1^DSS|", "||");
        assert_eq!(one(&placer_only).accession_system, "RIS");
        let bare = placer_only.replace("|PL1^RIS|", "|PL1|");
        assert_eq!(one(&bare).accession_system, "RIS");
        let bare = bare.replace("MSH|^~\\&|RIS|", "MSH|^~\\&|ORDERS|");
        assert_eq!(one(&bare).accession_system, "ORDERS");
    }

    // Bad input: refused whole, with the field at fault.
    #[test]
    fn an_order_without_accession_is_refused() {
        let e = read(&ORM.replace("|ACC1|RP1|", "||RP1|")).expect_err("refused");
        assert_eq!(e.field, "OBR-18");
    }
    #[test]
    fn a_cancel_without_accession_is_accepted() {
        let ca = ORM
            .replace("ORC|NW|", "ORC|CA|")
            .replace("|ACC1|RP1|", "||RP1|");
        let o = read(&ca).expect("cancel");
        assert_eq!(o.effect.worklist, WorklistChange::Remove);
    }
    #[test]
    fn an_order_without_obr_or_orc1_is_refused() {
        let e = read("MSH|^~\\&|A|B|C|D|2025||ORM^O01|1|P|2.3\rPID|1||P1\rORC|NW|PL1\r")
            .expect_err("no OBR");
        assert_eq!(e.field, "OBR");
        let e = read(&ORM.replace("ORC|NW|", "ORC||")).expect_err("no control");
        assert_eq!(e.field, "ORC-1");
    }
    #[test]
    fn a_study_uid_that_is_not_a_uid_is_refused() {
        let e = read(&ORM.replace("ZDS|1.2.3.4^", "ZDS|1.2.03.x^")).expect_err("bad uid");
        assert_eq!(e.field, "ZDS-1");
    }
    #[test]
    fn uids() {
        assert!(is_uid("1.2.840.10008.1.2"));
        assert!(is_uid("2.25.0"));
        assert!(!is_uid("1.02"));
        assert!(!is_uid("1..2"));
        assert!(!is_uid(""));
    }
}
