//! Fault injection, observed by a real HTTP client on the server and through the in-process
//! transport.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wx_core::urlenc::url_with_query;
use wx_core::{DecodeReason, ErrCode, Error, HttpRequest, HttpTransport, TransportErrorKind};
use wx_sandbox::{Fault, FaultMix};

use crate::server::{ClientFailure, http_get, token_query};
use crate::*;

fn token_url() -> String {
    url_with_query(&format!("{API}/cgi-bin/token"), &token_query())
}

fn decode_reason(body: &[u8]) -> DecodeReason {
    match decode_response::<serde_json::Value>("test", body) {
        Err(Error::Decode(d)) => d.reason,
        other => panic!("expected a decode error, got {other:?}"),
    }
}

/// Raw bytes of one exchange on a fresh connection, until the server closes it.
async fn raw_exchange(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    // A reset also ends the exchange; what was read so far is what the client got.
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .expect("the server closes the connection");
    raw
}

#[tokio::test]
async fn every_fault_kind_over_http() {
    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let addr = server.addr();
    let q = token_query();
    sb.faults().script([
        Fault::Busy,
        Fault::Status(502),
        Fault::Html,
        Fault::Empty,
        Fault::Truncated,
        Fault::Oversized(1 << 20),
        Fault::NonUtf8,
        Fault::Drop,
        Fault::DropMidBody,
    ]);
    assert_eq!(sb.faults().pending(), 9);

    let busy = http_get(addr, "/cgi-bin/token", &q).await.unwrap();
    assert_error(&busy.to_response(), ErrCode::BUSY);
    assert_eq!(api_error(&busy.to_response()).message, "system error");

    let gateway = http_get(addr, "/cgi-bin/token", &q).await.unwrap();
    assert_eq!(gateway.status, 502);
    assert!(String::from_utf8_lossy(&gateway.body).contains("502"));

    let html = http_get(addr, "/cgi-bin/token", &q).await.unwrap();
    assert_eq!(html.status, 200);
    assert_eq!(
        html.headers.get("content-type").unwrap(),
        "text/html; charset=utf-8"
    );
    assert!(matches!(
        decode_reason(&html.body),
        DecodeReason::Syntax { .. }
    ));

    let empty = http_get(addr, "/cgi-bin/token", &q).await.unwrap();
    assert_eq!((empty.status.as_u16(), empty.body.len()), (200, 0));
    assert_eq!(decode_reason(&empty.body), DecodeReason::Empty);

    let truncated = http_get(addr, "/cgi-bin/token", &q).await.unwrap();
    assert_eq!(truncated.status, 200);
    assert!(truncated.body.starts_with(b"{\"access_token\":\""));
    assert!(truncated.body.len() < 120, "{}", truncated.body.len());
    assert_eq!(decode_reason(&truncated.body), DecodeReason::Eof);

    let oversized = http_get(addr, "/cgi-bin/token", &q).await.unwrap();
    assert_eq!(oversized.body.len(), 1 << 20);
    assert!(
        json(&oversized.to_response())["access_token"].is_string(),
        "still valid JSON"
    );

    let non_utf8 = http_get(addr, "/cgi-bin/token", &q).await.unwrap();
    assert!(std::str::from_utf8(&non_utf8.body).is_err());

    match http_get(addr, "/cgi-bin/token", &q).await {
        Err(ClientFailure::NoResponse(e)) => assert!(e.is_incomplete_message(), "{e}"),
        other => panic!("a dropped connection gives no response: {other:?}"),
    }

    match http_get(addr, "/cgi-bin/token", &q).await {
        Err(ClientFailure::Body(status, e)) => {
            assert_eq!(status, 200);
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            assert_eq!(
                cause.as_deref(),
                Some("end of file before message length reached"),
                "{e}"
            );
        }
        other => panic!("the body breaks off: {other:?}"),
    }

    assert_eq!(sb.faults().pending(), 0);
    assert_eq!(sb.faults().injected(), 9);
    let by_kind = sb.faults().injected_by_kind();
    assert_eq!(by_kind.len(), 9);
    assert!(by_kind.values().all(|n| *n == 1));
    // Every request was counted, faulted or not, and the server still answers.
    assert_eq!(sb.count("/cgi-bin/token"), 9);
    let ok = http_get(addr, "/cgi-bin/token", &q).await.unwrap();
    assert!(json(&ok.to_response())["access_token"].is_string());
}

#[tokio::test]
async fn drop_sends_no_byte_and_drop_mid_body_sends_half_of_the_announced_length() {
    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let path = url_with_query("/cgi-bin/token", &token_query());
    sb.faults().script([Fault::Drop, Fault::DropMidBody]);
    assert!(raw_exchange(server.addr(), &path).await.is_empty());

    let raw = raw_exchange(server.addr(), &path).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head was sent");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let announced: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_owned)
        })
        .expect("Content-Length")
        .trim()
        .parse()
        .unwrap();
    assert!(body.len() < announced, "{} < {announced}", body.len());
    assert_eq!(body.len(), announced / 2);
    // The token was issued before the answer was cut: WeChat's side happened.
    assert!(sb.current_token(APP).is_some());
}

