//! Redis stopped and restarted under a running fleet: 3 member processes, each with one client
//! (`OfficialAccount<ReqwestTransport, RedisTokenStore>`, built once) and 4 tasks calling
//! `access_token()` every 50 ms. The parent kills redis-server after 1.5 s, restarts it on the
//! same port 2 s later (empty, as after a crash without persistence), and stops the fleet 3 s
//! after that.
//!
//! Expected:
//! - before the outage every call returns the one token the fleet fetched (request 1);
//! - while Redis is down a member serves its process-local copy of the token until the copy is
//!   `LOCAL_AGE` old (it read the store at most that long before the outage); after that every
//!   call fails with `Error::Store` (a `get`: the token manager reads the store and fetches
//!   nothing without it), each within the store's 1 s operation timeout plus scheduling slack,
//!   and no token request is sent;
//! - after the restart the same client instances recover by themselves: the store is empty,
//!   so the fleet fetches once more (request 2) under the lease and every member uses that
//!   token. Calls during the first moments after the restart may still fail with a store error
//!   (the broken connection is noticed on first use); 1.5 s after it, all must succeed.
//!
//! In total exactly two token requests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use wx_core::Error;
use wx_redis::test_util::RedisServer;

use crate::support::*;

const MEMBERS: usize = 3;
const TASKS: usize = 4;
const PAUSE: Duration = Duration::from_millis(50);
const UPSTREAM_DELAY: Duration = Duration::from_millis(50);
const UP: Duration = Duration::from_millis(1500);
const DOWN: Duration = Duration::from_secs(2);
const AFTER: Duration = Duration::from_secs(3);
/// After this much time past the restart every call must succeed.
const RECOVERY: Duration = Duration::from_millis(1500);
/// The longest a call may take while Redis is down: the 1 s operation timeout of the store
/// bounds the `get` that fails; the rest is slack for a loaded two-core machine.
const DOWN_CALL_BOUND: Duration = Duration::from_millis(2500);
/// The longest any call may take: a refresh is at most four store operations, each bounded.
const CALL_BOUND: Duration = Duration::from_secs(5);
const CHILD: &str = "redis_restart::child";
/// The members' local token age bound, short so the outage outlasts it.
const LOCAL_AGE: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not a test: a fleet member process of the fleet_rides_out_a_redis_restart test"]
async fn child() {
    let Some(cfg) = ChildConfig::from_env() else {
        return;
    };
    let client = cfg
        .client_with(|b| {
            b.lease_ttl(Duration::from_secs(20))
                .local_token_max_age(LOCAL_AGE)
        })
        .await;
    let mut stdin = stdin_lines();
    say("READY");
    wait_for_go(&mut stdin).await;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            // `stop`, or the parent gone: either way, finish.
            while let Some(line) = stdin.recv().await {
                if line == "stop" {
                    break;
                }
            }
            stop.store(true, Ordering::SeqCst);
        });
    }
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        // One client instance per process for the whole run: clones share it.
        let (client, stop) = (client.clone(), stop.clone());
        tasks.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let start = unix_ms();
                let result = client.access_token().await;
                let end = unix_ms();
                let outcome = match result {
                    Ok(token) => format!("ok {}", token.secret()),
                    Err(Error::Store(e)) => format!("store {}", e.op()),
                    Err(e) => format!("other {e:?}"),
                };
                say(&format!("CALL {start} {end} {outcome}"));
                tokio::time::sleep(PAUSE).await;
            }
        });
    }
    tasks.join_all().await;
    say(&format!("DONE {}", cfg.index));
}

struct Call {
    start: u64,
    end: u64,
    outcome: String,
}

