//! Reliability and security suite of wx (issue 9): the client under injected network faults,
//! a failing token store, bad input, secret leaks, and the regressions found by fuzzing.
//!
//! Every test installs one TRACE subscriber capturing all log output of this binary, and checks
//! that no secret it handled reached a log line or an error. The figures of the fault runs are
//! printed and written to `<target dir>/reliability-report.txt`.

mod bad_input;
mod common;
mod faults;
mod observer;
mod store_faults;
