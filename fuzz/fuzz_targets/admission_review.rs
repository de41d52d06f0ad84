//! `cargo fuzz run admission_review`: what it feeds and checks is documented at
//! `sluice::fuzzing::admission_review` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/admission_review/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::admission_review(data));
