//! Keep-alive: calls reuse one connection, clones share the pool. Proven by a raw server that
//! counts the connections it accepts.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wx_core::{HttpRequest, HttpTransport};
use wx_reqwest::ReqwestTransport;

use crate::support::{RawServer, read_request_head};

/// Answers every request of a connection with `200 ok`, keeping the connection open.
async fn keep_alive(mut stream: TcpStream) {
    while read_request_head(&mut stream).await {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

async fn get_ok(transport: &ReqwestTransport, server: &RawServer) {
    let response = transport
        .send(HttpRequest::get(server.url("/cgi-bin/token")))
        .await
        .expect("send");
    assert_eq!(&response.body[..], b"ok");
}

#[tokio::test]
async fn calls_and_clones_reuse_one_connection() {
    let server = RawServer::start(keep_alive).await;
    let transport = ReqwestTransport::new().expect("build");
    for _ in 0..3 {
        get_ok(&transport, &server).await;
    }
    assert_eq!(server.accepted(), 1, "three calls, one connection");

    // A clone, used from another task.
    let clone = transport.clone();
    let url = server.url("/sns/userinfo");
    let body = tokio::spawn(async move { clone.send(HttpRequest::get(url)).await })
        .await
        .expect("task")
        .expect("send")
        .body;
    assert_eq!(&body[..], b"ok");
    assert_eq!(server.accepted(), 1, "a clone shares the pool");

    // Control: a separately built transport has its own pool, and the counter sees it.
    let other = ReqwestTransport::new().expect("build");
    get_ok(&other, &server).await;
    assert_eq!(server.accepted(), 2);
}

#[tokio::test]
async fn pool_max_idle_per_host_zero_opens_a_connection_per_call() {
    let server = RawServer::start(keep_alive).await;
    let transport = ReqwestTransport::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("build");
    for _ in 0..3 {
        get_ok(&transport, &server).await;
    }
    assert_eq!(server.accepted(), 3);
}

#[tokio::test]
async fn a_client_passed_in_keeps_its_pool() {
    let server = RawServer::start(keep_alive).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let transport = ReqwestTransport::from(client.clone());
    get_ok(&transport, &server).await;
    // The user's own client, used directly, finds the same idle connection.
    let direct = client
        .get(server.url("/other"))
        .send()
        .await
        .expect("send")
        .bytes()
        .await
        .expect("body");
    assert_eq!(&direct[..], b"ok");
    assert_eq!(server.accepted(), 1);
}

/// What one call in flight keeps on the heap for the transport: reqwest's pending request and
/// the body being read, not the request's parts or reqwest's `bytes()` (which holds the
/// response three times): 440 bytes, where an `async fn` took 1,968.
#[tokio::test]
async fn the_send_future_stays_small() {
    let transport = wx_reqwest::ReqwestTransport::new().expect("a transport");
    let future = wx_core::HttpTransport::send(
        &transport,
        wx_core::HttpRequest::get("http://127.0.0.1:9/never-sent"),
    );
    let size = size_of_val(&*future);
    assert!(size <= 512, "{size} bytes");
}

/// A future made outside any runtime (reqwest needs one to send) is started when first polled
/// inside one.
#[test]
fn a_future_made_outside_a_runtime_runs_inside_one() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let server = rt.block_on(async {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::path("/ok"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("fine"))
            .mount(&server)
            .await;
        server
    });
    let transport = ReqwestTransport::new().expect("a transport");
    let future = transport.send(HttpRequest::get(format!("{}/ok", server.uri())));
    let response = rt.block_on(future).expect("sent once polled");
    assert_eq!(&response.body[..], b"fine");
    rt.block_on(async move { drop(server) });
}
