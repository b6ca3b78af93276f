//! The lease holder killed mid-refresh: process A takes the refresh lease and sends its token
//! request, which the endpoint never answers; A is SIGKILLed. Another member of the fleet (this
//! test's process, with its own client and Redis connection) then needs the token: it waits
//! while A's lease lives, and refreshes itself once the lease TTL has passed.
//!
//! Expected figures: the successor gets its token no earlier than the lease TTL (3 s here)
//! after A took the lease, since until then Redis refuses the lease to anyone else and the
//! store stays empty; and no later than the TTL plus one poll (waiters poll with backoff capped
//! at 500 ms) plus its own fetch. The endpoint sees exactly two requests: A's, left hanging,
//! and the successor's.

use std::os::unix::process::ExitStatusExt as _;
use std::time::{Duration, Instant};

use wx_core::TokenStore as _;
use wx_redis::RedisTokenStore;
use wx_redis::test_util::RedisServer;

use crate::support::*;

const LEASE_TTL: Duration = Duration::from_secs(3);
/// A's request is answered only after this: A is killed long before.
const HANG: Duration = Duration::from_secs(120);
const CHILD: &str = "holder_killed::child";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not a test: the lease holder process of a_killed_lease_holder_is_replaced_after_the_lease_ttl"]
async fn child() {
    let Some(cfg) = ChildConfig::from_env() else {
        return;
    };
    let client = cfg.client(LEASE_TTL).await;
    say("CALLING");
    // Takes the lease, then waits on the hanging endpoint until the parent kills us.
    let outcome = client.access_token().await.map(|t| t.secret().to_owned());
    say(&format!("RETURNED {outcome:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_lease_holder_is_replaced_after_the_lease_ttl() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::from_env_or_start();
    let appid = unique_appid("hk");
    let endpoint =
        TokenEndpoint::start(&appid, |n| if n == 1 { HANG } else { Duration::ZERO }).await;

    let mut holder = Member::spawn(CHILD, 0, &redis.url(), &endpoint.url(), &appid);
    holder.expect("CALLING", STARTUP).await;
    // The client sends a token request only while it holds the lease, so once the request is
    // here A holds it (since a moment before `lease_taken_by`).
    wait_until("the holder's token request", STARTUP, || async {
        !endpoint.requests().await.is_empty()
    })
    .await;
    let lease_taken_by = Instant::now();
    let probe = RedisTokenStore::connect(&redis.url())
        .await
        .expect("connect");
    assert!(
        !probe
            .try_acquire_lease(&token_key(&appid), "probe", LEASE_TTL)
            .await
            .expect("lease"),
        "A holds the refresh lease while its request hangs"
    );

    let status = holder.kill().await;
    assert_eq!(status.signal(), Some(9), "A died of SIGKILL: {status}");
    let killed_after = lease_taken_by.elapsed();
    assert!(
        killed_after < LEASE_TTL,
        "A must die while its lease lives ({killed_after:?})"
    );

    let successor = client(&redis.url(), &endpoint.url(), &appid, LEASE_TTL).await;
    let asked = Instant::now();
    let token = successor
        .access_token()
        .await
        .expect("the successor refreshes once A's lease expired");
    let waited = asked.elapsed();
    let since_lease = lease_taken_by.elapsed();

    assert_eq!(token.secret(), issued_token(2), "the successor's own fetch");
    assert_eq!(
        endpoint.requests().await.len(),
        2,
        "A's hanging request and the successor's, nothing else"
    );
    endpoint.assert_all_token_requests(&appid).await;
    // A took the lease a moment before its request was seen, so its TTL ends at most
    // `LEASE_TTL` after `lease_taken_by`; 300 ms covers that moment and the 5 ms polling.
    assert!(
        since_lease >= LEASE_TTL - Duration::from_millis(300),
        "refreshed {since_lease:?} after A took the lease: before its {LEASE_TTL:?} TTL ended"
    );
    assert!(
        since_lease <= LEASE_TTL + Duration::from_secs(2),
        "refreshed {since_lease:?} after A took the lease: the waiter should take over within \
         one 500 ms poll of the TTL's end"
    );
    let stored = probe
        .get(&token_key(&appid))
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.secret(), issued_token(2));
    println!(
        "holder killed {killed_after:?} after taking the lease; the successor waited {waited:?} \
         and held its token {since_lease:?} after the lease was taken (TTL {LEASE_TTL:?})"
    );
}
