//! The debug log line of a request records the path, never the query.

use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{HttpRequest, HttpTransport};
use wx_reqwest::ReqwestTransport;

use crate::support::{SECRET_QUERY, closed_port};

#[tokio::test]
async fn log_lines_record_the_path_and_never_the_query() {
    // Global, not a scoped default: with a single scoped subscriber, tracing caches a
    // callsite's interest from whichever thread hits it first, so another test's thread could
    // disable these events for this one. Only this test installs a subscriber; lines from tests
    // running meanwhile land in the buffer too, and must be free of secrets as well.
    let captured = wx_core::test_util::CapturedLogs::global();

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

    let logs = captured.text();
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
