//! The CPU's expression compiler and evaluator on their own.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../src/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_expression(data));
