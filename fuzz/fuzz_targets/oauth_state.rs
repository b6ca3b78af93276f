//! Signed OAuth state: `verify` on any input, and issue -> verify round trips with any return
//! path, lifetime, binding, edit and elapsed time: see `oracles::oauth_state`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)] // Each target uses one of the oracles.
mod oracles;

fuzz_target!(|data: &[u8]| {
    let _ = oracles::oauth_state(data);
});
