//! The authorize URL with any redirect URI, state, scope and popup flag: see
//! `oracles::authorize_url` for the properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)] // Each target uses one of the oracles.
mod oracles;

fuzz_target!(|data: &[u8]| {
    let _ = oracles::authorize_url(data);
});
