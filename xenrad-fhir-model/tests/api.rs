//! Behaviour of the reader, writer, builders and gateway helpers on hand-written inputs.

use std::borrow::Cow;
use xenrad_fhir_model::builders::{
    ImagingStudyBuilder, PatientBuilder, ProcedureBuilder, Series, ServiceRequestBuilder,
};
use xenrad_fhir_model::bundle::{EntryMode, Paging, SearchSet};
use xenrad_fhir_model::capability::CapabilityStatementBuilder;
use xenrad_fhir_model::outcome::{OperationOutcome, Severity};
use xenrad_fhir_model::search::{Modifier, Prefix, SearchValue, parse_query};
use xenrad_fhir_model::{
    ErrorKind, Node, PrimValue, ReadOptions, ResourceType, UnknownPolicy, Value, from_json,
    from_json_with, json, to_json,
};

fn same(a: &str, b: &str) -> bool {
    json::parse(a.as_bytes(), 100)
        .unwrap()
        .same_as(&json::parse(b.as_bytes(), 100).unwrap())
}

#[test]
fn strings_without_escapes_are_borrowed() {
    let input = br#"{"resourceType":"Patient","id":"p1","name":[{"family":"Plain","given":["Esc\u00e9"]}]}"#;
    let r = from_json(input).unwrap();
    let name = r.node.first("name").unwrap().as_node().unwrap();
    let family = match name.first("family").unwrap() {
        Value::Primitive(p) => p.value.clone().unwrap(),
        _ => unreachable!(),
    };
    assert!(matches!(family, PrimValue::String(Cow::Borrowed("Plain"))));
    let given = match name.first("given").unwrap() {
        Value::Primitive(p) => p.value.clone().unwrap(),
        _ => unreachable!(),
    };
    assert!(matches!(given, PrimValue::String(Cow::Owned(ref s)) if s == "Esc\u{e9}"));
}

#[test]
fn decimals_keep_their_text_and_output_is_in_spec_order() {
    let input = r#"{"valueQuantity":{"unit":"mg","value":1.500},"status":"final","code":{"text":"x"},"resourceType":"Observation","id":"o"}"#;
    let r = from_json(input.as_bytes()).unwrap();
    assert_eq!(r.resource_type, ResourceType::Observation);
    assert_eq!(
        to_json(&r),
        r#"{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.500,"unit":"mg"}}"#
    );
}

#[test]
fn primitive_extension_siblings_in_arrays_with_nulls() {
    let input = r#"{"resourceType":"Patient","name":[{"_given":[null,{"id":"g2","extension":[{"url":"http://x","valueString":"y"}]}],"given":["A",null]}]}"#;
    let r = from_json(input.as_bytes()).unwrap();
    let out = to_json(&r);
    assert!(same(input, &out), "{out}");
    // null without an extension is an error
    let bad = r#"{"resourceType":"Patient","name":[{"given":["A",null]}]}"#;
    let e = from_json(bad.as_bytes()).unwrap_err();
    assert_eq!(e.pointer, "/name/0/given/1");
    // lengths must agree
    let bad = r#"{"resourceType":"Patient","name":[{"given":["A"],"_given":[null,{"id":"x"}]}]}"#;
    assert_eq!(
        from_json(bad.as_bytes()).unwrap_err().pointer,
        "/name/0/_given"
    );
}

#[test]
fn unknown_elements_strict_and_lenient() {
    let input =
        br#"{"resourceType":"Patient","name":[{"family":"F","nickname":"N"}],"gender":"male"}"#;
    let e = from_json(input).unwrap_err();
    assert_eq!(e.pointer, "/name/0/nickname");
    assert_eq!(e.kind, ErrorKind::UnknownElement("nickname".into()));
    let opts = {
        let mut c = ReadOptions::default();
        c.unknown = UnknownPolicy::Lenient;
        c
    };
    let (r, issues) = from_json_with(input, &opts).unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].pointer, "/name/0/nickname");
    assert!(same(std::str::from_utf8(input).unwrap(), &to_json(&r)));
}

