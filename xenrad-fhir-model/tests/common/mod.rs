//! Test helper: unpacks the official R4 package from `../shared` into the target directory once.
#![allow(dead_code)]

use std::path::PathBuf;

/// The unpacked `package/` directory, or `None` (after printing why) when `../shared` is absent
/// and `CI` is unset. Panics when `CI` is set and the data is missing.
pub fn package_dir() -> Option<PathBuf> {
    let tgz = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz"
    ));
    if !tgz.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: {} is missing",
            tgz.display()
        );
        println!("skipped: {} is absent", tgz.display());
        return None;
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fhir-r4-4.0.1");
    let done = out.join(".unpacked");
    if !done.exists() {
        // Several test binaries may race: unpack into a private dir, then rename.
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("mkdir");
        let st = std::process::Command::new("tar")
            .arg("xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(&tmp)
            .status()
            .expect("run tar");
        assert!(st.success(), "tar failed");
        std::fs::write(tmp.join(".unpacked"), b"").expect("marker");
        if std::fs::rename(&tmp, &out).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    Some(out.join("package"))
}

/// The example files of the unpacked package (`*.json` except `package.json` and dot files),
/// sorted by name; empty (after printing why) when the package is unavailable.
pub fn example_files() -> Vec<PathBuf> {
    let Some(dir) = package_dir() else {
        return Vec::new();
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("package dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n != "package.json" && !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// The file name of a path, for messages.
pub fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Values in a generic node, counted as the generated view walk (`tests/typed/walk.rs`) counts
/// them: primitives' `_name` siblings and contained resources included.
pub fn count_values(n: &xenrad_fhir_model::Node<'_>) -> usize {
    use xenrad_fhir_model::Value;
    n.fields
        .iter()
        .flat_map(|f| f.values.iter())
        .map(|v| match v {
            Value::Primitive(p) => 1 + p.element.as_deref().map_or(0, |e| 1 + count_values(e)),
            Value::Complex(n) => 1 + count_values(n),
            Value::Resource(r) => 1 + count_values(&r.node),
        })
        .sum()
}
