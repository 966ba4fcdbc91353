//! Typed, borrowed views of the segments radiology workflows need (HL7 v2.5.1 PID 3.4.2,
//! PV1 3.4.3, ORC 4.5.1, OBR 4.5.3, OBX 7.4.2, IPC 4.5.6, TQ1 4.5.4; ZDS is the IHE SWF / DICOM
//! PS3.17 Z-segment carrying the Study Instance UID). Dates are chrono values with their
//! precision ([`DateTime`]); text is decoded (`Cow<str>`).

use crate::datetime::{DateTime, parse_dtm};
use crate::parse::element::{Field, Segment};
use crate::parse::message::Message;
use std::borrow::Cow;

fn comp<'a>(seg: &Segment<'a>, field: usize, component: usize) -> Option<Cow<'a, str>> {
    let c = seg.field(field)?.component(component)?;
    (!c.is_empty()).then(|| c.text())
}

fn dtm(seg: &Segment<'_>, field: usize) -> Option<DateTime> {
    parse_dtm(&comp(seg, field, 1)?).ok()
}

/// An extended composite ID (CX): ID, assigning authority namespace, identifier type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identifier<'a> {
    /// CX-1 ID number.
    pub id: Cow<'a, str>,
    /// CX-4-1 assigning authority namespace ID.
    pub authority: Cow<'a, str>,
    /// CX-5 identifier type code (table 0203: MR, AN, SS, ...).
    pub type_code: Cow<'a, str>,
}

fn identifiers(f: Option<Field<'_>>) -> Vec<Identifier<'_>> {
    f.map(|f| {
        f.repetitions()
            .filter(|r| !r.is_empty())
            .map(|r| {
                let c = |n| r.component(n).map_or(Cow::Borrowed(""), |c| c.text());
                Identifier {
                    id: c(1),
                    authority: c(4),
                    type_code: c(5),
                }
            })
            .collect()
    })
    .unwrap_or_default()
}

/// A person name (XPN): family, given, middle (first repetition unless asked otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName<'a> {
    /// XPN-1 family name.
    pub family: Cow<'a, str>,
    /// XPN-2 given name.
    pub given: Cow<'a, str>,
    /// XPN-3 middle name or initial.
    pub middle: Cow<'a, str>,
}

/// An entity identifier (EI): the order numbers of ORC-2/ORC-3/OBR-2/OBR-3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityId<'a> {
    /// EI-1 entity identifier.
    pub id: Cow<'a, str>,
    /// EI-2 namespace ID (the assigning application).
    pub namespace: Cow<'a, str>,
    /// EI-3 universal ID (an OID, when the authority is given that way).
    pub universal_id: Cow<'a, str>,
    /// EI-4 universal ID type (`ISO`, `DNS`, ...).
    pub universal_id_type: Cow<'a, str>,
}

fn entity_id<'a>(seg: &Segment<'a>, field: usize) -> Option<EntityId<'a>> {
    let f = seg.field(field)?;
    let c = |n| f.component(n).map_or(Cow::Borrowed(""), |c| c.text());
    let id = c(1);
    (!id.is_empty()).then(|| EntityId {
        id,
        namespace: c(2),
        universal_id: c(3),
        universal_id_type: c(4),
    })
}

/// A person with an ID (XCN): ordering provider, referring doctor, technician.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider<'a> {
    /// XCN-1 ID number.
    pub id: Cow<'a, str>,
    /// XCN-2 family name.
    pub family: Cow<'a, str>,
    /// XCN-3 given name.
    pub given: Cow<'a, str>,
}

fn provider<'a>(seg: &Segment<'a>, field: usize) -> Option<Provider<'a>> {
    let r = seg.field(field)?.repetition(1)?;
    let c = |n| r.component(n).map_or(Cow::Borrowed(""), |c| c.text());
    let p = Provider {
        id: c(1),
        family: c(2),
        given: c(3),
    };
    (!(p.id.is_empty() && p.family.is_empty())).then_some(p)
}

/// A coded element (CE/CWE): code, text, coding system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coded<'a> {
    /// CE-1 identifier.
    pub code: Cow<'a, str>,
    /// CE-2 text.
    pub text: Cow<'a, str>,
    /// CE-3 name of coding system.
    pub system: Cow<'a, str>,
}