#[test]
fn structural_errors_have_pointers() {
    let cases: &[(&str, &str)] = &[
        (r#"{"resourceType":"Patient","active":"yes"}"#, "/active"),
        (
            r#"{"resourceType":"Patient","name":{"family":"x"}}"#,
            "/name",
        ),
        (
            r#"{"resourceType":"Patient","birthDate":"1970-13-01"}"#,
            "/birthDate",
        ),
        (
            r#"{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{},"valueString":"x"}"#,
            "/valueString",
        ),
        // a duplicate after members out of specification order (a fuzz finding)
        (
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"identifier":[{"value":"1"}],"status":"final"}"#,
            "/status",
        ),
        (
            r#"{"resourceType":"Patient","name":[{"given":["a"],"family":"b","_given":[{"id":"1"}],"given":["c"]}]}"#,
            "/name/0/given",
        ),
        (
            r#"{"resourceType":"Patient","multipleBirthInteger":1.5}"#,
            "/multipleBirthInteger",
        ),
        (
            r#"{"resourceType":"Patient","contained":[{"resourceType":"Nope"}]}"#,
            "/contained/0/resourceType",
        ),
        (r#"{"resourceType":"Patient","id":"a b"}"#, "/id"),
        (r#"{"resourceType":"Patient","name":[]}"#, "/name"),
        (
            r#"{"resourceType":"Binary","contentType":"text/plain","data":"QUJD$"}"#,
            "/data",
        ),
        (
            r#"{"resourceType":"Binary","contentType":"text/plain","data":"QUJDé"}"#,
            "/data",
        ),
    ];
    for (input, pointer) in cases {
        let e = from_json(input.as_bytes()).unwrap_err();
        assert_eq!(&e.pointer, pointer, "{input}: {e}");
        let oo = OperationOutcome::from_error(&e, Some(ResourceType::Patient));
        assert!(oo.has_errors());
    }
    assert_eq!(
        from_json(br#"{"id":"x"}"#).unwrap_err().kind,
        ErrorKind::MissingResourceType
    );
    assert!(matches!(
        from_json(br#"{"resourceType":"Patient""#).unwrap_err().kind,
        ErrorKind::Syntax(_)
    ));
}

#[test]
fn depth_and_size_limits() {
    let mut deep = String::from(r#"{"resourceType":"Parameters","parameter":["#);
    for _ in 0..200 {
        deep.push_str(r#"{"name":"a","part":["#);
    }
    let opts = {
        let mut c = ReadOptions::default();
        c.max_depth = 50;
        c
    };
    assert_eq!(
        from_json_with(deep.as_bytes(), &opts).unwrap_err().kind,
        ErrorKind::TooDeep
    );
    let opts = {
        let mut c = ReadOptions::default();
        c.max_size = 10;
        c
    };
    assert_eq!(
        from_json_with(deep.as_bytes(), &opts).unwrap_err().kind,
        ErrorKind::TooLarge
    );
}

#[test]
fn contained_and_bundle_resources_dispatch_on_resource_type() {
    let input = r##"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"id":"late","resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o"}],"managingOrganization":{"reference":"#o"}}}]}"##;
    let r = from_json(input.as_bytes()).unwrap();
    let entry = r.node.first("entry").unwrap().as_node().unwrap();
    match entry.first("resource").unwrap() {
        Value::Resource(p) => {
            assert_eq!(p.resource_type, ResourceType::Patient);
            assert_eq!(p.id(), Some("late"));
        }
        other => panic!("{other:?}"),
    }
    assert!(same(input, &to_json(&r)));
}

#[test]
fn builders_make_valid_resources_that_read_back() {
    let p = PatientBuilder::new("pat-1")
        .identifier("urn:oid:1.2.36.146.595.217.0.1", "12345")
        .name("Chalmers", &["Peter", "James"])
        .gender("male")
        .birth_date("1974-12-25")
        .build()
        .unwrap();
    let sr = ServiceRequestBuilder::new("sr-1", "active", "order", "Patient/pat-1")
        .identifier("urn:oid:1.2.3", "ACC123")
        .code("http://loinc.org", "36643-5", Some("XR Chest 2V"))
        .occurrence("2026-01-02T10:00:00+01:00")
        .requester("Practitioner/dr", Some("Dr X"))
        .build()
        .unwrap();
    let series = Series::new(
        "2.16.124.113543.6003.2588828330.45298.17418.2723805630",
        "CT",
    )
    .description("CT Surview 180")
    .instance(
        "2.16.124.113543.6003.189642796.63084.16748.2599092903",
        "1.2.840.10008.5.1.4.1.1.2",
        Some(1),
    );
    let is = ImagingStudyBuilder::new("is-1", "available", "Patient/pat-1")
        .study_uid("2.16.124.113543.6003.1154777499.30246.19789.3503430045")
        .started("2026-01-02T10:05:00Z")
        .based_on("ServiceRequest/sr-1")
        .series(series)
        .build()
        .unwrap();
    let pr = ProcedureBuilder::new("proc-1", "completed", "Patient/pat-1")
        .code(
            "http://snomed.info/sct",
            "363680008",
            Some("Radiographic imaging procedure"),
        )
        .performed_period("2026-01-02T10:00:00Z", Some("2026-01-02T10:20:00Z"))
        .based_on("ServiceRequest/sr-1")
        .build()
        .unwrap();
    for r in [p, sr, is, pr] {
        let text = to_json(&r);
        let back = from_json(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(back, r);
        assert!(!xenrad_fhir_model::validate(&back).has_errors());
    }
}

#[test]
fn builders_report_bad_values() {
    let e = PatientBuilder::new("p")
        .birth_date("25.12.1974")
        .build()
        .unwrap_err();
    assert_eq!(e.issues[0].location, vec!["/birthDate".to_owned()]);
    let e = ServiceRequestBuilder::new("s", "bogus", "order", "Patient/p")
        .build()
        .unwrap_err();
    assert_eq!(e.issues[0].code, "code-invalid");
    let e = ImagingStudyBuilder::new("i", "available", "Patient/p")
        .series(Series::new("1.2.03", "CT"))
        .build()
        .unwrap_err();
    assert_eq!(e.issues[0].location, vec!["/series/0/uid".to_owned()]);
    let e = PatientBuilder::new("p")
        .str("colour", "red")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("colour"));
    // a second value for a max=1 element
    let mut n = Node::of("HumanName");
    n.add_str("family", "A").unwrap();
    assert!(n.add_str("family", "B").is_err());
}

#[test]
fn searchset_paging_links() {
    let mut s = SearchSet::new(Paging {
        base: "http://h/fhir/Patient?name=smith".into(),
        offset: 20,
        count: 10,
        total: Some(35),
    })
    .id("b1");
    for i in 0..3 {
        let p = PatientBuilder::new(&format!("p{i}")).build().unwrap();
        s.push("http://h/fhir/", p, EntryMode::Match).unwrap();
    }
    let b = s.build().unwrap();
    let json = to_json(&b);
    let v = json::parse(json.as_bytes(), 100).unwrap();
    assert_eq!(v.get("type").and_then(|t| t.as_str()), Some("searchset"));
    assert_eq!(v.get("total"), Some(&json::Json::Number("35".into())));
    let json::Json::Array(links) = v.get("link").unwrap() else {
        panic!()
    };
    let rel: Vec<(&str, &str)> = links
        .iter()
        .map(|l| {
            (
                l.get("relation").unwrap().as_str().unwrap(),
                l.get("url").unwrap().as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rel,
        vec![
            (
                "self",
                "http://h/fhir/Patient?name=smith&_count=10&_offset=20"
            ),
            (
                "first",
                "http://h/fhir/Patient?name=smith&_count=10&_offset=0"
            ),
            (
                "previous",
                "http://h/fhir/Patient?name=smith&_count=10&_offset=10"
            ),
            (
                "next",
                "http://h/fhir/Patient?name=smith&_count=10&_offset=30"
            ),
            (
                "last",
                "http://h/fhir/Patient?name=smith&_count=10&_offset=30"
            ),
        ]
    );
    assert!(json.contains(r#""fullUrl":"http://h/fhir/Patient/p0""#));
    assert!(json.contains(r#""search":{"mode":"match"}"#));
    // the bundle reads back and validates
    let back = from_json(json.as_bytes()).unwrap();
    assert!(!xenrad_fhir_model::validate(&back).has_errors());
    // last page: no next
    let last = Paging {
        base: "http://h/fhir/Patient".into(),
        offset: 30,
        count: 10,
        total: Some(35),
    };
    assert!(last.links().iter().all(|(r, _)| *r != "next"));
}

#[test]
fn capability_statement_is_valid_and_lists_what_is_served() {
    let cs = CapabilityStatementBuilder::new("Xenrad gateway", "0.1.0", "2026-11-26")
        .base_url("http://localhost:8080/fhir")
        .resource(
            ResourceType::Patient,
            &["read", "search-type"],
            &["_id", "name", "birthdate", "identifier"],
        )
        .unwrap()
        .resource(
            ResourceType::ImagingStudy,
            &["read", "search-type"],
            &["patient", "started", "identifier"],
        )
        .unwrap()
        .resource(ResourceType::ServiceRequest, &["read"], &[])
        .unwrap()
        .build()
        .unwrap();
    assert!(!xenrad_fhir_model::validate(&cs).has_errors());
    let json = to_json(&cs);
    assert!(json.contains(r#""fhirVersion":"4.0.1""#));
    assert!(json.contains(r#""name":"started","definition":"http://hl7.org/fhir/SearchParameter/ImagingStudy-started","type":"date""#));
    assert!(from_json(json.as_bytes()).is_ok());
    assert!(
        CapabilityStatementBuilder::new("x", "1", "2026")
            .resource(ResourceType::Patient, &["read"], &["colour"])
            .is_err()
    );
}

#[test]
fn operation_outcome_resource() {
    let mut oo = OperationOutcome::new();
    assert!(!oo.has_errors());
    assert!(to_json(&oo.to_resource()).contains("informational"));
    oo.push(Severity::Warning, "processing", "slow", None);
    assert!(!oo.has_errors());
    let e = from_json(br#"{"resourceType":"Patient","name":[{"given":[1]}]}"#).unwrap_err();
    oo.push_error(&e, Some(ResourceType::Patient));
    assert!(oo.has_errors());
    let r = oo.to_resource();
    assert!(!xenrad_fhir_model::validate(&r).has_errors());
    let json = to_json(&r);
    assert!(
        json.contains(
            r#""location":["/name/0/given/0"],"expression":["Patient.name[0].given[0]"]"#
        ),
        "{json}"
    );
}

#[test]
fn search_query_parsing() {
    let q = parse_query(
        ResourceType::Patient,
        "name=smith&name:contains=jo,ann&birthdate=ge1980-01-01&birthdate=lt2000&identifier=http://x|123\
         &gender:not=male&general-practitioner:missing=true&organization=Organization/1&_count=50&_offset=100\
         &_sort=-birthdate,name&_include=Patient:organization&_revinclude=ImagingStudy:patient&_summary=count",
    )
    .unwrap();
    assert_eq!(q.params.len(), 8);
    assert_eq!(q.params[1].modifier, Some(Modifier::Contains));
    assert_eq!(
        q.params[1].values,
        vec![
            SearchValue::Text("jo".into()),
            SearchValue::Text("ann".into())
        ]
    );
    assert!(
        matches!(&q.params[3].values[0], SearchValue::Ordered { prefix: Prefix::Lt, value, .. } if value == "2000")
    );
    assert_eq!(
        q.params[4].values[0],
        SearchValue::Token {
            system: Some("http://x".into()),
            code: Some("123".into())
        }
    );
    assert_eq!(q.params[5].modifier, Some(Modifier::Not));
    assert_eq!(q.params[6].values, vec![SearchValue::Missing(true)]);
    assert_eq!(
        q.params[7].values[0],
        SearchValue::Reference {
            resource_type: Some(ResourceType::Organization),
            id: "1".into()
        }
    );
    assert_eq!((q.count, q.offset), (Some(50), Some(100)));
    assert_eq!(q.sort.len(), 2);
    assert!(q.sort[0].descending);
    assert_eq!(q.include[0].source, ResourceType::Patient);
    assert_eq!(q.revinclude[0].source, ResourceType::ImagingStudy);
    // escapes and percent-encoding
    let q = parse_query(ResourceType::Patient, "name=a%5C%2Cb%20c&identifier=%7C123").unwrap();
    assert_eq!(q.params[0].values, vec![SearchValue::Text("a,b c".into())]);
    assert_eq!(
        q.params[1].values[0],
        SearchValue::Token {
            system: Some(String::new()),
            code: Some("123".into())
        }
    );
    // ImagingStudy parameters from the generated table
    let q = parse_query(ResourceType::ImagingStudy, "started=ge2026-01-01T00:00:00Z&modality=http://dicom.nema.org/resources/ontology/DCM|CT&subject:Patient=p1").unwrap();
    assert_eq!(
        q.params[2].modifier,
        Some(Modifier::Type(ResourceType::Patient))
    );
    // errors
    for bad in [
        "colour=red",
        "birthdate=yesterday",
        "name:not=x",
        "_count=-1",
        "gender:missing=maybe",
        "_include=Patient:name",
        "subject.name=x",
        "name=%ZZ",
        "name=",
    ] {
        let oo = parse_query(ResourceType::Patient, bad).unwrap_err();
        assert!(oo.has_errors(), "{bad}");
    }
}

#[test]
fn base64_fast_path_and_fallback() {
    let long = "QUJD".repeat(40);
    for (data, ok) in [
        (format!("{long} {long}"), true),   // fast path (spaces allowed)
        (format!("{long}\\n{long}"), true), // escaped newline: generic path
        (format!("{long}!{long}"), false),
        (format!("{long}\\u0041{long}"), true),
        (format!("{long}\\\"{long}"), false),
    ] {
        let json =
            format!(r#"{{"resourceType":"Binary","contentType":"text/plain","data":"{data}"}}"#);
        let r = from_json(json.as_bytes());
        assert_eq!(r.is_ok(), ok, "{data}: {r:?}");
        if let Ok(r) = r {
            let out = to_json(&r);
            assert_eq!(from_json(out.as_bytes()).as_ref(), Ok(&r), "{data}");
            if !data.contains('\\') {
                assert_eq!(out, json, "{data}");
            }
        } else {
            assert_eq!(r.unwrap_err().pointer, "/data");
        }
    }
}

#[test]
fn builders_edit_existing_resources_and_replace_cleared_elements() {
    use xenrad_fhir_model::builders::AddressParts;
    let lines = vec!["1 Main St".to_owned()];
    let p = PatientBuilder::new("pat-2")
        .active(true)
        .identifier("urn:oid:1.2.3", "A1")
        .name_with_use("official", Some("Doe"), &["John"])
        .address(&AddressParts {
            lines: &lines,
            city: Some("Springfield"),
            postal_code: Some("62701"),
            ..AddressParts::default()
        })
        .build()
        .unwrap();
    assert_eq!(
        to_json(&p),
        r#"{"resourceType":"Patient","id":"pat-2","identifier":[{"system":"urn:oid:1.2.3","value":"A1"}],"active":true,"name":[{"use":"official","family":"Doe","given":["John"]}],"address":[{"line":["1 Main St"],"city":"Springfield","postalCode":"62701"}]}"#
    );
    // Read back, then edit: untouched elements stay, cleared ones are replaced.
    let stored = from_json(to_json(&p).as_bytes()).unwrap().into_owned();
    let merged = PatientBuilder::edit(stored)
        .clear("active")
        .active(false)
        .link("Patient/pat-3", "replaced-by")
        .build()
        .unwrap();
    assert_eq!(
        to_json(&merged),
        r#"{"resourceType":"Patient","id":"pat-2","identifier":[{"system":"urn:oid:1.2.3","value":"A1"}],"active":false,"name":[{"use":"official","family":"Doe","given":["John"]}],"address":[{"line":["1 Main St"],"city":"Springfield","postalCode":"62701"}],"link":[{"other":{"reference":"Patient/pat-3"},"type":"replaced-by"}]}"#
    );
    // Without clear, a second value of a max = 1 element is an error, and so is a bad code.
    let again = from_json(to_json(&p).as_bytes()).unwrap().into_owned();
    assert!(PatientBuilder::edit(again).active(false).build().is_err());
    assert!(
        PatientBuilder::new("p")
            .link("Patient/x", "sibling")
            .build()
            .is_err()
    );
    // Editing a resource of another type is reported by build().
    let sr = ServiceRequestBuilder::new("s", "active", "order", "Patient/p")
        .build()
        .unwrap();
    assert!(PatientBuilder::edit(sr).build().is_err());
}

#[test]
fn study_and_procedure_builders_cover_the_gateway_elements() {
    let st = ImagingStudyBuilder::with_subject_display("is-2", "registered", "unknown patient")
        .study_uid("1.2.3")
        .endpoint("Endpoint/dicomweb")
        .procedure_reference("Procedure/proc-2")
        .number_of_series(1)
        .number_of_instances(2)
        .series(Series::new("1.2.3.1", "CT").instance(
            "1.2.3.1.1",
            "1.2.840.10008.5.1.4.1.1.2",
            None,
        ))
        .status("available")
        .build()
        .unwrap();
    assert_eq!(
        to_json(&st),
        r#"{"resourceType":"ImagingStudy","id":"is-2","identifier":[{"system":"urn:dicom:uid","value":"urn:oid:1.2.3"}],"status":"available","subject":{"display":"unknown patient"},"endpoint":[{"reference":"Endpoint/dicomweb"}],"numberOfSeries":1,"numberOfInstances":2,"procedureReference":{"reference":"Procedure/proc-2"},"series":[{"uid":"1.2.3.1","modality":{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"CT"},"numberOfInstances":1,"instance":[{"uid":"1.2.3.1.1","sopClass":{"system":"urn:ietf:rfc:3986","code":"urn:oid:1.2.840.10008.5.1.4.1.1.2"}}]}]}"#
    );
    let pr = ProcedureBuilder::with_subject_display("proc-2", "stopped", "unknown patient")
        .category(
            "http://snomed.info/sct",
            "103693007",
            Some("Diagnostic procedure"),
        )
        .performed(None, Some("2026-01-02T10:20:00Z"))
        .build()
        .unwrap();
    assert_eq!(
        to_json(&pr),
        r#"{"resourceType":"Procedure","id":"proc-2","status":"stopped","category":{"coding":[{"system":"http://snomed.info/sct","code":"103693007","display":"Diagnostic procedure"}]},"subject":{"display":"unknown patient"},"performedPeriod":{"end":"2026-01-02T10:20:00Z"}}"#
    );
    let none = ProcedureBuilder::new("p", "completed", "Patient/p")
        .performed(None, None)
        .build()
        .unwrap();
    assert!(!to_json(&none).contains("performed"));
    let sr = ServiceRequestBuilder::new("s", "active", "order", "Patient/p")
        .category("http://snomed.info/sct", "363679005", Some("Imaging"))
        .build()
        .unwrap();
    assert!(to_json(&sr).contains(r#""category":[{"coding":[{"system":"http://snomed.info/sct","code":"363679005","display":"Imaging"}]}]"#));
}
