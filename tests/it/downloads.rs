//! Downloads over reqwest against wiremock: a file may be as large as WeChat documents for its
//! endpoint (10 MiB) and no larger, whatever the transport's JSON cap; a JSON answer on the same
//! path (WeChat's errors, a video's URL) keeps the tighter JSON cap.

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use wx_core::{AppSecret, Error, MemoryTokenStore, TransportErrorKind};
use wx_official::OfficialAccount;
use wx_official::material::{GetMaterial, Material};
use wx_official::media::{GetMedia, MediaContent};
use wx_reqwest::ReqwestTransport;

use crate::support::fast_retry;

const APPID: &str = "wx1234567890abcdef";
const SECRET: &str = "S3CR3T-downloads-app-secret";
/// WeChat's largest media file, the documented limit of `media/get` and `get_material`.
const FILE_LIMIT: usize = 10 * 1024 * 1024;
/// The transport's cap for JSON answers in this test (well under the file limit).
const JSON_CAP: usize = 64 * 1024;

type Client = OfficialAccount<ReqwestTransport, MemoryTokenStore>;

fn client(server: &MockServer) -> Client {
    let transport = ReqwestTransport::builder()
        .max_body_size(JSON_CAP)
        .build()
        .expect("transport");
    OfficialAccount::builder(APPID, AppSecret::new(SECRET))
        .api_base(&server.uri())
        .retry_policy(fast_retry())
        .build(transport, MemoryTokenStore::new())
        .expect("client")
}

fn file(len: usize) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-disposition", "attachment; filename=\"M.jpg\"")
        .set_body_raw(vec![0xa5u8; len], "image/jpeg")
}

/// A JSON answer of exactly `len` bytes: a video's URL padded to size.
fn json_of(len: usize, content_type: &str) -> ResponseTemplate {
    let head = r#"{"video_url":"http://example.invalid/"#;
    let tail = r#""}"#;
    let body = format!("{head}{}{tail}", "a".repeat(len - head.len() - tail.len()));
    ResponseTemplate::new(200).set_body_raw(body.into_bytes(), content_type)
}

async fn answer(server: &MockServer, p: &str, template: ResponseTemplate) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/token"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"access_token":"AT-downloads","expires_in":7200}"#,
            "application/json",
        ))
        .mount(server)
        .await;
    Mock::given(path(p))
        .respond_with(template)
        .mount(server)
        .await;
}

fn too_large(e: &Error) -> bool {
    e.transport()
        .is_some_and(|t| t.kind() == TransportErrorKind::BodyTooLarge)
}

#[tokio::test]
async fn a_file_up_to_its_documented_size_passes_the_json_cap_and_not_one_byte_more() {
    let server = MockServer::start().await;
    let client = client(&server);
    answer(&server, "/cgi-bin/media/get", file(FILE_LIMIT)).await;
    let got = client.send(&GetMedia::new("M")).await.expect("10 MiB");
    assert!(matches!(got, MediaContent::File(f) if f.bytes.len() == FILE_LIMIT));

    answer(&server, "/cgi-bin/media/get", file(FILE_LIMIT + 1)).await;
    let e = client
        .send(&GetMedia::new("M"))
        .await
        .expect_err("over 10 MiB");
    assert!(too_large(&e), "{e:?}");

    answer(
        &server,
        "/cgi-bin/material/get_material",
        file(FILE_LIMIT + 1),
    )
    .await;
    let e = client
        .send(&GetMaterial::new("M"))
        .await
        .expect_err("over 10 MiB");
    assert!(too_large(&e), "{e:?}");
}

#[tokio::test]
async fn a_json_answer_on_a_download_path_keeps_the_json_cap() {
    let server = MockServer::start().await;
    let client = client(&server);
    for ct in ["application/json; encoding=utf-8", "text/plain"] {
        answer(&server, "/cgi-bin/media/get", json_of(JSON_CAP, ct)).await;
        let got = client.send(&GetMedia::new("V")).await.expect("at the cap");
        assert!(
            matches!(&got, MediaContent::VideoUrl(u) if u.len() == JSON_CAP - 16),
            "{ct}: {got:?}"
        );
        answer(&server, "/cgi-bin/media/get", json_of(JSON_CAP + 1, ct)).await;
        let e = client
            .send(&GetMedia::new("V"))
            .await
            .expect_err("JSON over the JSON cap");
        assert!(too_large(&e), "{ct}: {e:?}");
    }
    answer(
        &server,
        "/cgi-bin/material/get_material",
        json_of(JSON_CAP + 1, "application/json"),
    )
    .await;
    let e = client
        .send(&GetMaterial::new("V"))
        .await
        .expect_err("JSON over the JSON cap");
    assert!(too_large(&e), "{e:?}");
    // A file of the same size is fine: only JSON keeps the tighter cap.
    answer(
        &server,
        "/cgi-bin/material/get_material",
        file(JSON_CAP + 1),
    )
    .await;
    let got = client.send(&GetMaterial::new("F")).await.expect("a file");
    assert!(matches!(got, Material::File(f) if f.bytes.len() == JSON_CAP + 1));
}
