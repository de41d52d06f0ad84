//! `cargo fuzz run bundle_archive`: what it feeds and checks is documented at
//! `sluice::fuzzing::bundle_archive` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/bundle_archive/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::bundle_archive(data));
