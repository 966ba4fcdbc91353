//! Typed, owned builders for the resources a radiology gateway projects HL7 v2 / DICOM / MPPS data
//! into: Patient, ServiceRequest, ImagingStudy, Procedure, DiagnosticReport, Observation,
//! Encounter and Appointment. Each setter is checked against the
//! generated definitions; the first problem is kept and returned by `build()`, which also runs
//! [`validate`](crate::validate()) (cardinality, required bindings, invariants).
//!
//! A builder can also continue from a resource that exists already (`edit`, e.g. one read back
//! from a store): `clear` removes an element so that the next setter replaces it, and every
//! element the builder does not touch is kept as it was.

use crate::error::Error;
use crate::generated::ResourceType;
use crate::model::{Node, Resource};
use crate::outcome::OperationOutcome;

/// Shared builder state.
#[derive(Debug, Clone)]
pub struct Builder {
    resource: Resource<'static>,
    error: Option<Error>,
}

impl Builder {
    /// A builder for any resource type, with its id.
    pub fn new(rt: ResourceType, id: &str) -> Self {
        let mut b = Builder {
            resource: Resource::new(rt),
            error: None,
        };
        let r = b.resource.set_id(id.to_owned()).map(|_| ());
        b.keep(r);
        b
    }

    /// Continues building on an existing resource (its id and every element are kept).
    pub fn edit(resource: Resource<'static>) -> Self {
        Builder {
            resource,
            error: None,
        }
    }

    /// Removes an element (all its values), so that setters replace it instead of appending.
    #[must_use]
    pub fn clear(mut self, element: &str) -> Self {
        self.resource.node.remove(element);
        self
    }

    fn keep(&mut self, r: Result<(), Error>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    /// Sets/appends a primitive element by name.
    #[must_use]
    pub fn str(mut self, element: &str, value: &str) -> Self {
        let r = self
            .resource
            .node
            .add_str(element, value.to_owned())
            .map(|_| ());
        self.keep(r);
        self
    }

    /// Adds a complex element built by `f`.
    #[must_use]
    pub fn node(
        mut self,
        element: &str,
        f: impl FnOnce(&mut Node<'static>) -> Result<(), Error>,
    ) -> Self {
        let r = self.resource.node.add_node(element, f).map(|_| ());
        self.keep(r);
        self
    }

    /// Adds an `Identifier` (`system`, `value`).
    #[must_use]
    pub fn identifier(self, system: &str, value: &str) -> Self {
        self.node("identifier", |n| identifier(n, system, value))
    }

    /// Adds an `Identifier` with a `type` coding (`system`, `value`, type code system, type
    /// code), e.g. an accession number typed `ACSN` (HL7 table 0203).
    #[must_use]
    pub fn identifier_typed(
        self,
        system: &str,
        value: &str,
        type_system: &str,
        type_code: &str,
    ) -> Self {
        self.node("identifier", |n| {
            n.add_node("type", |t| concept(t, type_system, type_code, None))?;
            identifier(n, system, value)
        })
    }

    /// Adds a `Reference` element (`Patient/123`, optional display).
    #[must_use]
    pub fn reference(self, element: &str, reference: &str, display: Option<&str>) -> Self {
        self.node(element, |n| reference_into(n, reference, display))
    }

    /// Adds a `CodeableConcept` element with one coding.
    #[must_use]
    pub fn concept(self, element: &str, system: &str, code: &str, display: Option<&str>) -> Self {
        self.node(element, |n| concept(n, system, code, display))
    }

    /// Direct access to the resource being built.
    pub fn resource_mut(&mut self) -> &mut Resource<'static> {
        &mut self.resource
    }

    /// Finishes: the first builder error, or the validation outcome if it has errors.
    pub fn build(self) -> Result<Resource<'static>, OperationOutcome> {
        if let Some(e) = self.error {
            return Err(OperationOutcome::from_error(
                &e,
                Some(self.resource.resource_type),
            ));
        }
        let oo = crate::validate(&self.resource);
        if oo.has_errors() {
            Err(oo)
        } else {
            Ok(self.resource)
        }
    }
}

/// Fills an `Identifier` node.
pub fn identifier(n: &mut Node<'static>, system: &str, value: &str) -> Result<(), Error> {
    if !system.is_empty() {
        n.add_str("system", system.to_owned())?;
    }
    n.add_str("value", value.to_owned())?;
    Ok(())
}

/// Fills a `Reference` node.
pub fn reference_into(
    n: &mut Node<'static>,
    reference: &str,
    display: Option<&str>,
) -> Result<(), Error> {
    n.add_str("reference", reference.to_owned())?;
    if let Some(d) = display {
        n.add_str("display", d.to_owned())?;
    }
    Ok(())
}

