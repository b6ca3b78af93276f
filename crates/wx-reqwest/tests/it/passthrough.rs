//! Status, headers and body pass through unchanged, in both directions.

use http::{HeaderValue, Method, StatusCode};
use wiremock::matchers::{body_bytes, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{HttpRequest, HttpTransport};
use wx_reqwest::ReqwestTransport;

fn transport() -> ReqwestTransport {
    ReqwestTransport::new().expect("build transport")
}

#[tokio::test]
async fn response_status_headers_and_body_come_back_unchanged() {
    let server = MockServer::start().await;
    // Not UTF-8, not JSON: the transport must not touch it.
    let body: Vec<u8> = vec![0xff, 0xfe, 0x00, b'{', 0x80, b'\n', 0xc3];
    Mock::given(method("GET"))
        .and(path("/cgi-bin/token"))
        .and(query_param("appid", "wx1"))
        .respond_with(
            ResponseTemplate::new(418)
                .insert_header("content-type", "text/plain; encoding=utf-8")
                .insert_header("x-wx-trace", "abc 123")
                .append_header("set-cookie", "a=1")
                .append_header("set-cookie", "b=2")
                .set_body_bytes(body.clone()),
        )
        .expect(1)
        .mount(&server)
        .await;

    let response = transport()
        .send(HttpRequest::get(format!(
            "{}/cgi-bin/token?appid=wx1",
            server.uri()
        )))
        .await
        .expect("a 418 is a response, not an error");

    assert_eq!(response.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(&response.body[..], &body[..]);
    assert_eq!(
        response.headers.get("content-type"),
        Some(&HeaderValue::from_static("text/plain; encoding=utf-8"))
    );
    assert_eq!(
        response.headers.get("x-wx-trace"),
        Some(&HeaderValue::from_static("abc 123"))
    );
    let cookies: Vec<_> = response.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(
        response.headers.get("content-length"),
        Some(&HeaderValue::from(body.len()))
    );
}

#[tokio::test]
async fn request_method_headers_query_and_body_reach_the_server_unchanged() {
    let server = MockServer::start().await;
    let payload = br#"{"touser":"o1","text":{"content":"\u4f60\u597d"}}"#.to_vec();
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/custom/send"))
        .and(query_param("access_token", "AT+/="))
        .and(header("content-type", "application/json"))
        .and(header("x-request-id", "r-42"))
        .and(body_bytes(payload.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"errcode":0}"#))
        .expect(1)
        .mount(&server)
        .await;

    let mut request = HttpRequest::post_json(
        format!(
            "{}/cgi-bin/message/custom/send?access_token=AT%2B%2F%3D",
            server.uri()
        ),
        payload.clone(),
    );
    request
        .headers
        .insert("x-request-id", HeaderValue::from_static("r-42"));
    let response = transport().send(request).await.expect("send");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&response.body[..], br#"{"errcode":0}"#);

    let received = server.received_requests().await.expect("recording on");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, Method::POST);
    assert_eq!(
        received[0].url.query(),
        Some("access_token=AT%2B%2F%3D"),
        "the query string is sent as given"
    );
    assert_eq!(received[0].body, payload);
}

#[tokio::test]
async fn server_errors_are_responses_not_transport_errors() {
    let server = MockServer::start().await;
    Mock::given(path("/busy"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .mount(&server)
        .await;
    let response = transport()
        .send(HttpRequest::get(format!("{}/busy", server.uri())))
        .await
        .expect("a 503 is a response");
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(&response.body[..], b"busy");
}

/// A proxy or WeChat's browser page answering 200 with HTML: the transport hands it over as it
/// came; turning it into a decode error that names the endpoint is the client's job.
#[tokio::test]
async fn html_body_with_status_200_passes_through_unchanged() {
    let html = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>微信</title></head>\
                <body><p>请在微信客户端打开链接</p></body></html>";
    let server = MockServer::start().await;
    Mock::given(path("/sns/userinfo"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(html, "text/html; charset=utf-8"))
        .mount(&server)
        .await;
    let response = transport()
        .send(HttpRequest::get(format!(
            "{}/sns/userinfo?access_token=T&openid=o1",
            server.uri()
        )))
        .await
        .expect("send");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&response.body[..], html.as_bytes());
    assert_eq!(
        response.headers.get("content-type"),
        Some(&HeaderValue::from_static("text/html; charset=utf-8"))
    );
    // And the core decoder, fed this body, reports a typed decode error for the endpoint.
    let error = wx_core::decode_response::<wx_core::UserInfo>("sns/userinfo", &response.body)
        .expect_err("HTML is not a user");
    assert!(matches!(error, wx_core::Error::Decode(ref d) if d.endpoint == "sns/userinfo"));
}

#[tokio::test]
async fn a_302_is_returned_with_its_location_and_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/start"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", "/elsewhere?code=abc")
                .set_body_string("moved"),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;

    let response = transport()
        .send(HttpRequest::get(format!("{}/start", server.uri())))
        .await
        .expect("a 302 is a response");
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(
        response.headers.get("location"),
        Some(&HeaderValue::from_static("/elsewhere?code=abc"))
    );
    assert_eq!(&response.body[..], b"moved");
    let received = server.received_requests().await.expect("recording on");
    assert_eq!(received.len(), 1, "the redirect was not followed");
}

/// Redirects are not followed for any redirect status, including 307/308 on a POST.
#[tokio::test]
async fn a_308_on_a_post_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(308).insert_header("location", "/b"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let response = transport()
        .send(HttpRequest::post_json(format!("{}/a", server.uri()), "{}"))
        .await
        .expect("send");
    assert_eq!(response.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response.headers.get("location"),
        Some(&HeaderValue::from_static("/b"))
    );
}