fn coded<'a>(seg: &Segment<'a>, field: usize) -> Option<Coded<'a>> {
    let f = seg.field(field)?;
    let c = |n| f.component(n).map_or(Cow::Borrowed(""), |c| c.text());
    let code = c(1);
    (!code.is_empty()).then(|| Coded {
        code,
        text: c(2),
        system: c(3),
    })
}

macro_rules! view {
    ($(#[$m:meta])* $name:ident, $id:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name<'a>(pub Segment<'a>);
        impl<'a> $name<'a> {
            /// The view over `seg` if its ID matches.
            pub fn new(seg: Segment<'a>) -> Option<Self> {
                (seg.name() == $id).then_some(Self(seg))
            }
            /// The underlying segment.
            pub fn segment(&self) -> Segment<'a> {
                self.0
            }
        }
    };
}

view!(
    /// PID: patient identification.
    Pid,
    "PID"
);
view!(
    /// PV1: patient visit.
    Pv1,
    "PV1"
);
view!(
    /// ORC: common order.
    Orc,
    "ORC"
);
view!(
    /// OBR: observation request (the imaging procedure).
    Obr,
    "OBR"
);
view!(
    /// OBX: observation/result.
    Obx,
    "OBX"
);
view!(
    /// IPC: imaging procedure control (OMI^O23).
    Ipc,
    "IPC"
);
view!(
    /// TQ1: timing/quantity (OMI^O23, OMG^O19; v2.5 replaces ORC-7/OBR-27 with it).
    Tq1,
    "TQ1"
);
view!(
    /// ZDS: Study Instance UID (IHE SWF).
    Zds,
    "ZDS"
);

impl<'a> Pid<'a> {
    /// PID-3 patient identifiers, every repetition.
    pub fn identifiers(&self) -> Vec<Identifier<'a>> {
        identifiers(self.0.field(3))
    }
    /// The first PID-3 identifier of the given type (e.g. `MR`).
    pub fn identifier_of_type(&self, type_code: &str) -> Option<Identifier<'a>> {
        self.identifiers()
            .into_iter()
            .find(|i| i.type_code == type_code)
    }
    /// PID-5 patient name (first repetition).
    pub fn name(&self) -> Option<PersonName<'a>> {
        let r = self.0.field(5)?.repetition(1)?;
        let c = |n| r.component(n).map_or(Cow::Borrowed(""), |c| c.text());
        Some(PersonName {
            family: c(1),
            given: c(2),
            middle: c(3),
        })
    }
    /// PID-7 date/time of birth.
    pub fn birth_date(&self) -> Option<DateTime> {
        dtm(&self.0, 7)
    }
    /// PID-8 administrative sex (table 0001).
    pub fn sex(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 8, 1)
    }
}

impl<'a> Pv1<'a> {
    /// PV1-2 patient class (table 0004).
    pub fn patient_class(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 2, 1)
    }
    /// PV1-19 visit number.
    pub fn visit_number(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 19, 1)
    }
    /// PV1-3 assigned patient location: (point of care, room, bed) joined by `^` as sent
    /// (first component alone when the rest is empty).
    pub fn assigned_location(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 3, 1)
    }
    /// PV1-8 referring doctor.
    pub fn referring_doctor(&self) -> Option<Provider<'a>> {
        provider(&self.0, 8)
    }
    /// PV1-19 visit number with its assigning authority (CX-4).
    pub fn visit_identifier(&self) -> Option<Identifier<'a>> {
        identifiers(self.0.field(19)).into_iter().next()
    }
    /// PV1-44 admit date/time.
    pub fn admit_time(&self) -> Option<DateTime> {
        dtm(&self.0, 44)
    }
}

