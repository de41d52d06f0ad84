//! `cargo fuzz run connect_authority`: what it feeds and checks is documented at
//! `sluice::fuzzing::connect_authority` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/connect_authority/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::connect_authority(data));
