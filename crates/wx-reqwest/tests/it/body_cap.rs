//! The body cap: checked against Content-Length up front, and counted while streaming; once
//! passed, the rest of the body is not read.

use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{HttpRequest, HttpTransport, RetryHint, TransportErrorKind};
use wx_reqwest::{DEFAULT_MAX_BODY_SIZE, ReqwestTransport};

use crate::support::{RawServer, SECRET_QUERY, assert_no_secrets, read_request_head};

const CAP: usize = 64 * 1024;

fn capped(cap: usize) -> ReqwestTransport {
    ReqwestTransport::builder()
        .max_body_size(cap)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("build")
}

/// A server answering with a chunked body made of `chunks`.
async fn chunked_server(chunks: Vec<usize>) -> RawServer {
    RawServer::start(move |mut stream: TcpStream| {
        let chunks = chunks.clone();
        async move {
            if !read_request_head(&mut stream).await {
                return;
            }
            let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
            for len in chunks {
                out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
                out.extend(std::iter::repeat_n(b'a', len));
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            let _ = stream.write_all(&out).await;
            let _ = stream.flush().await;
        }
    })
    .await
}

#[tokio::test]
async fn a_body_at_the_cap_is_accepted_and_one_byte_more_is_refused() {
    let server = MockServer::start().await;
    Mock::given(path("/at"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; CAP]))
        .mount(&server)
        .await;
    Mock::given(path("/over"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; CAP + 1]))
        .mount(&server)
        .await;
    let transport = capped(CAP);

    let ok = transport
        .send(HttpRequest::get(format!("{}/at", server.uri())))
        .await
        .expect("a body of exactly the cap is fine");
    assert_eq!(ok.body.len(), CAP);

    let error = transport
        .send(HttpRequest::get(format!(
            "{}/over{SECRET_QUERY}",
            server.uri()
        )))
        .await
        .expect_err("one byte over the cap");
    assert_eq!(error.kind(), TransportErrorKind::BodyTooLarge);
    assert!(error.is_body_too_large());
    assert_eq!(error.retry_hint(), RetryHint::Never);
    assert_eq!(error.to_string(), "response body too large");
    assert_eq!(
        error.source().expect("detail").to_string(),
        format!(
            "Content-Length {} exceeds the limit of {CAP} bytes",
            CAP + 1
        )
    );
    assert_no_secrets(&error);
}

/// Without Content-Length the cap is counted chunk by chunk, across chunk boundaries.
#[tokio::test]
async fn a_chunked_body_is_counted_while_streaming() {
    let cap = 1000;
    let at_cap = chunked_server(vec![300, 300, 400]).await;
    let response = capped(cap)
        .send(HttpRequest::get(at_cap.url("/x")))
        .await
        .expect("exactly the cap, in three chunks");
    assert_eq!(response.body.len(), cap);
    assert!(response.body.iter().all(|b| *b == b'a'));
    assert_eq!(response.headers.get("content-length"), None);

    let over = chunked_server(vec![300, 300, 401]).await;
    let error = capped(cap)
        .send(HttpRequest::get(over.url(&format!("/x{SECRET_QUERY}"))))
        .await
        .expect_err("one byte over, in the last chunk");
    assert_eq!(error.kind(), TransportErrorKind::BodyTooLarge);
    assert_eq!(
        error.source().expect("detail").to_string(),
        format!("more than {cap} bytes received")
    );
    assert_no_secrets(&error);
}

/// Content-Length says 1 GiB; ten bytes come, then nothing. The cap refuses at once instead of
/// waiting for (or allocating) the body.
#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_reading() {
    let server = RawServer::start(|mut stream: TcpStream| async move {
        if read_request_head(&mut stream).await {
            let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n0123456789";
            let _ = stream.write_all(head).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    })
    .await;
    let started = Instant::now();
    let error = capped(CAP)
        .send(HttpRequest::get(server.url("/big")))
        .await
        .expect_err("declared too large");
    assert_eq!(error.kind(), TransportErrorKind::BodyTooLarge);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused from the header, took {:?}",
        started.elapsed()
    );
}

