//! `cargo fuzz run http_request_head`: what it feeds and checks is documented at
//! `sluice::fuzzing::http_request_head` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/http_request_head/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::http_request_head(data));
