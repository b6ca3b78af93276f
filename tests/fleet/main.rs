//! The fleet view of issue 5: several OS processes, one real `redis-server`, one token endpoint
//! on loopback (wiremock), and `OfficialAccount<ReqwestTransport, RedisTokenStore>` in each
//! process, exactly as a fleet behind a load balancer runs it.
//!
//! - [`single_flight`]: 8 processes x 100 tasks on an empty cache cause exactly one token
//!   request, and all 800 tasks hold that token.
//! - [`holder_killed`]: the process holding the refresh lease is SIGKILLed while its token
//!   request hangs; another process refreshes once the lease TTL has passed, not before.
//! - [`redis_restart`]: Redis is killed and restarted under a running fleet: typed
//!   `Error::Store` while it is down (bounded, nothing hangs, no token fetched), then every
//!   process is back on one new token, with the same client instances.
//! - [`push_dedup`]: 8 processes receive the same pushed message (and its retries): one
//!   handler run.
//! - [`lease_race`]: a member granted the lease just after another one stored a token must not
//!   fetch a second one (its `SET NX` delayed on purpose between its read and its lease).
//!
//! The child processes are this test binary run again (`std::env::current_exe()`) with
//! `--exact <child> --ignored`: each `#[ignore]`d `child` function below is the body of one
//! fleet member, not a test of its own. Children talk to the parent through stdout lines
//! starting with `FLEET ` and wait for `go` on stdin, so that all of them start together.
//!
//! They need `redis-server` on PATH (`apt-get install redis-server`); without it they fail with
//! that advice, they never skip.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod holder_killed;
mod lease_race;
mod push_dedup;
mod redis_restart;
mod single_flight;
mod support;
