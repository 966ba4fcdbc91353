//! Strict-pass rules: DOCTYPE and entities, prefixes, attributes, limits, positions.

use std::fmt::Write as _;

use xenrad_hl7v3::{ErrorKind, Limits, strict, strict_with};

fn err(input: &str) -> xenrad_hl7v3::V3Error {
    strict(input.as_bytes()).expect_err(input)
}

#[test]
fn doctype_and_billion_laughs_rejected_at_the_doctype() {
    let mut lol =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let body = format!("&lol{};", i - 1).repeat(10);
        writeln!(lol, " <!ENTITY lol{i} \"{body}\">").unwrap();
    }
    lol.push_str("]>\n<lolz>&lol9;</lolz>");
    let e = err(&lol);
    assert_eq!(e.kind, ErrorKind::Doctype);
    assert_eq!((e.line, e.column), (2, 1));
    let xxe = "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>";
    assert_eq!(err(xxe).kind, ErrorKind::Doctype);
}

#[test]
fn undefined_entities_rejected_never_expanded() {
    let e = err("<r>\n a &nbsp; b</r>");
    assert_eq!(e.kind, ErrorKind::UndefinedEntity("nbsp".into()));
    assert_eq!((e.line, e.column), (2, 4));
    assert!(matches!(
        err("<r a='&x;'/>").kind,
        ErrorKind::UndefinedEntity(_)
    ));
    assert!(matches!(
        err("<r>&#0;</r>").kind,
        ErrorKind::UndefinedEntity(_)
    ));
    let m = strict(b"<r a='x&amp;y&#x41;'>&lt;&#66;&gt;</r>").unwrap();
    assert_eq!(m.root().attr("a").as_deref(), Some("x&yA"));
    assert_eq!(m.root().text(), "<B>");
}

#[test]
fn prefixes_must_resolve() {
    assert_eq!(err("<a:r/>").kind, ErrorKind::UnboundPrefix("a".into()));
    assert_eq!(
        err("<r b:x='1'/>").kind,
        ErrorKind::UnboundPrefix("b".into())
    );
    // Scope ends with the declaring element.
    let e = err("<r><x xmlns:p='u'/><p:y/></r>");
    assert_eq!(e.kind, ErrorKind::UnboundPrefix("p".into()));
    assert_eq!((e.line, e.column), (1, 20));
    let m = strict(b"<r xmlns='urn:hl7-org:v3' xmlns:p='urn:p'><p:y p:a='1'/><z/></r>").unwrap();
    let y = m.root().children().next().unwrap();
    assert_eq!(
        (y.namespace(), y.local_name(), y.qname()),
        ("urn:p", "y", "p:y")
    );
    assert_eq!(y.attr_ns("urn:p", "a").as_deref(), Some("1"));
    assert_eq!(m.root().child("z").unwrap().namespace(), "urn:hl7-org:v3");
    // Unprefixed attributes are in no namespace (Namespaces §6.2).
    assert_eq!(
        strict(b"<r xmlns='u' a='1'/>")
            .unwrap()
            .root()
            .attributes()
            .next()
            .unwrap()
            .namespace(),
        ""
    );
}

#[test]
fn attributes_checked() {
    assert!(matches!(
        err("<r a='1' a='2'/>").kind,
        ErrorKind::DuplicateAttribute(_)
    ));
    assert!(matches!(
        err("<r xmlns:p='u' xmlns:q='u' p:a='1' q:a='2'/>").kind,
        ErrorKind::DuplicateAttribute(_)
    ));
    assert!(matches!(err("<r a='<'/>").kind, ErrorKind::Syntax(_)));
    assert!(matches!(err("<r a=1/>").kind, ErrorKind::Syntax(_)));
    assert!(matches!(err("<r a='1/>").kind, ErrorKind::Syntax(_)));
    assert!(matches!(err("<r xmlns:p=''/>").kind, ErrorKind::Syntax(_)));
}

