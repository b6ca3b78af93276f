//! Every failure is classified, and no failure lets the URL's secret or token reach the error's
//! Display, Debug or any source in its chain.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{HttpRequest, HttpTransport, RetryHint, TransportError, TransportErrorKind};
use wx_reqwest::ReqwestTransport;

use crate::support::{
    RawServer, SECRET_QUERY, assert_no_secrets, chain_mentions_secret, closed_port,
    read_request_head,
};

/// Sends a GET and expects a transport error; checks the whole chain for secrets and that the
/// cause is kept in `source()`.
async fn expect_failure(transport: &ReqwestTransport, url: String) -> TransportError {
    assert!(url.contains("SUPERSECRET") && url.contains("TOKENVALUE"));
    let error = transport
        .send(HttpRequest::get(url))
        .await
        .expect_err("the request must fail");
    let (depth, _) = assert_no_secrets(&error);
    assert!(depth >= 2, "the cause is kept as the source: {error:?}");
    error
}

fn short_timeouts() -> ReqwestTransport {
    ReqwestTransport::builder()
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_millis(300))
        .build()
        .expect("build")
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/token"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let started = Instant::now();
    let error = expect_failure(
        &short_timeouts(),
        format!("{}/cgi-bin/token{SECRET_QUERY}", server.uri()),
    )
    .await;
    assert_eq!(error.kind(), TransportErrorKind::Timeout, "{error:?}");
    assert!(error.is_timeout());
    assert_eq!(error.retry_hint(), RetryHint::Backoff);
    assert_eq!(error.to_string(), "timed out");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up after the timeout, not the 5 s delay: {:?}",
        started.elapsed()
    );
}

/// The timeout covers the body too: headers arrive, then the body stalls.
#[tokio::test]
async fn a_body_that_stalls_past_the_timeout_is_a_timeout() {
    let server = RawServer::start(|mut stream: TcpStream| async move {
        if read_request_head(&mut stream).await {
            let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"access_";
            let _ = stream.write_all(head).await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    })
    .await;
    let started = Instant::now();
    let error = expect_failure(&short_timeouts(), server.url(&format!("/t{SECRET_QUERY}"))).await;
    assert_eq!(error.kind(), TransportErrorKind::Timeout, "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let port = closed_port();
    let error = expect_failure(
        &short_timeouts(),
        format!("http://127.0.0.1:{port}/cgi-bin/token{SECRET_QUERY}"),
    )
    .await;
    assert_eq!(error.kind(), TransportErrorKind::Connect, "{error:?}");
    assert!(error.is_connect());
    assert_eq!(error.retry_hint(), RetryHint::Backoff);
    assert_eq!(error.to_string(), "connection failed");
}

/// A TLS handshake that never completes runs into the connect timeout, not the (longer)
/// request timeout, and is reported as `Connect`: the request was never sent.
#[cfg(any(feature = "rustls", feature = "native-tls"))]
#[tokio::test]
async fn a_stalled_tls_handshake_is_a_connect_error_after_the_connect_timeout() {
    let server = RawServer::start(|stream: TcpStream| async move {
        // Accept, then say nothing.
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(stream);
    })
    .await;
    let transport = ReqwestTransport::builder()
        .connect_timeout(Duration::from_millis(300))
        .timeout(Duration::from_secs(8))
        .build()
        .expect("build");
    let started = Instant::now();
    let error = expect_failure(
        &transport,
        format!("https://{}/cgi-bin/token{SECRET_QUERY}", server.addr),
    )
    .await;
    assert_eq!(error.kind(), TransportErrorKind::Connect, "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the connect timeout applied: {:?}",
        started.elapsed()
    );
    assert_eq!(server.accepted(), 1);
}

/// The server promises 100 bytes, sends 10 and closes: a broken connection.
#[tokio::test]
async fn a_truncated_body_is_an_io_error() {
    let server = RawServer::start(|mut stream: TcpStream| async move {
        if read_request_head(&mut stream).await {
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"access_t";
            let _ = stream.write_all(answer).await;
        }
    })
    .await;
    let error = expect_failure(&short_timeouts(), server.url(&format!("/t{SECRET_QUERY}"))).await;
    assert_eq!(error.kind(), TransportErrorKind::Io, "{error:?}");
    assert_eq!(error.retry_hint(), RetryHint::Backoff);
    assert_eq!(error.to_string(), "connection broken");
}

/// The server reads the request and closes without answering.
#[tokio::test]
async fn a_connection_closed_before_the_response_is_an_io_error() {
    let server = RawServer::start(|mut stream: TcpStream| async move {
        let _ = read_request_head(&mut stream).await;
    })
    .await;
    let error = expect_failure(&short_timeouts(), server.url(&format!("/t{SECRET_QUERY}"))).await;
    assert_eq!(error.kind(), TransportErrorKind::Io, "{error:?}");
}

/// A garbage answer is a protocol violation.
#[tokio::test]
async fn a_response_that_is_not_http_is_an_error_without_secrets() {
    let server = RawServer::start(|mut stream: TcpStream| async move {
        if read_request_head(&mut stream).await {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
        }
    })
    .await;
    let error = expect_failure(&short_timeouts(), server.url(&format!("/t{SECRET_QUERY}"))).await;
    // reqwest reports a parse failure of the response as a request error.
    assert_eq!(error.kind(), TransportErrorKind::Io, "{error:?}");
}

#[tokio::test]
async fn an_unparsable_url_is_other_and_does_not_echo_the_url() {
    let transport = short_timeouts();
    for url in [
        format!("not a url{SECRET_QUERY}"),
        format!("ftp://127.0.0.1/x{SECRET_QUERY}"),
        format!("http://[::1/x{SECRET_QUERY}"),
    ] {
        let error = expect_failure(&transport, url).await;
        assert_eq!(error.kind(), TransportErrorKind::Other, "{error:?}");
        assert_eq!(error.retry_hint(), RetryHint::Never);
    }
}

/// The leak this crate prevents is real: reqwest's own error for the same failure prints the
/// URL with its query, and the check above would catch it.
#[tokio::test]
async fn reqwest_errors_carry_the_url_unless_stripped() {
    let port = closed_port();
    let raw = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/cgi-bin/token{SECRET_QUERY}"
        ))
        .send()
        .await
        .expect_err("closed port");
    assert!(chain_mentions_secret(&raw), "{raw:?}");
    assert!(!chain_mentions_secret(&raw.without_url()));
}