/// Fills a `Coding` node.
pub fn coding(
    n: &mut Node<'static>,
    system: &str,
    code: &str,
    display: Option<&str>,
) -> Result<(), Error> {
    if !system.is_empty() {
        n.add_str("system", system.to_owned())?;
    }
    n.add_str("code", code.to_owned())?;
    if let Some(d) = display {
        n.add_str("display", d.to_owned())?;
    }
    Ok(())
}

/// Fills a `CodeableConcept` node with one coding.
pub fn concept(
    n: &mut Node<'static>,
    system: &str,
    code: &str,
    display: Option<&str>,
) -> Result<(), Error> {
    n.add_node("coding", |c| coding(c, system, code, display))?;
    Ok(())
}

macro_rules! typed_builder {
    ($(#[$m:meta])* $name:ident, $rt:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        pub struct $name(Builder);

        impl $name {
            /// Adds an `identifier`.
            #[must_use]
            pub fn identifier(self, system: &str, value: &str) -> Self {
                $name(self.0.identifier(system, value))
            }

            /// Adds an `identifier` with a `type` coding (see [`Builder::identifier_typed`]).
            #[must_use]
            pub fn identifier_typed(self, system: &str, value: &str, type_system: &str, type_code: &str) -> Self {
                $name(self.0.identifier_typed(system, value, type_system, type_code))
            }

            /// Escape hatch: any other primitive element by name.
            #[must_use]
            pub fn str(self, element: &str, value: &str) -> Self {
                $name(self.0.str(element, value))
            }

            /// Escape hatch: any other complex element by name.
            #[must_use]
            pub fn node(self, element: &str, f: impl FnOnce(&mut Node<'static>) -> Result<(), Error>) -> Self {
                $name(self.0.node(element, f))
            }

            /// Continues building on an existing resource of this type (its id and every
            /// element are kept; [`clear`](Self::clear) an element to replace it). A resource
            /// of another type is an error that `build()` reports.
            pub fn edit(existing: Resource<'static>) -> Self {
                let mut b = Builder::edit(existing);
                if b.resource.resource_type != ResourceType::$rt {
                    let found = b.resource.resource_type;
                    b = Builder::new(ResourceType::$rt, b.resource.id().unwrap_or("x"));
                    b.keep(Err(Error::new(
                        crate::error::ErrorKind::WrongType { expected: stringify!($rt).to_owned() },
                        found.as_str(),
                    )));
                }
                $name(b)
            }

            /// Removes an element (all its values), so that the next setter replaces it.
            #[must_use]
            pub fn clear(self, element: &str) -> Self {
                $name(self.0.clear(element))
            }

            /// Adds a `Reference` element (`Patient/123`, optional display).
            #[must_use]
            pub fn reference(self, element: &str, reference: &str, display: Option<&str>) -> Self {
                $name(self.0.reference(element, reference, display))
            }

            /// Adds a `CodeableConcept` element with one coding.
            #[must_use]
            pub fn concept(self, element: &str, system: &str, code: &str, display: Option<&str>) -> Self {
                $name(self.0.concept(element, system, code, display))
            }

            /// Validates and returns the resource.
            pub fn build(self) -> Result<Resource<'static>, OperationOutcome> {
                self.0.build()
            }
        }
    };
}

/// Fills a `Reference` node that names its target by display text only (no `reference`),
/// e.g. a subject that is not known yet.
pub fn display_only(n: &mut Node<'static>, display: &str) -> Result<(), Error> {
    n.add_str("display", display.to_owned())?;
    Ok(())
}

/// Fills an `Address` node: lines, city, state, postal code, country (each only when given).
pub fn address(n: &mut Node<'static>, a: &AddressParts<'_>) -> Result<(), Error> {
    for l in a.lines {
        n.add_str("line", l.clone())?;
    }
    for (k, v) in [
        ("city", a.city),
        ("state", a.state),
        ("postalCode", a.postal_code),
        ("country", a.country),
    ] {
        if let Some(v) = v {
            n.add_str(k, v.to_owned())?;
        }
    }
    Ok(())
}

/// The parts of an `Address` ([`address`], [`PatientBuilder::address`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct AddressParts<'s> {
    /// `line`, in order.
    pub lines: &'s [String],
    /// `city`.
    pub city: Option<&'s str>,
    /// `state`.
    pub state: Option<&'s str>,
    /// `postalCode`.
    pub postal_code: Option<&'s str>,
    /// `country`.
    pub country: Option<&'s str>,
}

typed_builder!(
    /// Builds a `Patient` (from PID).
    ///
    /// ```
    /// use xenrad_fhir_model::builders::PatientBuilder;
    /// let p = PatientBuilder::new("pat-1").identifier("urn:oid:1.2.3", "MRN1").name("Smith", &["Ann", "B"])
    ///     .gender("female").birth_date("1970-03-01").build().unwrap();
    /// assert_eq!(xenrad_fhir_model::to_json(&p), r#"{"resourceType":"Patient","id":"pat-1","identifier":[{"system":"urn:oid:1.2.3","value":"MRN1"}],"name":[{"family":"Smith","given":["Ann","B"]}],"gender":"female","birthDate":"1970-03-01"}"#);
    /// assert!(PatientBuilder::new("p").gender("robot").build().is_err());
    /// ```
    PatientBuilder,
    Patient
);

