//! Abstract message syntax of the supported v2.5.1 structures (HL7 v2.5.1 ch. 3 ADT, ch. 4
//! ORM/OMI, ch. 7 ORU, ch. 10 SIU, ch. 2 ACK), written in the standard's own notation:
//! `[ X ]` optional, `{ X }` repeating, `<A|B>` a choice of segments.

use std::sync::OnceLock;

/// One node of a structure grammar.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// A segment ID.
    Seg(&'static str),
    /// One of several segment IDs.
    Choice(Vec<&'static str>),
    /// A group of nodes.
    Group(Vec<Node>),
}

/// A grammar node with its cardinality.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) optional: bool,
    pub(crate) repeating: bool,
    /// The segments that can start this node, as bits over the structure's `known_keys`
    /// (filled in once the grammar is parsed).
    pub(crate) first: u64,
}

impl Node {
    /// Computes [`Node::first`] of this node and its children from the sorted segment keys.
    fn fill_first(&mut self, keys: &[u64]) {
        let bit = |name: &str| {
            keys.binary_search(&super::key(name))
                .map_or(0, |i| 1u64 << i)
        };
        self.first = match &mut self.kind {
            Kind::Seg(s) => bit(s),
            Kind::Choice(c) => c.iter().fold(0, |m, s| m | bit(s)),
            Kind::Group(children) => {
                let mut m = 0;
                let mut open = true;
                for c in children.iter_mut() {
                    c.fill_first(keys);
                    if open {
                        m |= c.first;
                        open = c.optional;
                    }
                }
                m
            }
        };
    }
    /// Human-readable name (first segment of a group).
    pub(crate) fn label(&self) -> String {
        match &self.kind {
            Kind::Seg(s) => (*s).to_string(),
            Kind::Choice(c) => c.join("|"),
            Kind::Group(ch) => format!(
                "group starting with {}",
                ch.first().map_or_else(String::new, Node::label)
            ),
        }
    }
    pub(crate) fn collect_names(&self, out: &mut Vec<&'static str>) {
        match &self.kind {
            Kind::Seg(s) => out.push(s),
            Kind::Choice(c) => out.extend(c.iter().copied()),
            Kind::Group(ch) => ch.iter().for_each(|n| n.collect_names(out)),
        }
    }
}