impl<'a> Orc<'a> {
    /// ORC-1 order control (table 0119).
    pub fn order_control(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 1, 1)
    }
    /// ORC-2-1 placer order number.
    pub fn placer_order_number(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 2, 1)
    }
    /// ORC-3-1 filler order number.
    pub fn filler_order_number(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 3, 1)
    }
    /// ORC-2 placer order number with its assigning application.
    pub fn placer_order(&self) -> Option<EntityId<'a>> {
        entity_id(&self.0, 2)
    }
    /// ORC-3 filler order number with its assigning application.
    pub fn filler_order(&self) -> Option<EntityId<'a>> {
        entity_id(&self.0, 3)
    }
    /// ORC-7-4 quantity/timing start date/time (TQ, v2.3–v2.4; TQ1-7 since v2.5).
    pub fn quantity_timing_start(&self) -> Option<DateTime> {
        parse_dtm(&comp(&self.0, 7, 4)?).ok()
    }
    /// ORC-12 ordering provider.
    pub fn ordering_provider(&self) -> Option<Provider<'a>> {
        provider(&self.0, 12)
    }
    /// ORC-5 order status (table 0038).
    pub fn order_status(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 5, 1)
    }
    /// ORC-9 date/time of transaction.
    pub fn transaction_time(&self) -> Option<DateTime> {
        dtm(&self.0, 9)
    }
}

impl<'a> Obr<'a> {
    /// OBR-2-1 placer order number.
    pub fn placer_order_number(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 2, 1)
    }
    /// OBR-3-1 filler order number.
    pub fn filler_order_number(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 3, 1)
    }
    /// OBR-4 universal service ID: (code, text).
    pub fn procedure(&self) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
        Some((
            comp(&self.0, 4, 1)?,
            comp(&self.0, 4, 2).unwrap_or_default(),
        ))
    }
    /// OBR-2 placer order number with its assigning application.
    pub fn placer_order(&self) -> Option<EntityId<'a>> {
        entity_id(&self.0, 2)
    }
    /// OBR-3 filler order number with its assigning application.
    pub fn filler_order(&self) -> Option<EntityId<'a>> {
        entity_id(&self.0, 3)
    }
    /// OBR-4 universal service ID as a coded element (code, text, coding system).
    pub fn service(&self) -> Option<Coded<'a>> {
        coded(&self.0, 4)
    }
    /// OBR-16 ordering provider.
    pub fn ordering_provider(&self) -> Option<Provider<'a>> {
        provider(&self.0, 16)
    }
    /// OBR-20 filler field 1, the scheduled procedure step ID in IHE SWF.
    pub fn scheduled_procedure_step_id(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 20, 1)
    }
    /// OBR-27-4 quantity/timing start date/time (TQ, v2.3–v2.4; TQ1-7 since v2.5).
    pub fn quantity_timing_start(&self) -> Option<DateTime> {
        parse_dtm(&comp(&self.0, 27, 4)?).ok()
    }
    /// OBR-31 reason for study (first repetition's text, else its code).
    pub fn reason_for_study(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 31, 2).or_else(|| comp(&self.0, 31, 1))
    }
    /// OBR-36 scheduled date/time.
    pub fn scheduled_time(&self) -> Option<DateTime> {
        dtm(&self.0, 36)
    }
    /// OBR-44 procedure code (CE).
    pub fn procedure_code(&self) -> Option<Coded<'a>> {
        coded(&self.0, 44)
    }
    /// OBR-7 observation date/time.
    pub fn observation_time(&self) -> Option<DateTime> {
        dtm(&self.0, 7)
    }
    /// OBR-18 placer field 1, the accession number in IHE Scheduled Workflow.
    pub fn accession_number(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 18, 1)
    }
    /// OBR-19 placer field 2, the requested procedure ID in IHE SWF.
    pub fn requested_procedure_id(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 19, 1)
    }
    /// OBR-24 diagnostic service section ID (the modality in radiology feeds).
    pub fn modality(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 24, 1)
    }
    /// OBR-25 result status (table 0123).
    pub fn result_status(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 25, 1)
    }
}

impl<'a> Obx<'a> {
    /// OBX-2 value type (table 0125).
    pub fn value_type(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 2, 1)
    }
    /// OBX-3 observation identifier: (code, text).
    pub fn observation_id(&self) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
        Some((
            comp(&self.0, 3, 1)?,
            comp(&self.0, 3, 2).unwrap_or_default(),
        ))
    }
    /// OBX-5 values, one decoded string per repetition (first component; for TX/FT/ST the
    /// whole text).
    pub fn values(&self) -> Vec<Cow<'a, str>> {
        self.0
            .field(5)
            .map(|f| f.repetitions().map(|r| r.text()).collect())
            .unwrap_or_default()
    }
    /// OBX-11 observation result status (table 0085).
    pub fn status(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 11, 1)
    }
    /// OBX-14 date/time of the observation.
    pub fn observation_time(&self) -> Option<DateTime> {
        dtm(&self.0, 14)
    }
}

