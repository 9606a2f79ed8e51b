#![no_main]

use libfuzzer_sys::fuzz_target;
use limitstore_fuzz::rate_string::{run, Input};

fuzz_target!(|data: &[u8]| run(&Input::decode(data)));
