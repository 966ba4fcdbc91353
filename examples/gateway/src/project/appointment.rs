//! [`AppointmentFacts`] (an SIU) → `Appointment` (FHIR R4 §12.10).

use super::{Invalid, Resource, invalid};
use crate::map::appointment::AppointmentFacts;
use xenrad_fhir_model::builders::AppointmentBuilder;

/// The Appointment `id` for `patient` (`Patient/<id>`), based on the order when known.
pub fn appointment(
    id: &str,
    f: &AppointmentFacts,
    patient: &str,
    based_on: Option<&str>,
) -> Result<Resource, Invalid> {
    let mut b = AppointmentBuilder::new(id, f.status).participant(patient, "accepted");
    if let Some(s) = &f.start {
        b = b.start(s);
    }
    if let Some(e) = &f.end {
        b = b.end(e);
    }
    if let Some(d) = &f.description {
        b = b.description(d);
    }
    if let Some(r) = based_on {
        b = b.based_on(r);
    }
    b.build().map_err(|oo| invalid("Appointment", &oo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appointment_for_its_patient_and_order() {
        let f = AppointmentFacts {
            key: "AF1".into(),
            status: "booked",
            start: Some("2025-01-24T14:30:00+01:00".into()),
            end: Some("2025-01-24T14:50:00+01:00".into()),
            description: Some("CT HEAD".into()),
            ..AppointmentFacts::default()
        };
        let a = appointment("ap-1", &f, "Patient/p", Some("ServiceRequest/sr")).unwrap();
        let j = xenrad_fhir_model::to_json(&a);
        assert!(
            j.contains(r#""basedOn":[{"reference":"ServiceRequest/sr"}]"#),
            "{j}"
        );
        assert!(j.contains(r#""start":"2025-01-24T14:30:00+01:00""#), "{j}");
    }
}