/// A server streams a 1 GiB chunked body as fast as it can. The call fails promptly, the
/// connection is dropped, and the server could push only about the cap plus socket buffers.
#[tokio::test]
async fn a_huge_streamed_body_stops_being_read_at_the_cap() {
    const HUGE: u64 = 1024 * 1024 * 1024;
    let written = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = oneshot::channel::<bool>();
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    let server = {
        let written = Arc::clone(&written);
        RawServer::start(move |mut stream: TcpStream| {
            let written = Arc::clone(&written);
            let done_tx = Arc::clone(&done_tx);
            async move {
                if !read_request_head(&mut stream).await {
                    return;
                }
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                let mut broken = stream.write_all(head).await.is_err();
                let chunk_len = 16 * 1024;
                let mut chunk = format!("{chunk_len:x}\r\n").into_bytes();
                chunk.extend(std::iter::repeat_n(b'z', chunk_len));
                chunk.extend_from_slice(b"\r\n");
                while !broken && written.load(Ordering::SeqCst) < HUGE {
                    match stream.write_all(&chunk).await {
                        Ok(()) => {
                            written.fetch_add(chunk_len as u64, Ordering::SeqCst);
                        }
                        Err(_) => broken = true,
                    }
                }
                let sender = done_tx.lock().expect("lock").take();
                if let Some(sender) = sender {
                    let _ = sender.send(broken);
                }
            }
        })
        .await
    };

    let started = Instant::now();
    let error = capped(CAP)
        .send(HttpRequest::get(server.url("/stream")))
        .await
        .expect_err("streamed past the cap");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), TransportErrorKind::BodyTooLarge);
    assert!(
        elapsed < Duration::from_secs(3),
        "returned after {elapsed:?}"
    );

    let broken = tokio::time::timeout(Duration::from_secs(10), done_rx)
        .await
        .expect("the server stops writing soon after the client gives up")
        .expect("sender");
    assert!(broken, "the client closed the connection");
    let sent = written.load(Ordering::SeqCst);
    assert!(
        sent < 64 * 1024 * 1024,
        "only the cap plus socket buffers were pushed, not the 1 GiB: {sent} bytes"
    );
}

#[tokio::test]
async fn the_default_cap_is_8_mib() {
    assert_eq!(DEFAULT_MAX_BODY_SIZE, 8 * 1024 * 1024);
    let transport = ReqwestTransport::new().expect("build");
    assert_eq!(transport.max_body_size(), DEFAULT_MAX_BODY_SIZE);
    let server = MockServer::start().await;
    Mock::given(path("/x"))
        .respond_with(
            ResponseTemplate::new(200).set_body_bytes(vec![0u8; DEFAULT_MAX_BODY_SIZE + 1]),
        )
        .mount(&server)
        .await;
    let error = transport
        .send(HttpRequest::get(format!("{}/x", server.uri())))
        .await
        .expect_err("over the default cap");
    assert!(error.is_body_too_large());
}

/// A body within its declared Content-Length is read whole at once; a server that sends more
/// than it declared gets only the declared bytes read, however much more it sends.
#[tokio::test]
async fn a_declared_length_bounds_what_is_read() {
    let cap = 1000;
    let liar = RawServer::start(|mut stream: TcpStream| async move {
        if !read_request_head(&mut stream).await {
            return;
        }
        let mut out = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n".to_vec();
        out.extend(std::iter::repeat_n(b'b', 1024 * 1024));
        let _ = stream.write_all(&out).await;
        let _ = stream.flush().await;
    })
    .await;
    let response = capped(cap)
        .send(HttpRequest::get(liar.url("/x")))
        .await
        .expect("the declared ten bytes");
    assert_eq!(&response.body[..], b"bbbbbbbbbb");
}