fn parse_seq(tokens: &[&'static str], i: &mut usize, close: Option<&str>) -> Vec<Node> {
    let mut out = Vec::new();
    while *i < tokens.len() {
        let t = tokens[*i];
        *i += 1;
        if Some(t) == close {
            return out;
        }
        let node = match t {
            "[" => {
                let inner = parse_seq(tokens, i, Some("]"));
                wrap(inner, true, false)
            }
            "{" => {
                let inner = parse_seq(tokens, i, Some("}"));
                wrap(inner, false, true)
            }
            _ if t.starts_with('<') => Node {
                kind: Kind::Choice(
                    t.trim_matches(|c| c == '<' || c == '>')
                        .split('|')
                        .collect(),
                ),
                optional: false,
                repeating: false,
                first: 0,
            },
            _ => Node {
                kind: Kind::Seg(t),
                optional: false,
                repeating: false,
                first: 0,
            },
        };
        out.push(node);
    }
    out
}

/// `[ X ]` / `{ X }` around a single node modifies it; around several makes a group.
fn wrap(mut inner: Vec<Node>, optional: bool, repeating: bool) -> Node {
    if inner.len() == 1 {
        let mut n = inner.pop().expect("one");
        n.optional |= optional;
        n.repeating |= repeating;
        n
    } else {
        Node {
            kind: Kind::Group(inner),
            optional,
            repeating,
            first: 0,
        }
    }
}

/// Parses a grammar written as space-separated tokens.
pub(crate) fn grammar(src: &'static str) -> Vec<Node> {
    let tokens: Vec<&'static str> = src.split_whitespace().collect();
    let mut i = 0;
    parse_seq(&tokens, &mut i, None)
}

/// The supported structures, by MSH-9-3 name.
pub(crate) const STRUCTURES: &[(&str, &str)] = &[
    (
        "ADT_A01",
        "MSH [ { SFT } ] EVN PID [ PD1 ] [ { ROL } ] [ { NK1 } ] PV1 [ PV2 ] [ { ROL } ] [ { DB1 } ] \
         [ { OBX } ] [ { AL1 } ] [ { DG1 } ] [ DRG ] [ { PR1 [ { ROL } ] } ] [ { GT1 } ] \
         [ { IN1 [ IN2 ] [ { IN3 } ] [ { ROL } ] } ] [ ACC ] [ UB1 ] [ UB2 ] [ PDA ]",
    ),
    (
        "ADT_A02",
        "MSH [ { SFT } ] EVN PID [ PD1 ] [ { ROL } ] PV1 [ PV2 ] [ { ROL } ] [ { DB1 } ] [ { OBX } ] [ PDA ]",
    ),
    (
        "ADT_A03",
        "MSH [ { SFT } ] EVN PID [ PD1 ] [ { ROL } ] [ { NK1 } ] PV1 [ PV2 ] [ { ROL } ] [ { DB1 } ] \
         [ { AL1 } ] [ { DG1 } ] [ DRG ] [ { PR1 [ { ROL } ] } ] [ { OBX } ] [ { GT1 } ] \
         [ { IN1 [ IN2 ] [ { IN3 } ] [ { ROL } ] } ] [ ACC ] [ PDA ]",
    ),
    (
        "ORM_O01",
        "MSH [ { NTE } ] [ PID [ PD1 ] [ { NTE } ] [ PV1 [ PV2 ] ] [ { IN1 [ IN2 ] [ IN3 ] } ] [ GT1 ] [ { AL1 } ] ] \
         { ORC [ <OBR|RQD|RQ1|RXO|ODS|ODT> [ { NTE } ] [ CTD ] [ { DG1 } ] [ { OBX [ { NTE } ] } ] ] \
         [ { FT1 } ] [ { CTI } ] [ BLG ] }",
    ),
    (
        "OMI_O23",
        "MSH [ { SFT } ] [ { NTE } ] [ PID [ PD1 ] [ { NTE } ] [ PV1 [ PV2 ] ] [ { IN1 [ IN2 ] [ IN3 ] } ] [ GT1 ] [ { AL1 } ] ] \
         { ORC [ { TQ1 [ { TQ2 } ] } ] OBR [ { NTE } ] [ CTD ] [ { DG1 } ] [ { OBX [ { NTE } ] } ] { IPC } }",
    ),
    (
        "ORU_R01",
        "MSH [ { SFT } ] { [ PID [ PD1 ] [ { NTE } ] [ { NK1 } ] [ PV1 [ PV2 ] ] ] \
         { [ ORC ] OBR [ { NTE } ] [ { TQ1 [ { TQ2 } ] } ] [ CTD ] [ { OBX [ { NTE } ] } ] [ { FT1 } ] [ { CTI } ] \
         [ { SPM [ { OBX } ] } ] } } [ DSC ]",
    ),
    (
        "SIU_S12",
        "MSH [ { SFT } ] SCH [ { TQ1 } ] [ { NTE } ] [ { PID [ PD1 ] [ PV1 ] [ PV2 ] [ { OBX } ] [ { DG1 } ] } ] \
         { RGS [ { AIS [ { NTE } ] } ] [ { AIG [ { NTE } ] } ] [ { AIL [ { NTE } ] } ] [ { AIP [ { NTE } ] } ] }",
    ),
    ("ACK", "MSH [ { SFT } ] MSA [ { ERR } ]"),
];

/// A parsed grammar and every segment ID it mentions.
pub(crate) struct Structure {
    pub(crate) nodes: Vec<Node>,
    /// Sorted [`super::key`]s of the segment IDs.
    pub(crate) known_keys: Vec<u64>,
}

/// Parsed grammars, built once.
pub(crate) fn get(name: &str) -> Option<&'static Structure> {
    static PARSED: OnceLock<Vec<(&'static str, Structure)>> = OnceLock::new();
    let all = PARSED.get_or_init(|| {
        STRUCTURES
            .iter()
            .map(|(n, g)| {
                let mut nodes = grammar(g);
                let mut known = Vec::new();
                for node in &nodes {
                    node.collect_names(&mut known);
                }
                let mut known_keys: Vec<u64> = known.iter().map(|k| super::key(k)).collect();
                known_keys.sort_unstable();
                known_keys.dedup();
                assert!(known_keys.len() <= 64, "{n}: first sets are 64-bit masks");
                for node in &mut nodes {
                    node.fill_first(&known_keys);
                }
                (*n, Structure { nodes, known_keys })
            })
            .collect()
    });
    all.iter().find(|(n, _)| *n == name).map(|(_, g)| g)
}

/// Structure for a message code and trigger event when MSH-9-3 is absent (v2.5.1 table 0354).
pub(crate) fn structure_for(code: &str, trigger: &str) -> Option<&'static str> {
    Some(match (code, trigger) {
        ("ADT", "A01" | "A04" | "A08" | "A13") => "ADT_A01",
        ("ADT", "A02") => "ADT_A02",
        ("ADT", "A03") => "ADT_A03",
        ("ORM", "O01") => "ORM_O01",
        ("OMI", "O23") => "OMI_O23",
        ("ORU", "R01") => "ORU_R01",
        ("SIU", t) if t.starts_with('S') => "SIU_S12",
        ("ACK", _) => "ACK",
        _ => return None,
    })
}
