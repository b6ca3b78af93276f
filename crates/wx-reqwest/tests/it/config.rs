//! Builder settings reach the wire; Debug shows no secret; a user's client can be reused.

use std::time::Duration;

use http::StatusCode;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{HttpRequest, HttpTransport, TransportErrorKind};
use wx_reqwest::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_SIZE, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT,
    ReqwestTransport,
};

#[test]
fn defaults_are_the_documented_ones() {
    assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(5));
    assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(15));
    assert_eq!(
        DEFAULT_USER_AGENT,
        format!("wx-rs/{}", env!("CARGO_PKG_VERSION"))
    );
    let debug = format!("{:?}", ReqwestTransport::builder());
    assert!(debug.contains("connect_timeout: 5s"), "{debug}");
    assert!(debug.contains("timeout: 15s"), "{debug}");
    assert!(debug.contains("max_body_size: 8388608"), "{debug}");
}

#[tokio::test]
async fn the_default_user_agent_is_sent() {
    let server = MockServer::start().await;
    Mock::given(header("user-agent", DEFAULT_USER_AGENT))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let response = ReqwestTransport::new()
        .expect("build")
        .send(HttpRequest::get(server.uri()))
        .await
        .expect("send");
    assert_eq!(response.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_custom_user_agent_is_sent() {
    let server = MockServer::start().await;
    Mock::given(header("user-agent", "my-service/2.1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let transport = ReqwestTransport::builder()
        .user_agent("my-service/2.1")
        .build()
        .expect("build");
    let response = transport
        .send(HttpRequest::get(server.uri()))
        .await
        .expect("send");
    assert_eq!(response.status, StatusCode::NO_CONTENT);
}

#[test]
fn an_invalid_user_agent_fails_the_build() {
    let error = ReqwestTransport::builder()
        .user_agent("bad\nagent")
        .build()
        .expect_err("a newline is not a header value");
    assert_eq!(error.kind(), TransportErrorKind::Other);
}

/// The proxy setting is used: a plain-HTTP request for WeChat's host goes to the proxy
/// (wiremock here), with the proxy credentials; and no Debug output shows the password.
#[tokio::test]
async fn the_proxy_is_used_and_its_password_never_printed() {
    let proxy_server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/token"))
        .and(header("proxy-authorization", "Basic dXNlcjpQUk9YWVBBU1M="))
        .respond_with(ResponseTemplate::new(200).set_body_string("via proxy"))
        .expect(1)
        .mount(&proxy_server)
        .await;
    let proxy_url = format!("http://user:PROXYPASS@{}", proxy_server.address());
    let builder =
        ReqwestTransport::builder().proxy(reqwest::Proxy::http(&proxy_url).expect("proxy url"));
    let builder_debug = format!("{builder:?}");
    let transport = builder.build().expect("build");
    let transport_debug = format!("{transport:?}");
    for debug in [&builder_debug, &transport_debug] {
        assert!(!debug.contains("PROXYPASS"), "{debug}");
    }
    assert!(builder_debug.contains("proxies: 1"), "{builder_debug}");

    let response = transport
        .send(HttpRequest::get(
            "http://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential",
        ))
        .await
        .expect("through the proxy");
    assert_eq!(&response.body[..], b"via proxy");
}

#[tokio::test]
async fn a_client_passed_in_gets_the_default_cap_which_can_be_changed() {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let transport = ReqwestTransport::from(client);
    assert_eq!(transport.max_body_size(), DEFAULT_MAX_BODY_SIZE);
    let transport = transport.with_max_body_size(4);
    assert_eq!(transport.max_body_size(), 4);

    let server = MockServer::start().await;
    Mock::given(path("/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("12345"))
        .mount(&server)
        .await;
    let error = transport
        .send(HttpRequest::get(format!("{}/x", server.uri())))
        .await
        .expect_err("5 bytes over a cap of 4");
    assert!(error.is_body_too_large());
}
