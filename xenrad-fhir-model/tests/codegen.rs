//! The generated code is reproducible: regenerating from the official package gives exactly the
//! committed `src/generated/defs.rs` (descriptor tables), `src/generated/views.rs` (typed views)
//! and `tests/typed/walk.rs` (the walk over every view accessor); `XENRAD_FHIR_REGEN=1` rewrites
//! them.

mod common;

#[path = "../codegen/gen.rs"]
mod generator;

#[test]
fn generated_code_is_up_to_date() {
    let Some(dir) = common::package_dir() else {
        return;
    };
    let files = [
        ("src/generated/defs.rs", generator::generate(&dir)),
        ("src/generated/views.rs", generator::generate_views(&dir)),
        ("tests/typed/walk.rs", generator::generate_walk(&dir)),
    ];
    let regen = std::env::var_os("XENRAD_FHIR_REGEN").is_some();
    for (rel, text) in files {
        let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
        if regen {
            std::fs::write(&path, &text).expect("write generated file");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{rel} is stale: run XENRAD_FHIR_REGEN=1 cargo test -p xenrad-fhir-model --test codegen"
        );
    }
}
