//! Property tests over generated resources: random instances of any of the 146 resource types,
//! built from the descriptor tables (every element kind: choice types, primitive extensions,
//! arrays, contained resources, escapes, decimals), must write to JSON that reads back to the same
//! model, and writing is a fixed point; the typed views reach every value of them.

mod common;
#[rustfmt::skip]
#[path = "typed/walk.rs"]
mod walk;

use proptest::prelude::*;
use xenrad_fhir_model::schema::{TypeId, TypeKind};
use xenrad_fhir_model::{
    Node, PrimKind, PrimValue, Primitive, Resource, ResourceType, Value, from_json, to_json,
};

/// Small deterministic generator driven by a proptest seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'s>(&mut self, xs: &[&'s str]) -> &'s str {
        xs[self.below(xs.len())]
    }
}

fn prim_text(g: &mut Gen, k: PrimKind) -> PrimValue<'static> {
    let s = match k {
        PrimKind::Boolean => return PrimValue::Bool(g.chance(50)),
        PrimKind::Integer => return PrimValue::Number((g.next() as i32).to_string().into()),
        PrimKind::PositiveInt => {
            return PrimValue::Number((1 + g.below(1 << 30)).to_string().into());
        }
        PrimKind::UnsignedInt => return PrimValue::Number(g.below(1 << 30).to_string().into()),
        PrimKind::Decimal => {
            return PrimValue::Number(
                g.pick(&[
                    "0",
                    "-0.0",
                    "1.50",
                    "3.14159265358979323846",
                    "1e3",
                    "-2.5E-7",
                    "100",
                ])
                .into(),
            );
        }
        PrimKind::String | PrimKind::Markdown => g.pick(&[
            "plain",
            "quote \" and \\ backslash",
            "line\nbreak\ttab",
            "üñí©ødé",
            "emoji 😀",
            "ctl \u{1}",
        ]),
        PrimKind::Code => g.pick(&["final", "a-b", "two words", "ÅB"]),
        PrimKind::Id => g.pick(&["a", "id-1.2", "ABC"]),
        PrimKind::Date => g.pick(&["2020", "2020-02", "2020-02-29"]),
        PrimKind::DateTime => g.pick(&[
            "2020",
            "2020-02-03",
            "2020-02-03T04:05:06Z",
            "2020-02-03T04:05:06.123+01:00",
        ]),
        PrimKind::Instant => g.pick(&["2020-02-03T04:05:06Z", "2020-02-03T04:05:06.5-05:00"]),
        PrimKind::Time => g.pick(&["12:30:00", "23:59:59.999"]),
        PrimKind::Uri | PrimKind::Url | PrimKind::Canonical => {
            g.pick(&["http://x.org/a", "urn:x", "#frag"])
        }
        PrimKind::Uuid => "urn:uuid:53fefa32-fcbb-4ff8-8a92-55ee120877b7",
        PrimKind::Oid => "urn:oid:1.2.3.4",
        PrimKind::Base64Binary => "AAECAw==",
        PrimKind::Xhtml => "<div xmlns=\"http://www.w3.org/1999/xhtml\">x &amp; y</div>",
    };
    PrimValue::String(s.to_owned().into())
}

fn element_node(g: &mut Gen) -> Node<'static> {
    let mut n = Node::of("Element");
    n.add_str("id", format!("e{}", g.below(100))).unwrap();
    n
}

fn gen_value(g: &mut Gen, t: TypeId, plain: bool, depth: u32) -> Option<Value<'static>> {
    match t.def().kind {
        TypeKind::Primitive(k) => {
            let k = if plain { PrimKind::String } else { k };
            let ext = !plain && g.chance(15);
            let value = if ext && g.chance(30) {
                None
            } else {
                Some(prim_text(g, k))
            };
            let element = (ext || value.is_none()).then(|| Box::new(element_node(g)));
            Some(Value::Primitive(Primitive {
                type_id: t,
                value,
                element,
            }))
        }
        TypeKind::AbstractResource => {
            if depth > 2 {
                return None;
            }
            let all: Vec<ResourceType> = ResourceType::all().collect();
            let rt = all[g.below(all.len())];
            Some(Value::Resource(Box::new(gen_resource(g, rt, depth + 1))))
        }
        _ => Some(Value::Complex(gen_node(g, t, depth + 1))),
    }
}

fn gen_node(g: &mut Gen, t: TypeId, depth: u32) -> Node<'static> {
    let def = t.def();
    let mut node = Node::new(t);
    for (i, e) in def.elements.iter().enumerate() {
        let take = e.min > 0 || (depth < 4 && g.chance(if depth == 0 { 40 } else { 20 }));
        if !take {
            continue;
        }
        let ty = e.types[g.below(e.types.len())];
        let n = if e.is_array() { 1 + g.below(3) } else { 1 }.max(e.min as usize);
        let mut values = Vec::new();
        for _ in 0..n {
            if let Some(v) = gen_value(g, ty, e.plain, depth) {
                values.push(v);
            }
        }
        if !values.is_empty() {
            node.fields.push(xenrad_fhir_model::Field {
                index: i as u16,
                values: xenrad_fhir_model::Values::from_drain(&mut values),
            });
        }
    }
    node
}

fn gen_resource(g: &mut Gen, rt: ResourceType, depth: u32) -> Resource<'static> {
    Resource {
        resource_type: rt,
        node: gen_node(g, rt.type_id(), depth),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_resources_round_trip(seed in 1u64.., which in 0usize..146) {
        let mut g = Gen(seed);
        let all: Vec<ResourceType> = ResourceType::all().collect();
        let r = gen_resource(&mut g, all[which % all.len()], 0);
        let text = to_json(&r);
        let back = from_json(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(to_json(&back), text);
        let mut walked = 0;
        walk::walk_any(r.view(), &mut walked);
        prop_assert_eq!(walked, common::count_values(&r.node));
    }

    #[cfg(feature = "fuzzing")]
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        xenrad_fhir_model::fuzzing::json(&data);
    }
}