impl<'a> Ipc<'a> {
    /// IPC-1-1 accession identifier.
    pub fn accession_number(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 1, 1)
    }
    /// IPC-2-1 requested procedure ID.
    pub fn requested_procedure_id(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 2, 1)
    }
    /// IPC-3-1 Study Instance UID.
    pub fn study_instance_uid(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 3, 1)
    }
    /// IPC-4-1 scheduled procedure step ID.
    pub fn scheduled_procedure_step_id(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 4, 1)
    }
    /// IPC-5-1 modality.
    pub fn modality(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 5, 1)
    }
    /// IPC-6 protocol code (first repetition).
    pub fn protocol_code(&self) -> Option<Coded<'a>> {
        coded(&self.0, 6)
    }
    /// IPC-7-1 scheduled station name.
    pub fn scheduled_station_name(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 7, 1)
    }
    /// IPC-8-1 scheduled procedure step location.
    pub fn scheduled_location(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 8, 1)
    }
    /// IPC-9 scheduled station AE title.
    pub fn scheduled_station_ae_title(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 9, 1)
    }
}

impl<'a> Tq1<'a> {
    /// TQ1-7 start date/time.
    pub fn start(&self) -> Option<DateTime> {
        dtm(&self.0, 7)
    }
    /// TQ1-8 end date/time.
    pub fn end(&self) -> Option<DateTime> {
        dtm(&self.0, 8)
    }
    /// TQ1-9 priority (table 0485: S, A, R, P, T, ...).
    pub fn priority(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 9, 1)
    }
}

impl<'a> Zds<'a> {
    /// ZDS-1-1 Study Instance UID.
    pub fn study_instance_uid(&self) -> Option<Cow<'a, str>> {
        comp(&self.0, 1, 1)
    }
}

impl<'a> Message<'a> {
    /// The first PID.
    pub fn pid(&self) -> Option<Pid<'a>> {
        self.segment("PID").map(Pid)
    }
    /// The first PV1.
    pub fn pv1(&self) -> Option<Pv1<'a>> {
        self.segment("PV1").map(Pv1)
    }
    /// Every ORC.
    pub fn orcs(&self) -> Vec<Orc<'a>> {
        self.segments_named("ORC").map(Orc).collect()
    }
    /// Every OBR.
    pub fn obrs(&self) -> Vec<Obr<'a>> {
        self.segments_named("OBR").map(Obr).collect()
    }
    /// Every IPC.
    pub fn ipcs(&self) -> Vec<Ipc<'a>> {
        self.segments_named("IPC").map(Ipc).collect()
    }
    /// Every TQ1.
    pub fn tq1s(&self) -> Vec<Tq1<'a>> {
        self.segments_named("TQ1").map(Tq1).collect()
    }
    /// Every OBX.
    pub fn obxs(&self) -> Vec<Obx<'a>> {
        self.segments_named("OBX").map(Obx).collect()
    }
    /// Study Instance UID: IPC-3 (OMI), else ZDS-1 (IHE SWF ORM/ORU).
    pub fn study_instance_uid(&self) -> Option<Cow<'a, str>> {
        self.segments_named("IPC")
            .find_map(|s| Ipc(s).study_instance_uid())
            .or_else(|| {
                self.segments_named("ZDS")
                    .find_map(|s| Zds(s).study_instance_uid())
            })
    }
    /// Accession number: IPC-1, else OBR-18 (IHE SWF placer field 1).
    pub fn accession_number(&self) -> Option<Cow<'a, str>> {
        self.segments_named("IPC")
            .find_map(|s| Ipc(s).accession_number())
            .or_else(|| {
                self.segments_named("OBR")
                    .find_map(|s| Obr(s).accession_number())
            })
    }
}
