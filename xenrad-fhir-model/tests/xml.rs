//! FHIR XML: every valid official example goes JSON → XML → model and back to JSON unchanged.

mod common;

use xenrad_fhir_model::{from_json, json, to_json, xml};

#[test]
fn every_example_round_trips_through_xml() {
    let files = common::example_files();
    if files.is_empty() {
        return;
    }
    let (mut count, mut bad) = (0, Vec::new());
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        let Ok(r) = from_json(&bytes) else { continue };
        count += 1;
        if !xml::xml_representable(&r) {
            bad.push(format!(
                "{}: a Narrative.div is not a well-formed XHTML div",
                f.display()
            ));
        }
        let x = xml::to_xml(&r);
        match xml::from_xml(&x) {
            Ok(back) => {
                let a = json::parse(&bytes, 1000).expect("json");
                let out = to_json(&back);
                let b = json::parse(out.as_bytes(), 1000).expect("json");
                if !a.same_as(&b) {
                    bad.push(format!("{}: differs", f.display()));
                }
            }
            Err(e) => bad.push(format!("{}: {e}", f.display())),
        }
    }
    for b in bad.iter().take(20) {
        println!("{b}");
    }
    assert_eq!(count, 5291);
    assert!(
        bad.is_empty(),
        "{} of {count} examples do not round-trip through XML",
        bad.len()
    );
}

#[test]
fn xml_errors_and_escapes() {
    let r = from_json(br#"{"resourceType":"Patient","id":"p","name":[{"id":"n1","family":"a\"<&>\n\tb","given":["x",null],"_given":[null,{"extension":[{"url":"http://e","valueDecimal":1.50}]}]}],"active":true}"#).unwrap();
    let x = xml::to_xml(&r);
    assert!(
        x.contains(r#"<family value="a&quot;&lt;&amp;&gt;&#10;&#9;b"/>"#),
        "{x}"
    );
    assert!(
        x.contains(
            r#"<given><extension url="http://e"><valueDecimal value="1.50"/></extension></given>"#
        ),
        "{x}"
    );
    assert_eq!(xml::from_xml(&x).unwrap(), r);
    assert!(xml::is_xhtml_div(
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; b</p><br/></div>"#
    ));
    for not_div in [
        "<div\"}der",
        "<p>x</p>",
        "<div>x</div>trailing",
        "text",
        "<div><b></div>",
    ] {
        assert!(!xml::is_xhtml_div(not_div), "{not_div}");
    }
    for bad in [
        r#"<Patient xmlns="http://hl7.org/fhir"><colour value="red"/></Patient>"#,
        r#"<Patient xmlns="http://hl7.org/fhir"><active value="yes"/></Patient>"#,
        r#"<Patient xmlns="http://hl7.org/fhir"><gender value="male"/><gender value="female"/></Patient>"#,
        "<Nope/>",
        r#"<Patient xmlns="http://hl7.org/fhir"><name>"#,
        r#"<Patient xmlns="http://hl7.org/fhir"><birthDate/></Patient>"#,
    ] {
        assert!(xml::from_xml(bad).is_err(), "{bad}");
    }
    let e = xml::from_xml(
        r#"<Patient xmlns="http://hl7.org/fhir"><name><nick value="x"/></name></Patient>"#,
    )
    .unwrap_err();
    assert_eq!(e.pointer, "/name/nick");
}
