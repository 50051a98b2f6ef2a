//! The command-script parser (with the expression compiler behind RESTRICT and AGGREGATE).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../src/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_script(data));
