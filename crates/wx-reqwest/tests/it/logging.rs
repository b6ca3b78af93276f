//! The debug log line of a request records the path, never the query.

use std::io::Write;
use std::sync::{Arc, Mutex};

use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{HttpRequest, HttpTransport};
use wx_reqwest::ReqwestTransport;

use crate::support::{SECRET_QUERY, closed_port};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn log_lines_record_the_path_and_never_the_query() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Global, not `set_default`: with a single scoped subscriber, tracing caches a callsite's
    // interest from whichever thread hits it first, so another test's thread could disable
    // these events for this one. Only this test installs a subscriber; lines from tests running
    // meanwhile land in the buffer too, and must be free of secrets as well.
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let server = MockServer::start().await;
    Mock::given(path("/logged/cgi-bin/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    let transport = ReqwestTransport::new().expect("build");
    transport
        .send(HttpRequest::get(format!(
            "{}/logged/cgi-bin/token{SECRET_QUERY}",
            server.uri()
        )))
        .await
        .expect("send");
    transport
        .send(HttpRequest::get(format!(
            "http://127.0.0.1:{}/logged/sns/userinfo{SECRET_QUERY}",
            closed_port()
        )))
        .await
        .expect_err("closed port");

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let line_of = |path: &str| {
        logs.lines()
            .find(|line| line.contains(&format!("path=\"{path}\"")))
            .unwrap_or_else(|| panic!("no line for {path}:\n{logs}"))
            .to_owned()
    };
    let ok = line_of("/logged/cgi-bin/token");
    assert!(ok.contains("DEBUG"), "{ok}");
    assert!(ok.contains("wx http response"), "{ok}");
    assert!(
        ok.contains("method=GET") && ok.contains("status=200"),
        "{ok}"
    );
    let failed = line_of("/logged/sns/userinfo");
    assert!(failed.contains("wx http request failed"), "{failed}");
    assert!(failed.contains("kind=Connect"), "{failed}");
    for secret in ["SUPERSECRET", "TOKENVALUE"] {
        assert!(!logs.contains(secret), "`{secret}` in the logs:\n{logs}");
    }
}
