//! `cargo fuzz run tls_client_hello`: what it feeds and checks is documented at
//! `sluice::fuzzing::client_hello` (src/fuzzing.rs), which tests/fuzz_corpus.rs also runs on the
//! committed corpus (fuzz/corpus/tls_client_hello/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzzing::client_hello(data));