#[test]
fn structure_checked() {
    for bad in [
        "",
        "  ",
        "<r>",
        "<r></s>",
        "<r/><r/>",
        "text<r/>",
        "<r/>tail",
        "<r><!-- a -- b --></r>",
        "</r>",
        "<r>]]></r>",
    ] {
        assert!(strict(bad.as_bytes()).is_err(), "{bad:?} accepted");
    }
    assert_eq!(
        err("<?xml version='1.0' encoding='ISO-8859-1'?><r/>").kind,
        ErrorKind::UnsupportedEncoding("ISO-8859-1".into())
    );
    assert_eq!(strict(b"<r>\xff</r>").unwrap_err().kind, ErrorKind::Utf8);
    assert!(
        strict(
            "\u{FEFF}<?xml version='1.0'?><!-- c --><?pi x?><r><![CDATA[a<b]]></r>\n".as_bytes()
        )
        .is_ok()
    );
}

#[test]
fn limits_enforced() {
    let deep = "<a>".repeat(300) + &"</a>".repeat(300);
    assert_eq!(err(&deep).kind, ErrorKind::Limit("element depth"));
    let limits = {
        let mut c = Limits::default();
        c.max_depth = 10;
        c.max_attributes = 2;
        c.max_bytes = 100;
        c.max_nodes = 5;
        c.max_namespaces = 2;
        c
    };
    let ok = "<a><a><a/></a></a>";
    assert!(strict_with(ok.as_bytes(), &limits).is_ok());
    let e = strict_with(b"<r a='1' b='2' c='3'/>", &limits).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit("attributes per element"));
    let e = strict_with(&[b' '; 101], &limits).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit("input size"));
    let e = strict_with(b"<r><a/><a/><a/><a/><a/></r>", &limits).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit("node count"));
    // Namespaces: distinct URIs per document and declarations in scope are both bounded.
    assert!(strict_with(b"<r xmlns:a='1'><x xmlns:b='2'/></r>", &limits).is_ok());
    let e = strict_with(
        b"<r xmlns:a='1'><x xmlns:b='2'/><y xmlns:c='3'/></r>",
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit("distinct namespaces"));
    let e = strict_with(
        b"<r xmlns:a='1'><x xmlns:b='1'><y xmlns:c='1'/></x></r>",
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit("namespace declarations in scope"));
    let mut many = String::new();
    for i in 0..100 {
        write!(many, "<e{i} xmlns:p{i}='urn:{i}'/>").unwrap();
    }
    let e = strict(format!("<r>{many}</r>").as_bytes()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit("distinct namespaces"));
}

#[test]
fn mixed_content_and_positions() {
    let m = strict(
        "<r>\n  <name>Dr. <given>Ann</given> &amp; <family>Lee</family></name></r>".as_bytes(),
    )
    .unwrap();
    let name = m.root().child("name").unwrap();
    assert_eq!(name.line_col(), (2, 3));
    let texts: Vec<String> = name
        .nodes()
        .map(|n| match n {
            xenrad_hl7v3::xml::Node::Text(t) => t.value().into_owned(),
            xenrad_hl7v3::xml::Node::Element(e) => format!("<{}>", e.local_name()),
        })
        .collect();
    assert_eq!(texts, ["Dr. ", "<given>", " & ", "<family>"]);
}

#[test]
fn many_attributes_checked_for_duplicates() {
    let limits = {
        let mut c = Limits::default();
        c.max_attributes = 20_000;
        c
    };
    let mut tag = String::from("<r xmlns:p='urn:p' xmlns:q='urn:p'");
    for i in 0..5000 {
        write!(tag, " a{i}='{i}' p:b{i}='{i}'").unwrap();
    }
    let ok = format!("{tag}/>");
    let m = strict_with(ok.as_bytes(), &limits).unwrap();
    assert_eq!(m.root().attributes().count(), 10_000);
    // A repeated name far from its first occurrence (sorted check, above 8 attributes).
    let dup = format!("{tag} a17='x'/>");
    let e = strict_with(dup.as_bytes(), &limits).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateAttribute("a17".into()));
    // The same expanded name through two prefixes bound to one namespace.
    let clash = format!("{tag} q:b4999='x'/>");
    let e = strict_with(clash.as_bytes(), &limits).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateAttribute("q:b4999".into()));
    // Repeated namespace declarations are duplicates too.
    assert!(matches!(
        err("<r xmlns='u' a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8' i='9' xmlns='v'/>").kind,
        ErrorKind::DuplicateAttribute(_)
    ));
}
