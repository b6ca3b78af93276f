//! Reliability and security suite of wx (issue 9): the client under injected network faults,
//! a failing token store, bad input, secret leaks, and the properties and findings of fuzzing.
//!
//! Every test installs one TRACE subscriber capturing all log output of this binary, and checks
//! that no secret it handled reached a log line or an error. The figures of the fault runs are
//! printed and written to `<target dir>/reliability-report.txt`.

mod bad_input;
mod common;
mod faults;
mod fuzz_regressions;
mod observer;
mod store_faults;

/// The fuzz targets' properties, shared with `fuzz/` so that `cargo test` replays them.
#[path = "../../fuzz/fuzz_targets/oracles.rs"]
mod oracles;
