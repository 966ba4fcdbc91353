//! Typed data-type views on corpus files: xsi:type through prefixes, TS/IVL_TS, coded values,
//! SOAP/WS-Addressing, and every view on every element of every file without a panic.

mod common;

use xenrad_hl7v3::types::{Coded, Ii, IvlTs, Precision, RootKind, Ts, root_kind, xsi_type};
use xenrad_hl7v3::{HL7_NS, strict};

fn xsi_types(rel: &str) -> Option<Vec<(String, String)>> {
    let dir = common::corpus_dir()?;
    let bytes = std::fs::read(dir.join(rel)).unwrap();
    let m = strict(&bytes).unwrap();
    let mut out = Vec::new();
    let mut stack = vec![m.root()];
    while let Some(e) = stack.pop() {
        if let Some((ns, local)) = xsi_type(&e) {
            out.push((ns.to_owned(), local.to_owned()));
        }
        stack.extend(e.children());
    }
    Some(out)
}

#[test]
fn xsi_type_resolves_through_prefix_or_default_namespace() {
    let Some(prefixed) = xsi_types("ipf/validation__type-ns-good.xml") else {
        return;
    };
    let unprefixed = xsi_types("ipf/validation__type-nons-good.xml").unwrap();
    assert_eq!(prefixed.len(), 22);
    // `ns1:II` with ns1 bound to HL7, and `II` under a default HL7 namespace, are the same type.
    let mut a = prefixed.clone();
    let mut b = unprefixed.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(prefixed.iter().all(|(ns, _)| ns == HL7_NS));
    assert!(prefixed.iter().any(|(_, l)| l == "IVL_TS"));
    let wrong = xsi_types("ipf/validation__type-ns-wrong.xml").unwrap();
    assert!(wrong.iter().any(|(ns, l)| ns == HL7_NS && l == "REAL"));
}

#[test]
fn ts_ivl_and_coded_views_on_the_corpus() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let (good, _) = common::corpus_files(&dir);
    let (mut ts_ok, mut ivl, mut translations, mut uuids) = (0, 0, 0, 0);
    for p in &good {
        let bytes = std::fs::read(p).unwrap();
        let m = strict(&bytes).unwrap();
        assert!(xenrad_hl7v3::payload::touch_all(m.document().root()) < usize::MAX);
        if let Some(t) = m.header().creation_time.as_deref() {
            let ts = Ts {
                value: Some(t.into()),
                null_flavor: None,
            };
            if ts.naive().is_some() {
                ts_ok += 1;
            }
        }
        uuids += usize::from(
            m.header().message_id.as_ref().and_then(Ii::root_kind) == Some(RootKind::Uuid),
        );
        let mut stack = vec![m.root()];
        while let Some(e) = stack.pop() {
            if e.local_name() == "effectiveTime" && e.child("low").is_some() {
                let v = IvlTs::from_element(&e);
                ivl += usize::from(v.low.as_ref().and_then(Ts::precision).is_some());
            }
            translations += Coded::new(e).translations().count();
            stack.extend(e.children());
        }
    }
    assert!(ts_ok > 250, "{ts_ok} creation times parsed");
    assert!(ivl > 20, "{ivl} IVL_TS with a low bound");
    assert!(translations > 5, "{translations} translations");
    assert!(uuids > 100, "{uuids} UUID message ids");
    assert_eq!(root_kind("2.16.840.1.113883.19"), RootKind::Oid);
    assert_eq!(root_kind("2.16.0840"), RootKind::Invalid);
    assert_eq!(root_kind("MY-RUID1"), RootKind::Ruid);
    let ts = Ts {
        value: Some("200708".into()),
        null_flavor: None,
    };
    assert_eq!(ts.precision(), Some(Precision::Month));
}

#[test]
fn soap_envelope_unwrapped_with_ws_addressing() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let bytes = std::fs::read(
        dir.join("ihe-iti-examples/XCPD__XCPDCrossGatewayPatientDiscoveryRequest.xml"),
    )
    .unwrap();
    let m = strict(&bytes).unwrap();
    let h = m.header();
    assert!(h.soap);
    assert_eq!(h.interaction, "PRPA_IN201305UV02");
    assert_eq!(
        h.wsa_action.as_deref(),
        Some("urn:hl7-org:v3:PRPA_IN201305UV02:CrossGatewayPatientDiscovery")
    );
    assert_eq!(
        h.wsa_message_id.as_deref(),
        Some("urn:uuid:a02ca8cd-86fa-4afc-a27c-16c183b2055")
    );
    let fast = xenrad_hl7v3::header(&bytes).unwrap();
    assert_eq!(fast.wsa_action, h.wsa_action);
    assert_eq!(fast.wsa_message_id, h.wsa_message_id);
    assert_eq!(m.root().local_name(), "PRPA_IN201305UV02");
    assert!(m.query().is_some());
}
