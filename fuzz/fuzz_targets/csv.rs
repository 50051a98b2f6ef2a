//! The CSV loader: parse, HM round trip, CSV round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../src/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_csv(data));
