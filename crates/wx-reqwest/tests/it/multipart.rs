//! Uploads and downloads through reqwest: a multipart form encoded by wx-core arrives byte for
//! byte (boundary, part headers, filename, content type, file bytes), and a request's own
//! response limit replaces the transport's default cap in both directions.

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::test_util::form_parts;
use wx_core::{HttpRequest, HttpTransport, MultipartForm, TransportErrorKind};
use wx_reqwest::ReqwestTransport;

#[tokio::test]
async fn a_multipart_form_arrives_byte_for_byte() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/material/add_material"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"media_id":"M1"}"#))
        .mount(&server)
        .await;
    // Every byte value, so nothing in the path (reqwest, hyper) may touch binary content.
    let file: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let form = MultipartForm::new()
        .file("media", "清晨.mp4", "video/mp4", file.clone())
        .text("description", r#"{"title":"T","introduction":"I"}"#);
    let encoded = form
        .encode_with_boundary("wx-test-boundary")
        .expect("encodes");
    let request = HttpRequest::post_form(
        format!(
            "{}/cgi-bin/material/add_material?access_token=T&type=video",
            server.uri()
        ),
        encoded,
    );
    let transport = ReqwestTransport::new().expect("transport");
    let response = transport.send(request.clone()).await.expect("sent");
    assert_eq!(response.status, 200);

    let received = server.received_requests().await.expect("recording on");
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(
        got.headers.get("content-type").expect("content type"),
        "multipart/form-data; boundary=wx-test-boundary"
    );
    let mut expected = Vec::new();
    expected.extend_from_slice(
        "--wx-test-boundary\r\nContent-Disposition: form-data; name=\"media\"; filename=\"清晨.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
            .as_bytes(),
    );
    expected.extend_from_slice(&file);
    expected.extend_from_slice(
        b"\r\n--wx-test-boundary\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n{\"title\":\"T\",\"introduction\":\"I\"}\r\n--wx-test-boundary--\r\n",
    );
    assert_eq!(got.body, expected, "the body differs from RFC 7578 framing");
    assert_eq!(
        got.headers.get("content-length").expect("length"),
        &expected.len().to_string()
    );
    // An independent parser (multer) reads the same parts back from what was sent.
    let parts = form_parts(&request).expect("parses");
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].name, "media");
    assert_eq!(parts[0].filename.as_deref(), Some("清晨.mp4"));
    assert_eq!(parts[0].content_type.as_deref(), Some("video/mp4"));
    assert_eq!(parts[0].bytes, file);
    assert_eq!(parts[1].name, "description");
    assert_eq!(parts[1].filename, None);
    assert_eq!(parts[1].text(), Some(r#"{"title":"T","introduction":"I"}"#));
}

#[tokio::test]
async fn a_request_limit_replaces_the_default_cap_both_ways() {
    const DEFAULT_CAP: usize = 64 * 1024;
    const FILE: usize = 100 * 1024;
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/media/get"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/jpeg")
                .set_body_bytes(vec![0xff; FILE]),
        )
        .mount(&server)
        .await;
    let transport = ReqwestTransport::builder()
        .max_body_size(DEFAULT_CAP)
        .build()
        .expect("transport");
    let url = format!("{}/cgi-bin/media/get?media_id=M", server.uri());

    // Without a limit of its own the request keeps the transport's (JSON-sized) cap.
    let e = transport
        .send(HttpRequest::get(url.clone()))
        .await
        .expect_err("over the default cap");
    assert_eq!(e.kind(), TransportErrorKind::BodyTooLarge);
    // A download allowed its documented size gets the whole file.
    let ok = transport
        .send(HttpRequest::get(url.clone()).with_response_limit(Some(FILE)))
        .await
        .expect("within the request's limit");
    assert_eq!(ok.body.len(), FILE);
    // And a request limit tighter than the default is honoured too.
    let e = transport
        .send(HttpRequest::get(url).with_response_limit(Some(FILE - 1)))
        .await
        .expect_err("one byte over the request's limit");
    assert_eq!(e.kind(), TransportErrorKind::BodyTooLarge);
}

#[tokio::test]
async fn a_json_answer_to_a_download_keeps_the_default_cap() {
    const DEFAULT_CAP: usize = 1024;
    const FILE: usize = 4096;
    let server = MockServer::start().await;
    let json = format!(
        r#"{{"errcode":40007,"errmsg":"{}"}}"#,
        "x".repeat(DEFAULT_CAP)
    );
    let cases = [
        // WeChat's JSON, however it labels it: refused past the default cap.
        (
            ResponseTemplate::new(200).set_body_raw(json.clone(), "application/json"),
            false,
        ),
        (
            ResponseTemplate::new(200).set_body_raw(json.clone(), "text/plain"),
            false,
        ),
        // A file may use the request's whole limit, even with a JSON-looking type.
        (
            ResponseTemplate::new(200)
                .insert_header("content-disposition", "attachment; filename=\"a.json\"")
                .set_body_raw(json.clone(), "application/json"),
            true,
        ),
        (
            ResponseTemplate::new(200).set_body_raw(vec![1u8; FILE], "image/jpeg"),
            true,
        ),
    ];
    let transport = ReqwestTransport::builder()
        .max_body_size(DEFAULT_CAP)
        .build()
        .expect("transport");
    for (i, (template, accepted)) in cases.into_iter().enumerate() {
        server.reset().await;
        Mock::given(path("/cgi-bin/media/get"))
            .respond_with(template)
            .mount(&server)
            .await;
        let url = format!("{}/cgi-bin/media/get?media_id=M", server.uri());
        let got = transport
            .send(HttpRequest::get(url).with_response_limit(Some(FILE)))
            .await;
        match got {
            Ok(r) => assert!(accepted, "case {i}: {} bytes accepted", r.body.len()),
            Err(e) => assert!(
                !accepted && e.kind() == TransportErrorKind::BodyTooLarge,
                "case {i}: {e:?}"
            ),
        }
    }
}
