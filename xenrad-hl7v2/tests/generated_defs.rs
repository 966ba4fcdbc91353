//! `src/validate/v251.tsv` (the validator's v2.5.1 field rules) is reproducible: running
//! `tools/gen_v251_defs.py` against the HL7 v2.5.1 definitions of the hl7apy package
//! (installed by `scripts/peers.sh`) gives the committed file byte for byte.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn regenerating_the_v251_rules_gives_no_diff() {
    let Some(python) = common::peer_python() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("tools/gen_v251_defs.py"))
        .output()
        .expect("run the generator");
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read(root.join("src/validate/v251.tsv")).unwrap();
    assert!(
        out.stdout == committed,
        "src/validate/v251.tsv differs from the generator's output; regenerate with \
         `python3 tools/gen_v251_defs.py > src/validate/v251.tsv`"
    );
}
