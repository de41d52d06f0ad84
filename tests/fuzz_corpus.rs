//! The fuzz corpora as ordinary tests: every file committed under `fuzz/corpus/<target>/` is
//! fed through the same function its fuzz target runs (`sluice::fuzzing`), so each input the
//! fuzzer found interesting — and each crash it found, once fixed — stays covered by
//! `cargo test` without nightly or cargo-fuzz. `scripts/fuzz` runs the fuzzers themselves.

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_committed_corpus_input_passes_its_target() {
    for (target, run) in sluice::fuzzing::TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "fuzz/corpus/{target}/ is empty");
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", file.display());
        }
    }
}

#[test]
fn every_fuzz_target_has_a_corpus_and_a_target_file() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (target, _) in sluice::fuzzing::TARGETS {
        let file = root.join("fuzz_targets").join(format!("{target}.rs"));
        assert!(file.is_file(), "{} is missing", file.display());
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let listed = manifest.matches("[[bin]]").count();
    assert_eq!(
        listed,
        sluice::fuzzing::TARGETS.len(),
        "fuzz/Cargo.toml's [[bin]]s"
    );
}