impl PatientBuilder {
    /// Starts with the resource id.
    pub fn new(id: &str) -> Self {
        PatientBuilder(Builder::new(ResourceType::Patient, id))
    }

    /// Adds a `name` (family, given names).
    #[must_use]
    pub fn name(self, family: &str, given: &[&str]) -> Self {
        self.node("name", |n| {
            if !family.is_empty() {
                n.add_str("family", family.to_owned())?;
            }
            for g in given {
                n.add_str("given", (*g).to_owned())?;
            }
            Ok(())
        })
    }

    /// Sets `gender` (`male`, `female`, `other`, `unknown`; required binding).
    #[must_use]
    pub fn gender(self, code: &str) -> Self {
        self.str("gender", code)
    }

    /// Sets `birthDate` (FHIR date).
    #[must_use]
    pub fn birth_date(self, date: &str) -> Self {
        self.str("birthDate", date)
    }

    /// Adds a `name` with its `use` (`official`, `usual`, …; required binding NameUse), family
    /// name when given and given names.
    #[must_use]
    pub fn name_with_use(self, name_use: &str, family: Option<&str>, given: &[&str]) -> Self {
        self.node("name", |n| {
            n.add_str("use", name_use.to_owned())?;
            if let Some(f) = family {
                n.add_str("family", f.to_owned())?;
            }
            for g in given {
                n.add_str("given", (*g).to_owned())?;
            }
            Ok(())
        })
    }

    /// Sets `active`.
    #[must_use]
    pub fn active(mut self, active: bool) -> Self {
        let r = self
            .0
            .resource
            .node
            .add("active", crate::Value::boolean(active))
            .map(|_| ());
        self.0.keep(r);
        self
    }

    /// Adds an `address`.
    #[must_use]
    pub fn address(self, parts: &AddressParts<'_>) -> Self {
        self.node("address", |n| address(n, parts))
    }

    /// Adds a `link` to another patient (`Patient/…`) with its type (`replaced-by`, `replaces`,
    /// `refer`, `seealso`; required binding LinkType).
    #[must_use]
    pub fn link(self, other: &str, link_type: &str) -> Self {
        self.node("link", |n| {
            n.add_node("other", |o| reference_into(o, other, None))?;
            n.add_str("type", link_type.to_owned())?;
            Ok(())
        })
    }
}

typed_builder!(
    /// Builds a `ServiceRequest` (from ORM/OMI orders).
    ///
    /// ```
    /// use xenrad_fhir_model::builders::ServiceRequestBuilder;
    /// let sr = ServiceRequestBuilder::new("sr-1", "active", "order", "Patient/pat-1")
    ///     .code("http://loinc.org", "24627-2", Some("Chest CT")).occurrence("2026-01-02T10:00:00Z").build().unwrap();
    /// assert!(xenrad_fhir_model::to_json(&sr).contains(r#""occurrenceDateTime":"2026-01-02T10:00:00Z""#));
    /// let sr = ServiceRequestBuilder::new("sr-2", "active", "order", "Patient/pat-1")
    ///     .accession("urn:oid:1.2.840.99", "ACC1").build().unwrap();
    /// assert!(xenrad_fhir_model::to_json(&sr).contains(r#""identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"ACSN"}]},"system":"urn:oid:1.2.840.99","value":"ACC1"}]"#));
    /// ```
    ServiceRequestBuilder,
    ServiceRequest
);

impl ServiceRequestBuilder {
    /// Starts with id, `status`, `intent` and the `subject` reference (all required).
    pub fn new(id: &str, status: &str, intent: &str, subject: &str) -> Self {
        let b = Builder::new(ResourceType::ServiceRequest, id)
            .str("status", status)
            .str("intent", intent)
            .reference("subject", subject, None);
        ServiceRequestBuilder(b)
    }

    /// Sets `code`.
    #[must_use]
    pub fn code(self, system: &str, code: &str, display: Option<&str>) -> Self {
        ServiceRequestBuilder(self.0.concept("code", system, code, display))
    }

    /// Sets `occurrenceDateTime`.
    #[must_use]
    pub fn occurrence(mut self, date_time: &str) -> Self {
        let v = crate::Value::primitive(crate::PrimKind::DateTime, date_time.to_owned());
        let r = self.0.resource.node.add("occurrence", v).map(|_| ());
        self.0.keep(r);
        self
    }

    /// Sets `requester`.
    #[must_use]
    pub fn requester(self, reference: &str, display: Option<&str>) -> Self {
        ServiceRequestBuilder(self.0.reference("requester", reference, display))
    }

