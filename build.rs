//! Link flags only (no code is generated).
//!
//! Relative relocations packed (`-z pack-relative-relocs`, DT_RELR): the binary's 55k
//! relocations take 27 KiB instead of a 1.3 MB table that every exec reads page by page and
//! keeps resident (1.2 MiB less RSS for `serve`). Needs binutils
//! 2.38 or lld to link and glibc 2.36 to run (Debian 12, Ubuntu 22.10 and later); set
//! `SLUICE_NO_RELR=1` to build for an older glibc. Static builds (the image's, `+crt-static`)
//! get it too: glibc 2.36's static-pie start-up applies DT_RELR when it relocates itself, and
//! the 1.3 MB table was what put the image over its 20 MB budget.
fn main() {
    println!("cargo:rerun-if-env-changed=SLUICE_NO_RELR");
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && std::env::var_os("SLUICE_NO_RELR").is_none() {
        println!("cargo:rustc-link-arg=-Wl,-z,pack-relative-relocs");
    }
}
