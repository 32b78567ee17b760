//! Every test file runs. With `autotests = false` a file under `tests/` runs only if Cargo.toml
//! names it as a `[[test]]` or an area file (`tests/ws.rs`, ...) declares it as a module; a file
//! that is neither would be skipped without a word.

use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn every_test_file_is_a_binary_or_a_module_of_exactly_one_area() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .expect("Cargo.toml")
        .parse()
        .expect("Cargo.toml parses");
    let binaries: Vec<String> = manifest["test"]
        .as_array()
        .expect("[[test]] entries")
        .iter()
        .map(|t| t["path"].as_str().expect("a [[test]] path").to_owned())
        .collect();
    // file stem -> the binaries that run it
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &binaries {
        let file = root.join(path);
        assert!(file.is_file(), "[[test]] {path} does not exist");
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        runs.entry(stem.clone()).or_default().push(path.clone());
        let text = std::fs::read_to_string(&file).unwrap();
        let mut after_path_attr = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("#[path") {
                after_path_attr = true;
                continue;
            }
            // `mod x;` declares tests/x.rs; a `#[path]` module is a shared helper.
            if let Some(name) = line.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                if !after_path_attr && root.join(format!("tests/{name}.rs")).is_file() {
                    runs.entry(name.to_owned()).or_default().push(path.clone());
                }
            }
            after_path_attr = false;
        }
    }
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(root.join("tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        match runs.get(&stem).map(Vec::len) {
            Some(1) => {}
            None => problems.push(format!("tests/{stem}.rs is not run by any test binary")),
            Some(_) => problems.push(format!(
                "tests/{stem}.rs is run by several binaries: {:?}",
                runs[&stem]
            )),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
