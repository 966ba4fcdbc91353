//! Zero heap allocations per message in steady state: a counting global allocator
//! (stats_alloc) measures parsing and path lookups with a reused [`Parser`].

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use xenrad_hl7v2::{Message, ParseOptions, Parser, Path};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const MSGS: [&[u8]; 3] = [
    b"MSH|^~\\&|RIS|RAD^1.2^ISO|PACS|IMG|20240907224144||ORM^O01^ORM_O01|MSG1|P|2.5.1|||||USA|UNICODE UTF-8\r\
PID|1||1^^^H&1.2&ISO^MR~2^^^H^AN||FRAN\xc3\x87OIS^BJ\xc3\x96RN||20050702|F\r\
PV1|1|E\rORC|NW|PL1^RIS\rOBR|1|PL1^RIS|FL1^PACS|MG^MAMMO^L\rNTE|1|P|a \\F\\ b\rZDS|1.2.3^PACS^Application^DICOM\r",
    b"MSH|^~\\&|A|B|C|D|20240101||ADT^A08|2|P|2.5.1\nEVN|A08|20240101\nPID|1||9^^^H^MR||DOE^JOHN\nPV1|1|O\n",
    b"MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|3|P|2.5.1\rPID|1||7^^^H^MR||ROE^ANN\rOBR|1|||CT^HEAD\rOBX|1|TX|IMP||line one||||||F\rOBX|2|TX|IMP||line two||||||F\r",
];

/// Runs without the libtest harness (`harness = false`): the counters are process-wide and
/// the harness's own threads would be counted too.
fn main() {
    steady_state_parse_and_lookups_allocate_nothing();
    println!("test steady_state_parse_and_lookups_allocate_nothing ... ok");
    one_shot_parse_allocates_only_the_index();
    println!("test one_shot_parse_allocates_only_the_index ... ok");
}

fn steady_state_parse_and_lookups_allocate_nothing() {
    let mut parser = Parser::new(ParseOptions::default());
    let paths: Vec<Path> = [
        "PID-3-1",
        "PID-5-1",
        "MSH-10",
        "OBR-4-1",
        "OBX(2)-5",
        "PID-3(2)-4-2",
    ]
    .iter()
    .map(|p| Path::parse(p).unwrap())
    .collect();
    // Warm-up: the index buffer grows to the largest message.
    for m in MSGS {
        parser.parse(m).unwrap();
    }
    let region = Region::new(GLOBAL);
    let mut found = 0usize;
    for _ in 0..100 {
        for m in MSGS {
            let msg = parser.parse(m).unwrap();
            for p in &paths {
                // Values without escapes in UTF-8 borrow the input.
                if let Some(v) = msg.get_path(p) {
                    found += v.len();
                }
            }
            found += msg.segments().map(|s| s.fields().count()).sum::<usize>();
            found += msg.control_id().map_or(0, |c| c.len());
        }
    }
    let stats = region.change();
    assert!(found > 0);
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
}

fn one_shot_parse_allocates_only_the_index() {
    let region = Region::new(GLOBAL);
    let msg = Message::parse(MSGS[0]).unwrap();
    assert_eq!(msg.get("PID-5-2").as_deref(), Some("BJÖRN"));
    let stats = region.change();
    // One Vec for the segment index (capacity 16 covers 7 segments).
    assert_eq!(stats.allocations, 1, "{stats:?}");
    // Decoding an escape allocates exactly its output.
    let region = Region::new(GLOBAL);
    assert_eq!(msg.get("NTE-3").as_deref(), Some("a | b"));
    assert!(region.change().allocations >= 1);
}
