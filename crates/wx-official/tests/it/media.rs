//! Media, materials, drafts and publishing on the recording mock: every endpoint sends exactly
//! the request WeChat documents (method, path, query, JSON body or multipart parts read back
//! with an independent parser) with the base token, and decodes WeChat's answers (the fixtures
//! of tests/fixtures/push/ where they exist); bad input sends nothing.

use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;
use wx_core::test_util::{ExpectedRequest, FormPart, MockTransport, form_parts};
use wx_core::{Error, HttpRequest, HttpResponse, TransportErrorKind};
use wx_official::Request as _;
use wx_official::material::{
    AddMaterial, BatchGetMaterial, DeleteMaterial, GetMaterial, Material, MaterialCount,
    MaterialType,
};
use wx_official::media::{GetMedia, MediaContent, MediaType, UploadFile, UploadImage, UploadMedia};

use crate::common::{
    APPID, SECRET, Setup, TOKEN_PATH, api_code, err_body, fixture, setup, token_body, walk,
};

/// A tiny JPEG-looking file (WeChat checks names, types and sizes; the mock checks nothing).
pub(crate) const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\xff\xd9";
const TEN_MIB: usize = 10 * 1024 * 1024;

fn push_fixture(name: &str) -> Vec<u8> {
    fixture(&format!("push/{name}"))
}

pub(crate) fn with_token() -> Setup {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body("TOK", 7200)));
    s
}

pub(crate) fn token_request() -> ExpectedRequest {
    ExpectedRequest::get(TOKEN_PATH)
        .query("grant_type", "client_credential")
        .query("appid", APPID)
        .query("secret", SECRET)
}

pub(crate) fn get(path: &str) -> ExpectedRequest {
    ExpectedRequest::get(path).query("access_token", "TOK")
}

pub(crate) fn post(path: &str, body: serde_json::Value) -> ExpectedRequest {
    ExpectedRequest::post_json(path, body).query("access_token", "TOK")
}

/// A file answer as WeChat sends it: its type and an attachment filename.
pub(crate) fn file_answer(content_type: &str, filename: &str, bytes: &[u8]) -> HttpResponse {
    let mut r = HttpResponse::new(StatusCode::OK, bytes.to_vec());
    r.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("type"),
    );
    r.headers.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")).expect("name"),
    );
    r
}

