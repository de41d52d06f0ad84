//! `cargo fuzz run config_yaml`: what it feeds and checks is documented at
//! `sluice::fuzzing::config_yaml` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/config_yaml/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::config_yaml(data));
