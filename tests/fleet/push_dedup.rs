//! Push dedup across processes: 8 processes on one real `redis-server` receive the same pushed
//! message, each delivery signed and encrypted afresh as WeChat's retries are (new nonce, new
//! ciphertext, same message). Exactly one of them runs the handler; every other delivery, and a
//! second wave of retries, is a duplicate (answered `success`). A new message runs once again.

use std::time::Duration;

use wx_core::ServerToken;
use wx_core::crypto::EncodingAesKey;
use wx_official::push::{Dedup, PushConfig, PushQuery, TestPush};
use wx_redis::RedisTokenStore;
use wx_redis::test_util::RedisServer;

use crate::support::*;

const PROCESSES: usize = 8;
const CHILD: &str = "push_dedup::child";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn config(appid: &str) -> PushConfig {
    PushConfig::new(appid, ServerToken::new("fleet-token"))
        .aes_key(EncodingAesKey::new(KEY).unwrap())
        .require_encryption(true)
}

fn message(msg_id: u64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_fleet]]></ToUserName><FromUserName><![CDATA[o-fleet]]></FromUserName>\
         <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[hello]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not a test: a fleet member process of eight_processes_handle_a_retried_push_once"]
async fn child() {
    let Some(cfg) = ChildConfig::from_env() else {
        return;
    };
    let store = RedisTokenStore::connect(&cfg.redis_url).await.unwrap();
    let config = config(&cfg.appid);
    let dedup = Dedup::new(store, cfg.appid.as_str());
    let mut stdin = stdin_lines();
    say("READY");
    while let Some(line) = stdin.recv().await {
        let Some((query, body)) = line.split_once('\t') else {
            break;
        };
        let incoming = config
            .open(&PushQuery::from_query(query), body.as_bytes())
            .unwrap();
        if dedup.first_seen(&incoming).await.unwrap() {
            // The handler: it runs only here.
            say(&format!("HANDLED {}", incoming.msg_id().unwrap()));
        } else {
            let answer = config.reply(&incoming, &wx_official::push::Reply::Success);
            assert!(answer.is_success());
            say(&format!("DUPLICATE {}", incoming.msg_id().unwrap()));
        }
    }
    say("DONE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_handle_a_retried_push_once() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let appid = unique_appid("push");
    let config = config(&appid);
    let mut fleet: Vec<Member> = (0..PROCESSES)
        .map(|i| Member::spawn(CHILD, i, &redis.url(), "http://127.0.0.1:9", &appid))
        .collect();
    for member in &mut fleet {
        member.expect("READY", STARTUP).await;
    }

    let mut handled = Vec::new();
    // Two waves of the same message (WeChat's first attempt and its retries), then a new one.
    for (wave, msg_id) in [(0, 42u64), (1, 42), (2, 43)] {
        for (i, member) in fleet.iter_mut().enumerate() {
            // Each delivery is signed and encrypted afresh, as each retry is.
            let push = TestPush::new(&config)
                .nonce(format!("{wave}{i}7"))
                .xml(&message(msg_id));
            assert!(!push.body.contains('\n') && !push.query.contains('\t'));
            member.send(&format!("{}\t{}", push.query, push.body)).await;
        }
        for member in &mut fleet {
            // Each member answers every delivery with HANDLED or DUPLICATE.
            let line = member.expect("", Duration::from_secs(30)).await;
            match line.split_once(' ') {
                Some(("HANDLED", id)) => handled.push(id.parse::<u64>().unwrap()),
                Some(("DUPLICATE", id)) => assert_eq!(id.parse::<u64>().unwrap(), msg_id),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    for member in &mut fleet {
        member.wait_success(Duration::from_secs(20)).await;
    }
    assert_eq!(
        handled,
        [42, 43],
        "each message handled exactly once across 8 processes and 16 deliveries of message 42"
    );
}