impl Call {
    fn took(&self) -> Duration {
        Duration::from_millis(self.end.saturating_sub(self.start))
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).expect("fits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_rides_out_a_redis_restart() {
    let _serial = SERIAL.lock().await;
    // Ours: it is stopped and restarted.
    let mut redis = RedisServer::start();
    let appid = unique_appid("rr");
    let endpoint = TokenEndpoint::start(&appid, |_| UPSTREAM_DELAY).await;
    let mut fleet: Vec<Member> = (0..MEMBERS)
        .map(|i| Member::spawn(CHILD, i, &redis.url(), &endpoint.url(), &appid))
        .collect();
    for member in &mut fleet {
        member.expect("READY", STARTUP).await;
    }
    for member in &mut fleet {
        member.send("go").await;
    }

    tokio::time::sleep(UP).await;
    let stop_begin = unix_ms();
    redis.stop();
    let stop_end = unix_ms();
    tokio::time::sleep(DOWN).await;
    let requests_while_down = endpoint.requests().await.len();
    let restart_begin = unix_ms();
    redis.restart();
    let restart_end = unix_ms();
    tokio::time::sleep(AFTER).await;
    for member in &mut fleet {
        member.send("stop").await;
    }

    // Read everything each member said until DONE.
    let mut calls_of: Vec<Vec<Call>> = Vec::new();
    for (i, member) in fleet.iter_mut().enumerate() {
        let mut calls = Vec::new();
        loop {
            let line = member.expect("", Duration::from_secs(30)).await;
            if line == format!("DONE {i}") {
                break;
            }
            let rest = line.strip_prefix("CALL ").expect("a CALL line");
            let mut fields = rest.splitn(3, ' ');
            let mut field = || fields.next().expect("a CALL field");
            calls.push(Call {
                start: field().parse().expect("start"),
                end: field().parse().expect("end"),
                outcome: field().to_owned(),
            });
        }
        member.wait_success(Duration::from_secs(10)).await;
        calls_of.push(calls);
    }

    let before_token = format!("ok {}", issued_token(1));
    let after_token = format!("ok {}", issued_token(2));
    let recovered_from = restart_end + ms(RECOVERY);
    let mut slowest_down = Duration::ZERO;
    let mut first_ok_after_restart = Vec::new();
    for (i, calls) in calls_of.iter().enumerate() {
        let before: Vec<&Call> = calls.iter().filter(|c| c.end < stop_begin).collect();
        // Past the local copy's age bound: the store is read, and it is down.
        let down: Vec<&Call> = calls
            .iter()
            .filter(|c| c.start > stop_end + ms(LOCAL_AGE) && c.end < restart_begin)
            .collect();
        let after: Vec<&Call> = calls.iter().filter(|c| c.start > recovered_from).collect();
        assert!(
            !before.is_empty() && !down.is_empty() && !after.is_empty(),
            "member {i} made calls in every phase: {} before, {} down, {} after",
            before.len(),
            down.len(),
            after.len()
        );
        for c in &before {
            assert_eq!(c.outcome, before_token, "member {i} before the outage");
        }
        for c in &down {
            assert_eq!(
                c.outcome, "store get",
                "member {i} while Redis is down: a typed store error of the read"
            );
            assert!(
                c.took() <= DOWN_CALL_BOUND,
                "member {i}: a call took {:?} while Redis was down",
                c.took()
            );
            slowest_down = slowest_down.max(c.took());
        }
        for c in &after {
            assert_eq!(c.outcome, after_token, "member {i} after the restart");
        }
        for c in calls {
            assert!(
                c.outcome.starts_with("ok ") || c.outcome.starts_with("store "),
                "member {i}: only tokens and store errors, got {}",
                c.outcome
            );
            assert!(
                c.took() <= CALL_BOUND,
                "member {i}: a call took {:?}",
                c.took()
            );
        }
        first_ok_after_restart.push(
            calls
                .iter()
                .filter(|c| c.start >= restart_end && c.outcome.starts_with("ok "))
                .map(|c| c.end - restart_end)
                .min()
                .expect("a success after the restart"),
        );
    }
    let tokens_seen: BTreeSet<&str> = calls_of
        .iter()
        .flatten()
        .filter_map(|c| c.outcome.strip_prefix("ok "))
        .collect();
    assert_eq!(
        tokens_seen,
        BTreeSet::from([issued_token(1).as_str(), issued_token(2).as_str()]),
        "the fleet used one token before the restart and one after"
    );
    assert_eq!(
        requests_while_down, 1,
        "no token was fetched while Redis was down"
    );
    assert_eq!(
        endpoint.requests().await.len(),
        2,
        "one token request before the outage, one after the restart"
    );
    endpoint.assert_all_token_requests(&appid).await;
    let total: usize = calls_of.iter().map(Vec::len).sum();
    println!(
        "redis restart: {total} calls by {MEMBERS} members; slowest call while down \
         {slowest_down:?}; first success after the restart (ms, per member) \
         {first_ok_after_restart:?}"
    );
}
