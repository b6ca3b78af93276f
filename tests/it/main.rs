//! Cross-crate tests of the wx workspace: the production stack (`wx-official` over
//! `wx-reqwest`) against real HTTP servers on loopback (wiremock and the wx sandbox), and the
//! top-level examples, compiled into this binary so `cargo test` runs them.

mod browser;
mod downloads;
mod echo_bot_test;
mod examples;
mod over_sandbox;
mod over_wiremock;
mod support;