    /// Adds a `category` (one coding).
    #[must_use]
    pub fn category(self, system: &str, code: &str, display: Option<&str>) -> Self {
        ServiceRequestBuilder(self.0.concept("category", system, code, display))
    }

    /// Adds the accession number as an identifier typed `ACSN` (HL7 v2 table 0203), under
    /// the system of the authority that assigned it.
    #[must_use]
    pub fn accession(self, system: &str, value: &str) -> Self {
        self.identifier_typed(system, value, V2_0203, "ACSN")
    }

    /// Adds an `encounter` reference.
    #[must_use]
    pub fn encounter(self, reference: &str) -> Self {
        ServiceRequestBuilder(self.0.reference("encounter", reference, None))
    }

    /// Adds a `reasonCode` (text only).
    #[must_use]
    pub fn reason_text(self, text: &str) -> Self {
        self.node("reasonCode", |n| {
            n.add_str("text", text.to_owned())?;
            Ok(())
        })
    }
}

/// HL7 v2 table 0203 (identifier type) as a FHIR code system.
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

typed_builder!(
    /// Builds an `ImagingStudy` (from DICOM C-STORE / MPPS).
    ///
    /// ```
    /// use xenrad_fhir_model::builders::{ImagingStudyBuilder, Series};
    /// let s = Series::new("1.2.3.4.1", "CT").instance("1.2.3.4.1.1", "1.2.840.10008.5.1.4.1.1.2", Some(1));
    /// let st = ImagingStudyBuilder::new("is-1", "available", "Patient/pat-1")
    ///     .study_uid("1.2.3.4").series(s).build().unwrap();
    /// assert!(xenrad_fhir_model::to_json(&st).contains(r#""identifier":[{"system":"urn:dicom:uid","value":"urn:oid:1.2.3.4"}]"#));
    /// ```
    ImagingStudyBuilder,
    ImagingStudy
);

/// One series of an ImagingStudy.
#[derive(Debug, Clone)]
pub struct Series {
    uid: String,
    modality: String,
    instances: Vec<(String, String, Option<u32>)>,
    description: Option<String>,
}

impl Series {
    /// Series Instance UID and modality code (DICOM CID 29).
    pub fn new(uid: &str, modality: &str) -> Self {
        Series {
            uid: uid.to_owned(),
            modality: modality.to_owned(),
            instances: Vec::new(),
            description: None,
        }
    }

    /// Adds an instance (SOP Instance UID, SOP Class UID, instance number).
    #[must_use]
    pub fn instance(mut self, uid: &str, sop_class: &str, number: Option<u32>) -> Self {
        self.instances
            .push((uid.to_owned(), sop_class.to_owned(), number));
        self
    }

    /// Sets the series description.
    #[must_use]
    pub fn description(mut self, d: &str) -> Self {
        self.description = Some(d.to_owned());
        self
    }
}

impl ImagingStudyBuilder {
    /// Starts with id, `status` and `subject` (required).
    pub fn new(id: &str, status: &str, subject: &str) -> Self {
        ImagingStudyBuilder(
            Builder::new(ResourceType::ImagingStudy, id)
                .str("status", status)
                .reference("subject", subject, None),
        )
    }

    /// Starts with id and `status`, with a `subject` known only by its display text (no
    /// patient resource to reference yet).
    pub fn with_subject_display(id: &str, status: &str, display: &str) -> Self {
        ImagingStudyBuilder(
            Builder::new(ResourceType::ImagingStudy, id)
                .str("status", status)
                .node("subject", |n| display_only(n, display)),
        )
    }

    /// Sets `status` (`registered`, `available`, `cancelled`, …; required binding), replacing
    /// any.
    #[must_use]
    pub fn status(self, status: &str) -> Self {
        self.clear("status").str("status", status)
    }

    /// Adds an `endpoint` reference (where the images can be fetched, e.g. `Endpoint/dicomweb`).
    #[must_use]
    pub fn endpoint(self, reference: &str) -> Self {
        ImagingStudyBuilder(self.0.reference("endpoint", reference, None))
    }

    /// Sets `procedureReference` (the Procedure that performed the study).
    #[must_use]
    pub fn procedure_reference(self, reference: &str) -> Self {
        ImagingStudyBuilder(self.0.reference("procedureReference", reference, None))
    }

    /// Sets `numberOfSeries`.
    #[must_use]
    pub fn number_of_series(self, n: usize) -> Self {
        self.str("numberOfSeries", &n.to_string())
    }

    /// Sets `numberOfInstances`.
    #[must_use]
    pub fn number_of_instances(self, n: usize) -> Self {
        self.str("numberOfInstances", &n.to_string())
    }

    /// Adds the Study Instance UID as identifier (`urn:dicom:uid`, `urn:oid:…`).
    #[must_use]
    pub fn study_uid(self, uid: &str) -> Self {
        self.identifier("urn:dicom:uid", &format!("urn:oid:{uid}"))
    }

