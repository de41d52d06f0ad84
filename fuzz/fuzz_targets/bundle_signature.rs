//! `cargo fuzz run bundle_signature`: what it feeds and checks is documented at
//! `sluice::fuzzing::bundle_signature` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/bundle_signature/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::bundle_signature(data));
