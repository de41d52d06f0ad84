//! `cargo fuzz run mqtt_codec`: what it feeds and checks is documented at
//! `sluice::fuzzing::mqtt_codec` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/mqtt_codec/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::mqtt_codec(data));
