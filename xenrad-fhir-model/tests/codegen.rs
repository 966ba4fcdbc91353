//! The generated descriptor tables are reproducible: regenerating from the official package gives
//! exactly the committed `src/generated/defs.rs` (`XENRAD_FHIR_REGEN=1` rewrites it).

mod common;

#[path = "../codegen/gen.rs"]
mod generator;

#[test]
fn generated_tables_are_up_to_date() {
    let Some(dir) = common::package_dir() else {
        return;
    };
    let text = generator::generate(&dir);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/generated/defs.rs");
    if std::env::var_os("XENRAD_FHIR_REGEN").is_some() {
        std::fs::write(path, &text).expect("write defs.rs");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == text,
        "src/generated/defs.rs is stale: run XENRAD_FHIR_REGEN=1 cargo test -p xenrad-fhir-model --test codegen"
    );
}