/// Checks an upload's method, path and exact query (the token first), then reads its parts.
fn upload(r: &HttpRequest, path: &str, query: &[(&str, &str)]) -> Vec<Part> {
    assert_eq!((&r.method, r.path()), (&Method::POST, path));
    let mut want = vec![("access_token".to_owned(), "TOK".to_owned())];
    want.extend(
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    assert_eq!(r.query_pairs(), want, "{path}");
    let ct = r.content_type().unwrap_or_default();
    assert!(
        ct.starts_with("multipart/form-data; boundary="),
        "{path}: {ct}"
    );
    assert_eq!(r.response_limit, None, "an upload's answer is JSON");
    form_parts(r)
        .expect("well-formed multipart")
        .iter()
        .map(Part::of)
        .collect()
}

/// A part as (name, filename, content type, bytes), comparable in one assertion.
#[derive(Debug, PartialEq, Eq)]
struct Part(String, Option<String>, Option<String>, Vec<u8>);

impl Part {
    fn of(p: &FormPart) -> Self {
        Part(
            p.name.clone(),
            p.filename.clone(),
            p.content_type.clone(),
            p.bytes.to_vec(),
        )
    }
    fn file(name: &str, filename: &str, ct: &str, bytes: &[u8]) -> Self {
        Part(
            name.to_owned(),
            Some(filename.to_owned()),
            Some(ct.to_owned()),
            bytes.to_vec(),
        )
    }
}

fn nth(mock: &MockTransport, i: usize) -> HttpRequest {
    mock.requests()
        .get(i)
        .cloned()
        .unwrap_or_else(|| panic!("request #{i} was not sent"))
}

async fn get_material(s: &Setup, id: &str) -> wx_core::Result<Material> {
    s.client.send(&GetMaterial::new(id)).await
}

#[tokio::test]
async fn a_temporary_upload_sends_one_media_part_and_decodes_the_fixture() {
    let s = with_token();
    s.mock.push_for(
        "/cgi-bin/media/upload",
        HttpResponse::json(push_fixture("media_upload.success.wechatpy_fixture.json")),
    );
    let up = s
        .client
        .send(&UploadMedia::new(
            MediaType::Image,
            UploadFile::new("cover.jpg", JPEG),
        ))
        .await
        .expect("uploaded");
    assert_eq!(
        (up.media_type.as_str(), up.media_id.as_str(), up.created_at),
        ("image", "12345678", 123_456_789)
    );
    assert_eq!(s.mock.total(), 2);
    assert!(token_request().differences(&nth(&s.mock, 0)).is_empty());
    assert_eq!(
        upload(
            &nth(&s.mock, 1),
            "/cgi-bin/media/upload",
            &[("type", "image")]
        ),
        [Part::file("media", "cover.jpg", "image/jpeg", JPEG)]
    );
}

#[tokio::test]
async fn thumb_voice_and_article_image_uploads() {
    let s = with_token();
    s.mock
        .push_json(r#"{"type":"thumb","thumb_media_id":"THUMB-1","created_at":1700000000}"#)
        .push_json(r#"{"type":"voice","media_id":"VOICE-1","created_at":1700000001}"#)
        .push_json(r#"{"url":"http://mmbiz.qpic.cn/mmbiz/abc/0"}"#);
    let thumb = s
        .client
        .send(&UploadMedia::new(
            MediaType::Thumb,
            UploadFile::new("t.JPG", JPEG),
        ))
        .await
        .expect("thumb");
    assert_eq!(
        (thumb.media_type.as_str(), thumb.media_id.as_str()),
        ("thumb", "THUMB-1")
    );
    let voice = s
        .client
        .send(&UploadMedia::new(
            MediaType::Voice,
            UploadFile::new("hello.mp3", &b"ID3\x03"[..]).content_type("audio/mp3"),
        ))
        .await
        .expect("voice");
    assert_eq!(voice.media_id, "VOICE-1");
    let image = s
        .client
        .send(&UploadImage::new(UploadFile::new(
            "inline.png",
            &b"\x89PNG"[..],
        )))
        .await
        .expect("article image");
    assert_eq!(image.url, "http://mmbiz.qpic.cn/mmbiz/abc/0");

    assert_eq!(s.mock.total(), 4, "one token, three uploads");
    assert_eq!(
        upload(
            &nth(&s.mock, 1),
            "/cgi-bin/media/upload",
            &[("type", "thumb")]
        ),
        [Part::file("media", "t.JPG", "image/jpeg", JPEG)]
    );
    assert_eq!(
        upload(
            &nth(&s.mock, 2),
            "/cgi-bin/media/upload",
            &[("type", "voice")]
        ),
        [Part::file("media", "hello.mp3", "audio/mp3", b"ID3\x03")],
        "the content type set by the caller wins"
    );
    assert_eq!(
        upload(&nth(&s.mock, 3), "/cgi-bin/media/uploadimg", &[]),
        [Part::file("media", "inline.png", "image/png", b"\x89PNG")]
    );
}

#[tokio::test]
async fn upload_failures_are_typed_and_an_upload_is_repeated_only_when_it_did_nothing() {
    let s = with_token();
    let up = || UploadMedia::new(MediaType::Image, UploadFile::new("a.png", &b"\x89PNG"[..]));
    // WeChat's own answer to a form without the file.
    s.mock.push_json(push_fixture(
        "media_upload.error_41005_media_data_missing.wxjava_issue316.json",
    ));
    let e = s.client.send(&up()).await.expect_err("41005");
    assert_eq!(api_code(&e), Some(41005));
    assert_eq!(s.mock.count("/cgi-bin/media/upload"), 1, "not repeated");
    // Busy: WeChat did nothing, so the same bytes are sent again.
    s.mock
        .push_json(err_body(-1, "system error"))
        .push_json(r#"{"type":"image","media_id":"M2","created_at":2}"#);
    let ok = s.client.send(&up()).await.expect("after busy");
    assert_eq!(ok.media_id, "M2");
    let ups = s.mock.requests_to("/cgi-bin/media/upload");
    assert_eq!(ups.len(), 3);
    assert_eq!(ups[1].body, ups[2].body, "the retry resends the same form");
    assert_eq!(ups[1].content_type(), ups[2].content_type());
    // A timeout: the upload may have been stored; never repeated.
    s.mock.push_error(TransportErrorKind::Timeout);
    let e = s.client.send(&up()).await.expect_err("timeout");
    assert!(e.transport().is_some_and(|t| t.is_timeout()), "{e:?}");
    assert_eq!(s.mock.count("/cgi-bin/media/upload"), 4);
}

#[tokio::test]
async fn files_over_the_documented_rules_send_nothing() {
    let s = setup();
    let refused = [
        UploadMedia::new(MediaType::Thumb, UploadFile::new("t.png", JPEG)),
        UploadMedia::new(MediaType::Voice, UploadFile::new("v.wav", JPEG)),
        UploadMedia::new(
            MediaType::Image,
            UploadFile::new("big.jpg", vec![0u8; TEN_MIB + 1]),
        ),
        UploadMedia::new(MediaType::Image, UploadFile::new("empty.jpg", Vec::new())),
    ];
    for up in &refused {
        let e = s.client.send(up).await.expect_err("refused");
        assert!(
            matches!(&e, Error::InvalidInput(i) if i.argument == "file"),
            "{up:?}: {e:?}"
        );
    }
    let e = s
        .client
        .send(&AddMaterial::video(
            UploadFile::new("c.mp4", JPEG),
            "",
            "intro",
        ))
        .await
        .expect_err("no title");
    assert!(matches!(&e, Error::InvalidInput(i) if i.argument == "title"));
    let e = s
        .client
        .send(&UploadImage::new(UploadFile::new("a.gif", JPEG)))
        .await
        .expect_err("gif");
    assert!(matches!(e, Error::InvalidInput(_)));
    assert_eq!(s.mock.total(), 0, "not even a token request");
}

#[tokio::test]
async fn a_temporary_download_is_the_file_the_video_url_or_the_typed_error() {
    let s = with_token();
    s.mock
        .push(file_answer("image/jpeg", "MEDIA_ID.jpg", JPEG))
        .push(HttpResponse::json(
            r#"{"video_url":"http://vweixinf.tc.qq.com/102/20202/snsvideodownload?filekey=abc"}"#,
        ))
        .push(HttpResponse::json(err_body(40007, "invalid media_id")));
    let MediaContent::File(file) = s
        .client
        .send(&GetMedia::new("MEDIA_ID"))
        .await
        .expect("file")
    else {
        panic!("a file")
    };
    assert_eq!(file.bytes.as_ref(), JPEG);
    assert_eq!(file.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(file.filename.as_deref(), Some("MEDIA_ID.jpg"));
    let video = s
        .client
        .send(&GetMedia::new("VIDEO_ID"))
        .await
        .expect("video");
    assert_eq!(
        video,
        MediaContent::VideoUrl(
            "http://vweixinf.tc.qq.com/102/20202/snsvideodownload?filekey=abc".into()
        )
    );
    let e = s
        .client
        .send(&GetMedia::new("GONE"))
        .await
        .expect_err("40007");
    assert_eq!(api_code(&e), Some(40007));
    s.mock.assert_requests(&[
        token_request(),
        get("/cgi-bin/media/get").query("media_id", "MEDIA_ID"),
        get("/cgi-bin/media/get").query("media_id", "VIDEO_ID"),
        get("/cgi-bin/media/get").query("media_id", "GONE"),
    ]);
    for r in s.mock.requests_to("/cgi-bin/media/get") {
        assert_eq!(r.response_limit, Some(TEN_MIB), "WeChat's largest file");
    }
    // One byte over the documented size: the transport refuses it, nothing is decoded.
    s.mock.push(file_answer(
        "image/jpeg",
        "BIG.jpg",
        &vec![0u8; TEN_MIB + 1],
    ));
    let e = s
        .client
        .send(&GetMedia::new("BIG"))
        .await
        .expect_err("too large");
    assert!(
        e.transport().is_some_and(|t| t.is_body_too_large()),
        "{e:?}"
    );
    assert!(GetMedia::new("").endpoint().is_err());
}

#[tokio::test]
async fn a_rejected_token_on_a_download_is_replaced_once() {
    let s = setup();
    s.mock
        .push_for(TOKEN_PATH, HttpResponse::json(token_body("OLD", 7200)))
        .push_for(TOKEN_PATH, HttpResponse::json(token_body("TOK", 7200)));
    s.mock
        .push(HttpResponse::json(err_body(40001, "invalid credential")))
        .push(file_answer("audio/amr", "V.amr", b"#!AMR\n"));
    let got = s.client.send(&GetMedia::new("V")).await.expect("file");
    assert!(matches!(got, MediaContent::File(f) if f.bytes.as_ref() == b"#!AMR\n"));
    s.mock.assert_requests(&[
        token_request(),
        ExpectedRequest::get("/cgi-bin/media/get")
            .query("access_token", "OLD")
            .query("media_id", "V"),
        token_request(),
        get("/cgi-bin/media/get").query("media_id", "V"),
    ]);
}

#[tokio::test]
async fn permanent_materials_add_get_delete_and_count() {
    let s = with_token();
    s.mock
        .push_json(r#"{"media_id":"IMG-1","url":"http://mmbiz.qpic.cn/mmbiz_jpg/x/0?wx_fmt=jpeg"}"#)
        .push_json(r#"{"media_id":"VID-1","item":[]}"#);
    let image = s
        .client
        .send(&AddMaterial::image(UploadFile::new("cover.jpg", JPEG)))
        .await
        .expect("image");
    assert_eq!(image.media_id, "IMG-1");
    assert_eq!(
        image.url.as_deref(),
        Some("http://mmbiz.qpic.cn/mmbiz_jpg/x/0?wx_fmt=jpeg")
    );
    let video = s
        .client
        .send(&AddMaterial::video(
            UploadFile::new("clip.mp4", &b"\0\0\0\x18ftypmp42"[..]),
            "标题",
            "A \"quoted\" introduction",
        ))
        .await
        .expect("video");
    assert_eq!((video.media_id.as_str(), video.url), ("VID-1", None));
    assert_eq!(
        upload(
            &nth(&s.mock, 1),
            "/cgi-bin/material/add_material",
            &[("type", "image")]
        ),
        [Part::file("media", "cover.jpg", "image/jpeg", JPEG)]
    );
    let parts = upload(
        &nth(&s.mock, 2),
        "/cgi-bin/material/add_material",
        &[("type", "video")],
    );
    assert_eq!(
        parts[0],
        Part::file("media", "clip.mp4", "video/mp4", b"\0\0\0\x18ftypmp42")
    );
    assert_eq!(parts.len(), 2);
    let description: serde_json::Value =
        serde_json::from_slice(&parts[1].3).expect("description is JSON");
    assert_eq!(
        (parts[1].0.as_str(), &parts[1].1, description),
        (
            "description",
            &None,
            json!({"title": "标题", "introduction": "A \"quoted\" introduction"})
        )
    );

    // get_material: WeChat's three shapes, and its error.
    s.mock
        .push(file_answer("image/jpeg", "IMG-1.jpg", JPEG))
        .push_json(r#"{"title":"T","description":"D","down_url":"http://example.invalid/v.mp4"}"#)
        .push_json(
            r#"{"news_item":[{"title":"N1","thumb_media_id":"IMG-1","show_cover_pic":1,"author":"A","digest":"d","content":"<p>c</p>","url":"http://mp.weixin.qq.com/s/x","content_source_url":""}]}"#,
        )
        .push_json(err_body(40007, "invalid media_id"));
    assert!(
        matches!(get_material(&s, "IMG-1").await.expect("file"), Material::File(f) if f.bytes.as_ref() == JPEG)
    );
    let Material::Video(v) = get_material(&s, "VID-1").await.expect("video") else {
        panic!("a video")
    };
    assert_eq!(
        (
            v.title.as_str(),
            v.description.as_str(),
            v.down_url.as_str()
        ),
        ("T", "D", "http://example.invalid/v.mp4")
    );
    let Material::News(news) = get_material(&s, "NEWS-1").await.expect("news") else {
        panic!("news")
    };
    assert_eq!(news.news_item.len(), 1);
    assert_eq!(
        (
            news.news_item[0].title.as_str(),
            news.news_item[0].content.as_str()
        ),
        ("N1", "<p>c</p>")
    );
    assert_eq!(
        api_code(&get_material(&s, "NOPE").await.expect_err("40007")),
        Some(40007)
    );

    s.mock
        .push_json(r#"{"errcode":0,"errmsg":"ok"}"#)
        .push_json(err_body(40007, "invalid media_id"))
        .push_json(push_fixture(
            "material_get_materialcount.success.wechatpy_fixture.json",
        ));
    s.client
        .send(&DeleteMaterial::new("IMG-1"))
        .await
        .expect("deleted");
    let e = s
        .client
        .send(&DeleteMaterial::new("IMG-1"))
        .await
        .expect_err("gone");
    assert_eq!(api_code(&e), Some(40007));
    let c = s.client.send(&MaterialCount).await.expect("counts");
    assert_eq!(
        (c.voice_count, c.video_count, c.image_count, c.news_count),
        (1, 2, 3, 4)
    );

    let reqs = s.mock.requests();
    let expected = [
        post(
            "/cgi-bin/material/get_material",
            json!({"media_id": "IMG-1"}),
        ),
        post(
            "/cgi-bin/material/get_material",
            json!({"media_id": "VID-1"}),
        ),
        post(
            "/cgi-bin/material/get_material",
            json!({"media_id": "NEWS-1"}),
        ),
        post(
            "/cgi-bin/material/get_material",
            json!({"media_id": "NOPE"}),
        ),
        post(
            "/cgi-bin/material/del_material",
            json!({"media_id": "IMG-1"}),
        ),
        post(
            "/cgi-bin/material/del_material",
            json!({"media_id": "IMG-1"}),
        ),
        get("/cgi-bin/material/get_materialcount"),
    ];
    assert_eq!(reqs.len(), 3 + expected.len());
    for (want, got) in expected.iter().zip(&reqs[3..]) {
        assert!(
            want.differences(got).is_empty(),
            "{want:?}: {:?}",
            want.differences(got)
        );
    }
    for r in &reqs[3..7] {
        assert_eq!(r.response_limit, Some(TEN_MIB));
    }
    for r in &reqs[7..] {
        assert_eq!(
            r.response_limit, None,
            "JSON answers keep the transport's cap"
        );
    }
}

#[tokio::test]
async fn the_material_list_streams_by_offset_until_the_total() {
    let s = with_token();
    s.mock
        .push_json(
            r#"{"total_count":3,"item_count":2,"item":[
                {"media_id":"I1","name":"a.jpg","update_time":1700000001,"url":"http://mmbiz.qpic.cn/a"},
                {"media_id":"I2","name":"b.jpg","update_time":1700000002,"url":"http://mmbiz.qpic.cn/b"}]}"#,
        )
        .push_json(
            r#"{"total_count":3,"item_count":1,"item":[{"media_id":"I3","name":"c.png","update_time":1700000003,"url":"http://mmbiz.qpic.cn/c"}]}"#,
        )
        .push_json(
            r#"{"total_count":1,"item_count":1,"item":[{"media_id":"N1","content":{"news_item":[{"title":"Old news","thumb_media_id":"I1"}]},"update_time":1600000000}]}"#,
        );
    let images = walk(
        &s.client,
        BatchGetMaterial::new(MaterialType::Image).window(0, 2),
    )
    .await;
    let ids: Vec<(&str, &str, i64)> = images
        .iter()
        .map(|m| (m.media_id.as_str(), m.name.as_str(), m.update_time))
        .collect();
    assert_eq!(
        ids,
        [
            ("I1", "a.jpg", 1_700_000_001),
            ("I2", "b.jpg", 1_700_000_002),
            ("I3", "c.png", 1_700_000_003)
        ]
    );
    assert_eq!(images[2].url, "http://mmbiz.qpic.cn/c");
    let news = walk(&s.client, BatchGetMaterial::new(MaterialType::News)).await;
    assert_eq!(news.len(), 1);
    assert_eq!(
        news[0]
            .content
            .as_ref()
            .map(|c| c.news_item[0].title.as_str()),
        Some("Old news")
    );
    s.mock.assert_requests(&[
        token_request(),
        post(
            "/cgi-bin/material/batchget_material",
            json!({"type":"image","offset":0,"count":2}),
        ),
        post(
            "/cgi-bin/material/batchget_material",
            json!({"type":"image","offset":2,"count":2}),
        ),
        post(
            "/cgi-bin/material/batchget_material",
            json!({"type":"news","offset":0,"count":20}),
        ),
    ]);
}
