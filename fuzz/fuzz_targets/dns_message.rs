//! `cargo fuzz run dns_message`: what it feeds and checks is documented at
//! `sluice::fuzzing::dns_message` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/dns_message/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::dns_message(data));