    /// Sets `started`.
    #[must_use]
    pub fn started(self, date_time: &str) -> Self {
        self.str("started", date_time)
    }

    /// Sets `description`.
    #[must_use]
    pub fn description(self, d: &str) -> Self {
        self.str("description", d)
    }

    /// Adds a `basedOn` reference (the ServiceRequest).
    #[must_use]
    pub fn based_on(self, reference: &str) -> Self {
        ImagingStudyBuilder(self.0.reference("basedOn", reference, None))
    }

    /// Adds a series with its instances and its `numberOfInstances` (call once per series; the
    /// study's own counts are [`number_of_series`](Self::number_of_series) and
    /// [`number_of_instances`](Self::number_of_instances)).
    #[must_use]
    pub fn series(self, s: Series) -> Self {
        self.node("series", move |n| {
            n.add_str("uid", s.uid)?;
            n.add_node("modality", |m| {
                coding(
                    m,
                    "http://dicom.nema.org/resources/ontology/DCM",
                    &s.modality,
                    None,
                )
            })?;
            if let Some(d) = s.description {
                n.add_str("description", d)?;
            }
            n.add_str("numberOfInstances", s.instances.len().to_string())?;
            for (uid, class, num) in s.instances {
                n.add_node("instance", |i| {
                    i.add_str("uid", uid)?;
                    i.add_node("sopClass", |c| {
                        coding(c, "urn:ietf:rfc:3986", &format!("urn:oid:{class}"), None)
                    })?;
                    if let Some(k) = num {
                        i.add_str("number", k.to_string())?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
    }
}

typed_builder!(
    /// Builds a `Procedure` (from MPPS).
    ///
    /// ```
    /// use xenrad_fhir_model::builders::ProcedureBuilder;
    /// let p = ProcedureBuilder::new("proc-1", "in-progress", "Patient/pat-1")
    ///     .performed_start("2026-01-02T10:00:00Z").build().unwrap();
    /// assert!(xenrad_fhir_model::to_json(&p).contains(r#""performedPeriod":{"start":"2026-01-02T10:00:00Z"}"#));
    /// ```
    ProcedureBuilder,
    Procedure
);

impl ProcedureBuilder {
    /// Starts with id, `status` (`preparation`, `in-progress`, `completed`, …) and `subject`.
    pub fn new(id: &str, status: &str, subject: &str) -> Self {
        ProcedureBuilder(
            Builder::new(ResourceType::Procedure, id)
                .str("status", status)
                .reference("subject", subject, None),
        )
    }

    /// Starts with id and `status`, with a `subject` known only by its display text.
    pub fn with_subject_display(id: &str, status: &str, display: &str) -> Self {
        ProcedureBuilder(
            Builder::new(ResourceType::Procedure, id)
                .str("status", status)
                .node("subject", |n| display_only(n, display)),
        )
    }

    /// Sets `code`.
    #[must_use]
    pub fn code(self, system: &str, code: &str, display: Option<&str>) -> Self {
        ProcedureBuilder(self.0.concept("code", system, code, display))
    }

    /// Sets `category` (one coding).
    #[must_use]
    pub fn category(self, system: &str, code: &str, display: Option<&str>) -> Self {
        ProcedureBuilder(self.0.concept("category", system, code, display))
    }

    /// Sets `performedPeriod` with a start, an end, both or neither (nothing is set then).
    #[must_use]
    pub fn performed(mut self, start: Option<&str>, end: Option<&str>) -> Self {
        if start.is_none() && end.is_none() {
            return self;
        }
        let mut p = Node::of("Period");
        let r = (|| {
            if let Some(s) = start {
                p.add_str("start", s.to_owned())?;
            }
            if let Some(e) = end {
                p.add_str("end", e.to_owned())?;
            }
            self.0
                .resource
                .node
                .add("performed", crate::Value::Complex(p))?;
            Ok(())
        })();
        self.0.keep(r);
        self
    }

    /// Sets `performedPeriod.start`.
    #[must_use]
    pub fn performed_start(self, start: &str) -> Self {
        self.performed_period(start, None)
    }

    /// Sets `performedPeriod` (start, optional end).
    #[must_use]
    pub fn performed_period(mut self, start: &str, end: Option<&str>) -> Self {
        let mut p = Node::of("Period");
        let r = (|| {
            p.add_str("start", start.to_owned())?;
            if let Some(e) = end {
                p.add_str("end", e.to_owned())?;
            }
            self.0
                .resource
                .node
                .add("performed", crate::Value::Complex(p))?;
            Ok(())
        })();
        self.0.keep(r);
        self
    }

    /// Adds a `basedOn` reference.
    #[must_use]
    pub fn based_on(self, reference: &str) -> Self {
        ProcedureBuilder(self.0.reference("basedOn", reference, None))
    }

    /// Adds a `partOf` reference.
    #[must_use]
    pub fn part_of(self, reference: &str) -> Self {
        ProcedureBuilder(self.0.reference("partOf", reference, None))
    }
}

typed_builder!(
    /// Builds a `DiagnosticReport` (from ORU^R01).
    ///
    /// ```
    /// use xenrad_fhir_model::builders::DiagnosticReportBuilder;
    /// let r = DiagnosticReportBuilder::new("dr-1", "final", "http://loinc.org", "18748-4", Some("Diagnostic imaging study"), "Patient/pat-1")
    ///     .based_on("ServiceRequest/sr-1").imaging_study("ImagingStudy/is-1").result("Observation/obs-1")
    ///     .effective("2026-01-02T10:00:00Z").conclusion("No acute findings.").build().unwrap();
    /// let j = xenrad_fhir_model::to_json(&r);
    /// assert!(j.contains(r#""basedOn":[{"reference":"ServiceRequest/sr-1"}]"#));
    /// assert!(j.contains(r#""imagingStudy":[{"reference":"ImagingStudy/is-1"}]"#));
    /// assert!(DiagnosticReportBuilder::new("d", "done", "", "x", None, "Patient/p").build().is_err());
    /// ```
    DiagnosticReportBuilder,
    DiagnosticReport
);

impl DiagnosticReportBuilder {
    /// Starts with id, `status` (`registered`, `preliminary`, `final`, `amended`, ...;
    /// required binding), `code` and `subject`.
    pub fn new(
        id: &str,
        status: &str,
        system: &str,
        code: &str,
        display: Option<&str>,
        subject: &str,
    ) -> Self {
        DiagnosticReportBuilder(
            Builder::new(ResourceType::DiagnosticReport, id)
                .str("status", status)
                .concept("code", system, code, display)
                .reference("subject", subject, None),
        )
    }

    /// Adds a `basedOn` reference (the ServiceRequest).
    #[must_use]
    pub fn based_on(self, reference: &str) -> Self {
        DiagnosticReportBuilder(self.0.reference("basedOn", reference, None))
    }

    /// Adds an `imagingStudy` reference.
    #[must_use]
    pub fn imaging_study(self, reference: &str) -> Self {
        DiagnosticReportBuilder(self.0.reference("imagingStudy", reference, None))
    }

    /// Adds a `result` reference (an Observation).
    #[must_use]
    pub fn result(self, reference: &str) -> Self {
        DiagnosticReportBuilder(self.0.reference("result", reference, None))
    }

    /// Adds a `category`.
    #[must_use]
    pub fn category(self, system: &str, code: &str, display: Option<&str>) -> Self {
        DiagnosticReportBuilder(self.0.concept("category", system, code, display))
    }

    /// Sets `effectiveDateTime`.
    #[must_use]
    pub fn effective(mut self, date_time: &str) -> Self {
        let v = crate::Value::primitive(crate::PrimKind::DateTime, date_time.to_owned());
        let r = self.0.resource.node.add("effective", v).map(|_| ());
        self.0.keep(r);
        self
    }

    /// Sets `issued` (an instant).
    #[must_use]
    pub fn issued(self, instant: &str) -> Self {
        self.str("issued", instant)
    }

    /// Sets `conclusion`.
    #[must_use]
    pub fn conclusion(self, text: &str) -> Self {
        self.str("conclusion", text)
    }
}

typed_builder!(
    /// Builds an `Observation` (one OBX of an ORU^R01).
    ///
    /// ```
    /// use xenrad_fhir_model::builders::ObservationBuilder;
    /// let o = ObservationBuilder::new("obs-1", "final", "", "IMP", Some("Impression"), "Patient/pat-1")
    ///     .value_string("No acute findings.").based_on("ServiceRequest/sr-1").build().unwrap();
    /// assert!(xenrad_fhir_model::to_json(&o).contains(r#""valueString":"No acute findings.""#));
    /// ```
    ObservationBuilder,
    Observation
);

impl ObservationBuilder {
    /// Starts with id, `status` (`registered`, `preliminary`, `final`, `amended`, ...), `code`
    /// and `subject`.
    pub fn new(
        id: &str,
        status: &str,
        system: &str,
        code: &str,
        display: Option<&str>,
        subject: &str,
    ) -> Self {
        ObservationBuilder(
            Builder::new(ResourceType::Observation, id)
                .str("status", status)
                .concept("code", system, code, display)
                .reference("subject", subject, None),
        )
    }

    /// Sets `valueString`.
    #[must_use]
    pub fn value_string(mut self, text: &str) -> Self {
        let v = crate::Value::primitive(crate::PrimKind::String, text.to_owned());
        let r = self.0.resource.node.add("value", v).map(|_| ());
        self.0.keep(r);
        self
    }

    /// Sets `effectiveDateTime`.
    #[must_use]
    pub fn effective(mut self, date_time: &str) -> Self {
        let v = crate::Value::primitive(crate::PrimKind::DateTime, date_time.to_owned());
        let r = self.0.resource.node.add("effective", v).map(|_| ());
        self.0.keep(r);
        self
    }

    /// Adds a `basedOn` reference (the ServiceRequest).
    #[must_use]
    pub fn based_on(self, reference: &str) -> Self {
        ObservationBuilder(self.0.reference("basedOn", reference, None))
    }

    /// Adds a `derivedFrom` reference (e.g. the ImagingStudy).
    #[must_use]
    pub fn derived_from(self, reference: &str) -> Self {
        ObservationBuilder(self.0.reference("derivedFrom", reference, None))
    }
}

/// HL7 v3 ActCode, the code system of `Encounter.class`.
pub const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

typed_builder!(
    /// Builds an `Encounter` (from PV1).
    ///
    /// ```
    /// use xenrad_fhir_model::builders::{EncounterBuilder, V3_ACT_CODE};
    /// let e = EncounterBuilder::new("enc-1", "in-progress", V3_ACT_CODE, "AMB", "Patient/pat-1")
    ///     .identifier("urn:oid:1.2.3", "V9").period_start("2026-01-02T10:00:00Z").build().unwrap();
    /// assert!(xenrad_fhir_model::to_json(&e).contains(r#""class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"}"#));
    /// ```
    EncounterBuilder,
    Encounter
);

impl EncounterBuilder {
    /// Starts with id, `status` (`planned`, `in-progress`, `finished`, ...), `class` (a
    /// Coding) and `subject`.
    pub fn new(
        id: &str,
        status: &str,
        class_system: &str,
        class_code: &str,
        subject: &str,
    ) -> Self {
        EncounterBuilder(
            Builder::new(ResourceType::Encounter, id)
                .str("status", status)
                .node("class", |n| coding(n, class_system, class_code, None))
                .reference("subject", subject, None),
        )
    }

    /// Sets `period.start`.
    #[must_use]
    pub fn period_start(self, start: &str) -> Self {
        self.node("period", |n| {
            n.add_str("start", start.to_owned())?;
            Ok(())
        })
    }

    /// Adds a `location.location` reference by display only (the PV1-3 point of care).
    #[must_use]
    pub fn location_display(self, display: &str) -> Self {
        self.node("location", |n| {
            n.add_node("location", |l| {
                l.add_str("display", display.to_owned())?;
                Ok(())
            })?;
            Ok(())
        })
    }
}

typed_builder!(
    /// Builds an `Appointment` (from SIU^S12–S15).
    ///
    /// ```
    /// use xenrad_fhir_model::builders::AppointmentBuilder;
    /// let a = AppointmentBuilder::new("ap-1", "booked").participant("Patient/pat-1", "accepted")
    ///     .start("2026-01-02T10:00:00Z").end("2026-01-02T10:30:00Z").build().unwrap();
    /// assert!(xenrad_fhir_model::to_json(&a).contains(r#""participant":[{"actor":{"reference":"Patient/pat-1"},"status":"accepted"}]"#));
    /// ```
    AppointmentBuilder,
    Appointment
);

impl AppointmentBuilder {
    /// Starts with id and `status` (`proposed`, `pending`, `booked`, `cancelled`, ...).
    pub fn new(id: &str, status: &str) -> Self {
        AppointmentBuilder(Builder::new(ResourceType::Appointment, id).str("status", status))
    }

    /// Adds a `participant` (actor reference, participation status).
    #[must_use]
    pub fn participant(self, actor: &str, status: &str) -> Self {
        self.node("participant", |n| {
            n.add_node("actor", |a| reference_into(a, actor, None))?;
            n.add_str("status", status.to_owned())?;
            Ok(())
        })
    }

    /// Sets `start` (an instant).
    #[must_use]
    pub fn start(self, instant: &str) -> Self {
        self.str("start", instant)
    }

    /// Sets `end` (an instant).
    #[must_use]
    pub fn end(self, instant: &str) -> Self {
        self.str("end", instant)
    }

    /// Adds a `basedOn` reference (the ServiceRequest).
    #[must_use]
    pub fn based_on(self, reference: &str) -> Self {
        AppointmentBuilder(self.0.reference("basedOn", reference, None))
    }

    /// Sets `description`.
    #[must_use]
    pub fn description(self, text: &str) -> Self {
        self.str("description", text)
    }
}

typed_builder!(
    /// Builds an `AuditEvent` (R4; in the spirit of IHE Basic Audit Log Patterns): what
    /// happened (`type`, `subtype`, `action`, `outcome`), when (`recorded`), who asked
    /// (`agent`, requestor), who observed (`source`) and what it touched (`entity`), by
    /// identifiers and references only.
    ///
    /// ```
    /// use xenrad_fhir_model::builders::AuditEventBuilder;
    /// let e = AuditEventBuilder::new("ae-1", "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest",
    ///         "R", "2026-01-02T10:00:00.000Z", "0")
    ///     .subtype("http://hl7.org/fhir/restful-interaction", "read")
    ///     .agent("urn:xenrad:api-key", "viewer", true, Some("127.0.0.1"))
    ///     .source("xenrad-gateway", Some("fhir"))
    ///     .entity_reference("Patient/pat-1", "1")
    ///     .entity_identifier("urn:xenrad:hl7v2-control-id", "MSG-1", "2")
    ///     .build().unwrap();
    /// let j = xenrad_fhir_model::to_json(&e);
    /// assert!(j.contains(r#""agent":[{"who":{"identifier":{"system":"urn:xenrad:api-key","value":"viewer"}},"name":"viewer","requestor":true,"network":{"address":"127.0.0.1","type":"2"}}]"#), "{j}");
    /// assert!(j.contains(r#""entity":[{"what":{"reference":"Patient/pat-1"},"type":{"system":"http://terminology.hl7.org/CodeSystem/audit-entity-type","code":"1"}}"#), "{j}");
    /// // `action` and `outcome` are bound (required) to their value sets.
    /// assert!(AuditEventBuilder::new("x", "s", "c", "Z", "2026-01-02T10:00:00Z", "0").build().is_err());
    /// assert!(AuditEventBuilder::new("x", "s", "c", "R", "2026-01-02T10:00:00Z", "5").build().is_err());
    /// ```
    AuditEventBuilder,
    AuditEvent
);

const AUDIT_ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";

impl AuditEventBuilder {
    /// Starts with id, `type` (a coding), `action` (C, R, U, D, E), `recorded` (an instant)
    /// and `outcome` (0 success, 4 minor failure, 8 serious failure, 12 major failure).
    pub fn new(
        id: &str,
        type_system: &str,
        type_code: &str,
        action: &str,
        recorded: &str,
        outcome: &str,
    ) -> Self {
        AuditEventBuilder(
            Builder::new(ResourceType::AuditEvent, id)
                .node("type", |n| coding(n, type_system, type_code, None))
                .str("action", action)
                .str("recorded", recorded)
                .str("outcome", outcome),
        )
    }

    /// Adds a `subtype` coding (e.g. a `restful-interaction` code, or a DICOM message).
    #[must_use]
    pub fn subtype(self, system: &str, code: &str) -> Self {
        self.node("subtype", |n| coding(n, system, code, None))
    }

    /// Sets `outcomeDesc` (a reason, never message content).
    #[must_use]
    pub fn outcome_desc(self, text: &str) -> Self {
        self.str("outcomeDesc", text)
    }

    /// Adds an `agent`: `who` by identifier (e.g. an API key's name, a calling AE title; also
    /// its `name`),
    /// whether it initiated the event, and its network address (type 2, an IP address).
    #[must_use]
    pub fn agent(
        self,
        who_system: &str,
        who: &str,
        requestor: bool,
        address: Option<&str>,
    ) -> Self {
        self.node("agent", |n| {
            n.add_node("who", |w| {
                w.add_node("identifier", |i| identifier(i, who_system, who))?;
                Ok(())
            })?;
            n.add_str("name", who.to_owned())?;
            n.add_str("requestor", requestor.to_string())?;
            if let Some(a) = address {
                n.add_node("network", |net| {
                    net.add_str("address", a.to_owned())?;
                    net.add_str("type", "2".to_owned())?;
                    Ok(())
                })?;
            }
            Ok(())
        })
    }

    /// Sets `source`: the observer (by display) and, optionally, its `site`.
    #[must_use]
    pub fn source(self, observer: &str, site: Option<&str>) -> Self {
        self.node("source", |n| {
            if let Some(s) = site {
                n.add_str("site", s.to_owned())?;
            }
            n.add_node("observer", |o| {
                o.add_str("display", observer.to_owned())?;
                Ok(())
            })?;
            Ok(())
        })
    }

    /// Adds an `entity` by reference (`Patient/123`), with its `audit-entity-type` code
    /// (1 person, 2 system object, 3 organization, 4 other).
    #[must_use]
    pub fn entity_reference(self, reference: &str, entity_type: &str) -> Self {
        self.node("entity", |n| {
            n.add_node("what", |w| reference_into(w, reference, None))?;
            n.add_node("type", |t| coding(t, AUDIT_ENTITY_TYPE, entity_type, None))?;
            Ok(())
        })
    }

    /// Adds an `entity` by identifier (a message control id, a SOP Instance UID), with its
    /// `audit-entity-type` code.
    #[must_use]
    pub fn entity_identifier(self, system: &str, value: &str, entity_type: &str) -> Self {
        self.node("entity", |n| {
            n.add_node("what", |w| {
                w.add_node("identifier", |i| identifier(i, system, value))?;
                Ok(())
            })?;
            n.add_node("type", |t| coding(t, AUDIT_ENTITY_TYPE, entity_type, None))?;
            Ok(())
        })
    }
}
