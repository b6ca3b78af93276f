//! Cross-process single flight: 8 processes x 100 tasks, an empty cache, one Redis, one token
//! endpoint. Exactly one token request is sent, and all 800 tasks hold that token.
//!
//! Why exactly one: within a process the 100 callers join one refresh (in-process single
//! flight), so 8 refreshes meet in Redis; each reads the empty key and asks for the lease with
//! `SET NX PX`, which only one of them gets. That one fetches (the endpoint holds the answer
//! 200 ms, so the other seven are certainly still waiting) and stores the token; the seven poll
//! the key and return what it stored. A second fetch would show as a second request and, since
//! the endpoint issues a new token per request, as tasks holding `FLEET-TOKEN-2`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use wx_core::TokenStore as _;
use wx_redis::RedisTokenStore;
use wx_redis::test_util::RedisServer;

use crate::support::*;

const PROCESSES: usize = 8;
const TASKS: usize = 100;
/// Long enough that every member has asked for the lease before the leader's token is stored.
const UPSTREAM_DELAY: Duration = Duration::from_millis(200);
const CHILD: &str = "single_flight::child";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not a test: a fleet member process of eight_processes_share_one_token_fetch"]
async fn child() {
    let Some(cfg) = ChildConfig::from_env() else {
        return;
    };
    // Defaults of a production client, apart from the endpoint: lease TTL 20 s, wait 30 s.
    let client = cfg.client(Duration::from_secs(20)).await;
    let mut stdin = stdin_lines();
    say("READY");
    wait_for_go(&mut stdin).await;
    let go = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let client = client.clone();
        tasks.spawn(async move { (task, client.access_token().await, go.elapsed()) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (task, result, took) = joined.expect("a task of the member");
        match result {
            Ok(token) => say(&format!(
                "RESULT {task} ok {} {}",
                token.secret(),
                took.as_micros()
            )),
            Err(e) => say(&format!("RESULT {task} err {e:?}")),
        }
    }
    say("DONE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_share_one_token_fetch() {
    let _serial = SERIAL.lock().await;
    // A server of our own: the Redis command counts below must be this test's alone.
    let redis = RedisServer::start();
    let appid = unique_appid("sf");
    let endpoint = TokenEndpoint::start(&appid, |_| UPSTREAM_DELAY).await;

    let mut fleet: Vec<Member> = (0..PROCESSES)
        .map(|i| Member::spawn(CHILD, i, &redis.url(), &endpoint.url(), &appid))
        .collect();
    for member in &mut fleet {
        member.expect("READY", STARTUP).await;
    }
    let sets_before = redis_calls(&redis.url(), "set").await;
    // Everyone is connected and waiting: release them together.
    let go = Instant::now();
    for member in &mut fleet {
        member.send("go").await;
    }

    let mut held: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut slowest_per_member = Vec::new();
    for member in &mut fleet {
        let mut slowest = 0u128;
        for _ in 0..TASKS {
            let line = member.expect("RESULT", Duration::from_secs(60)).await;
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            match fields.as_slice() {
                [_, "ok", token, micros] => {
                    *held.entry((*token).to_owned()).or_default() += 1;
                    slowest = slowest.max(micros.parse().expect("micros"));
                }
                _ => errors.push(line),
            }
        }
        member.expect("DONE", Duration::from_secs(10)).await;
        member.wait_success(Duration::from_secs(10)).await;
        slowest_per_member.push(Duration::from_micros(u64::try_from(slowest).expect("fits")));
    }
    let everyone_done = go.elapsed();

    assert!(errors.is_empty(), "tasks failed: {errors:?}");
    assert_eq!(
        held,
        BTreeMap::from([(issued_token(1), PROCESSES * TASKS)]),
        "every task of every process holds the one token fetched"
    );
    let requests = endpoint.requests().await;
    assert_eq!(
        requests.len(),
        1,
        "exactly one token request for the whole fleet"
    );
    endpoint.assert_all_token_requests(&appid).await;

    // The token is the fleet's shared one in Redis.
    let store = RedisTokenStore::connect(&redis.url())
        .await
        .expect("connect");
    let stored = store
        .get(&token_key(&appid))
        .await
        .expect("get")
        .expect("the token is stored");
    assert_eq!(stored.secret(), issued_token(1));

    // The members really contended: each of the 8 refreshes asked Redis for the lease (a
    // `SET NX`, refused to all but one) before the token was there, and the leader stored the
    // token with one more `SET`. Fewer would mean some member found the token already stored.
    let sets = redis_calls(&redis.url(), "set").await - sets_before;
    let gets = redis_calls(&redis.url(), "get").await;
    assert!(
        sets > u64::try_from(PROCESSES).expect("fits"),
        "only {sets} SETs: not every member asked for the lease"
    );
    println!(
        "single flight: {PROCESSES} processes x {TASKS} tasks, 1 token request, {sets} SETs \
         (lease attempts + 1 store), {gets} GETs (a first read per task + polls); slowest task per member \
         {slowest_per_member:?}; all done {everyone_done:?} after go"
    );
}