#[tokio::test]
async fn delay_over_http_and_a_client_timeout() {
    let sb = sandbox();
    let server = sb.serve().await.unwrap();
    let addr = server.addr();
    sb.faults().script([
        Fault::Delay(Duration::from_millis(300)),
        Fault::Delay(Duration::from_millis(2000)),
    ]);
    let started = Instant::now();
    let r = http_get(addr, "/cgi-bin/token", &token_query())
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(json(&r.to_response())["access_token"].is_string());
    let timed_out = tokio::time::timeout(
        Duration::from_millis(100),
        http_get(addr, "/cgi-bin/token", &token_query()),
    )
    .await;
    assert!(
        timed_out.is_err(),
        "a client timeout fires before the delayed answer"
    );
}

#[tokio::test]
async fn in_process_maps_connection_faults_to_transport_errors() {
    let sb = sandbox();
    sb.faults()
        .script([Fault::Drop, Fault::DropMidBody, Fault::Status(503)]);
    let e = sb.send(HttpRequest::get(token_url())).await.unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::Io);
    assert!(!e.to_string().contains(SECRET));
    assert!(
        sb.current_token(APP).is_none(),
        "a dropped request never reached WeChat"
    );
    let e = sb.send(HttpRequest::get(token_url())).await.unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::Io);
    assert!(
        sb.current_token(APP).is_some(),
        "a cut answer was produced first"
    );
    let r = sb.send(HttpRequest::get(token_url())).await.unwrap();
    assert_eq!(r.status, 503);
    let r = sb.send(HttpRequest::get(token_url())).await.unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn in_process_delay_waits() {
    let sb = sandbox();
    sb.faults()
        .script([Fault::Delay(Duration::from_millis(150))]);
    let started = Instant::now();
    let r = sb.send(HttpRequest::get(token_url())).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(json(&r)["access_token"].is_string());
}

#[tokio::test]
async fn busy_and_body_faults_do_not_reach_wechat_but_damaged_answers_did() {
    let sb = sandbox();
    sb.faults()
        .script([Fault::Busy, Fault::Html, Fault::Empty, Fault::NonUtf8]);
    for _ in 0..4 {
        sb.send(HttpRequest::get(token_url())).await.unwrap();
    }
    assert!(sb.current_token(APP).is_none());
    sb.faults().script([Fault::Truncated]);
    let r = sb.send(HttpRequest::get(token_url())).await.unwrap();
    assert_eq!(decode_reason(&r.body), DecodeReason::Eof);
    assert!(sb.current_token(APP).is_some());
    // A busy answer on sns paths is text/plain like every sns answer, with a rid.
    sb.faults().script([Fault::Busy]);
    let r = get(&sb, "/sns/auth", &[]).await;
    assert_eq!(content_type(&r), "text/plain");
    assert_error(&r, ErrCode::BUSY);
}

#[tokio::test]
async fn script_for_one_path_leaves_others_alone() {
    let sb = sandbox();
    sb.faults()
        .script_for("/cgi-bin/ticket/getticket", [Fault::Busy, Fault::Busy]);
    let token = base_token(&sb).await;
    let ticket = |sb: Sandbox, token: String| async move {
        get(
            &sb,
            "/cgi-bin/ticket/getticket",
            &[("access_token", &token), ("type", "jsapi")],
        )
        .await
    };
    assert_error(&ticket(sb.clone(), token.clone()).await, ErrCode::BUSY);
    // Another path in between is not affected.
    assert_eq!(api_with(&sb, &token).await, None);
    assert_error(&ticket(sb.clone(), token.clone()).await, ErrCode::BUSY);
    assert_eq!(json(&ticket(sb.clone(), token).await)["errcode"], 0);
    assert_eq!(sb.faults().injected(), 2);
}

#[tokio::test]
async fn seeded_mix_is_reproducible_and_counted() {
    async fn run(seed: u64) -> (Vec<u16>, u64, u64) {
        let sb = sandbox();
        sb.faults().mix(
            FaultMix::new(seed)
                .with(Fault::Busy, 0.2)
                .with(Fault::Status(500), 0.1)
                .with(Fault::Drop, 0.1)
                .on_paths(["/cgi-bin/token"]),
        );
        let mut outcomes = Vec::new();
        let mut busy = 0;
        for _ in 0..400 {
            let code = match sb.send(HttpRequest::get(token_url())).await {
                Err(e) => {
                    assert_eq!(e.kind(), TransportErrorKind::Io);
                    1
                }
                Ok(r) if r.status != 200 => r.status.as_u16(),
                Ok(r) if json(&r)["errcode"] == -1 => {
                    busy += 1;
                    2
                }
                Ok(r) => {
                    assert!(json(&r)["access_token"].is_string());
                    200
                }
            };
            outcomes.push(code);
        }
        // Paths outside the mix are never faulted.
        for _ in 0..50 {
            assert!(
                get(&sb, "/cgi-bin/get_api_domain_ip", &[("access_token", "x")])
                    .await
                    .status
                    == 200
            );
        }
        assert_eq!(
            sb.faults()
                .injected_by_kind()
                .get("busy")
                .copied()
                .unwrap_or(0),
            busy
        );
        (outcomes, sb.faults().injected(), busy)
    }
    let (a, injected, busy) = run(99).await;
    let (b, _, _) = run(99).await;
    assert_eq!(a, b, "same seed, same faults");
    let (c, _, _) = run(100).await;
    assert_ne!(a, c);
    let faulted = a.iter().filter(|c| **c != 200).count() as u64;
    assert_eq!(faulted, injected);
    // About 40% of 400.
    assert!((120..200).contains(&faulted), "{faulted}");
    assert!((50..110).contains(&busy), "{busy}");
}
