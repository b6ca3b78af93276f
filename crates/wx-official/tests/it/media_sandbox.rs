//! Media and materials against the in-process sandbox: uploads come back byte for byte,
//! temporary media expire 3 days later by the sandbox clock, materials answer in WeChat's three
//! shapes and list as streams, a full library refuses another upload, and each refusal is
//! WeChat's typed error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use wx_core::{Clock as _, MultipartForm};
use wx_official::Endpoint;
use wx_official::material::{
    AddMaterial, BatchGetMaterial, DeleteMaterial, GetMaterial, Material, MaterialCount,
    MaterialType,
};
use wx_official::media::{GetMedia, MediaContent, MediaType, UploadFile, UploadImage, UploadMedia};
use wx_sandbox::paths;

use crate::common::{APPID, SandboxSetup, api_code, sandbox_setup_with, walk};
use crate::media::JPEG;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn setup() -> SandboxSetup {
    sandbox_setup_with(|b| b)
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Every byte value, so nothing on the way may touch binary content.
fn binary(len: usize) -> Vec<u8> {
    (0..=255u8).cycle().take(len).collect()
}

async fn media(s: &SandboxSetup, id: &str) -> wx_core::Result<MediaContent> {
    s.client.send(&GetMedia::new(id)).await
}

async fn material(s: &SandboxSetup, id: &str) -> wx_core::Result<Material> {
    s.client.send(&GetMaterial::new(id)).await
}

/// A raw upload through the escape hatch, for what the typed requests refuse to send.
async fn raw_upload(
    s: &SandboxSetup,
    path: &'static str,
    kind: &str,
    form: MultipartForm,
) -> wx_core::Result<serde_json::Value> {
    let ep = Endpoint::post_form(path, &form)
        .expect("encodes")
        .query("type", kind)
        .with_base_token();
    s.client.call(ep).await
}

#[tokio::test]
async fn temporary_media_come_back_byte_for_byte_and_expire_after_3_days() {
    let s = setup();
    let photo = binary(3000);
    let uploaded_at = s.sandbox.clock().now();
    let image = s
        .client
        .send(&UploadMedia::new(
            MediaType::Image,
            UploadFile::new("photo.jpg", photo.clone()),
        ))
        .await
        .expect("image");
    assert_eq!(image.media_type, "image");
    assert_eq!(image.created_at, unix(uploaded_at));
    let thumb = s
        .client
        .send(&UploadMedia::new(
            MediaType::Thumb,
            UploadFile::new("t.jpg", JPEG),
        ))
        .await
        .expect("thumb");
    assert_eq!(thumb.media_type, "thumb");
    let voice = s
        .client
        .send(&UploadMedia::new(
            MediaType::Voice,
            UploadFile::new("hi.amr", &b"#!AMR\n\x01\x02"[..]),
        ))
        .await
        .expect("voice");
    let video = s
        .client
        .send(&UploadMedia::new(
            MediaType::Video,
            UploadFile::new("clip.mp4", &b"\0\0\0\x18ftypmp42"[..]),
        ))
        .await
        .expect("video");
    let inline = s
        .client
        .send(&UploadImage::new(UploadFile::new(
            "inline.png",
            &b"\x89PNG\r\n"[..],
        )))
        .await
        .expect("article image");
    assert!(
        inline.url.starts_with("http://mmbiz.qpic.cn/"),
        "{}",
        inline.url
    );

    let MediaContent::File(f) = media(&s, &image.media_id).await.expect("image") else {
        panic!("an image is a file")
    };
    assert_eq!(f.bytes.as_ref(), photo.as_slice(), "the same bytes");
    assert_eq!(f.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        f.filename.as_deref(),
        Some(format!("{}.jpg", image.media_id).as_str())
    );
    let MediaContent::File(f) = media(&s, &thumb.media_id).await.expect("thumb") else {
        panic!("a thumb is a file")
    };
    assert_eq!(f.bytes.as_ref(), JPEG);
    let MediaContent::File(f) = media(&s, &voice.media_id).await.expect("voice") else {
        panic!("a voice is a file")
    };
    assert_eq!(
        (f.bytes.as_ref(), f.content_type.as_deref()),
        (&b"#!AMR\n\x01\x02"[..], Some("audio/amr"))
    );
    let MediaContent::VideoUrl(url) = media(&s, &video.media_id).await.expect("video") else {
        panic!("a video is its URL")
    };
    assert!(url.ends_with(&video.media_id), "{url}");

    // Kept 3 days by the sandbox clock (the client's token is renewed on the way).
    s.sandbox.clock().advance(3 * DAY - Duration::from_secs(1));
    assert!(matches!(
        media(&s, &image.media_id).await,
        Ok(MediaContent::File(_))
    ));
    s.sandbox.clock().advance(Duration::from_secs(1));
    for id in [&image.media_id, &thumb.media_id, &video.media_id] {
        let e = media(&s, id).await.expect_err("expired");
        assert_eq!(api_code(&e), Some(40007), "{e:?}");
    }
    assert_eq!(
        api_code(&media(&s, "never-uploaded").await.expect_err("unknown")),
        Some(40007)
    );
}

#[tokio::test]
async fn the_sandbox_refuses_media_as_wechat_does() {
    let s = setup();
    let file = |name: &str, bytes: Vec<u8>| {
        MultipartForm::new().file("media", name, "application/octet-stream", bytes)
    };
    let cases = [
        ("bogus", file("a.jpg", vec![1]), 40004),
        // A temporary image may not be a bmp (a permanent one may).
        ("image", file("a.bmp", vec![1]), 40005),
        ("thumb", file("t.jpg", vec![1; 64 * 1024 + 1]), 40006),
        (
            "image",
            MultipartForm::new().text("media", "not a file"),
            41005,
        ),
        ("image", file("empty.jpg", Vec::new()), 40006),
    ];
    for (kind, form, code) in cases {
        let e = raw_upload(&s, "/cgi-bin/media/upload", kind, form)
            .await
            .expect_err("refused");
        assert_eq!(api_code(&e), Some(code), "{kind}: {e:?}");
    }
    let ok = raw_upload(
        &s,
        "/cgi-bin/material/add_material",
        "image",
        file("a.bmp", vec![1]),
    )
    .await
    .expect("a permanent image may be a bmp");
    assert!(ok["media_id"].is_string(), "{ok}");
}

#[tokio::test]
async fn materials_answer_in_three_shapes_count_delete_and_list() {
    let s = setup();
    let photo = binary(5000);
    let image = s
        .client
        .send(&AddMaterial::image(UploadFile::new(
            "cover.bmp",
            photo.clone(),
        )))
        .await
        .expect("image");
    let url = image.url.clone().expect("an image has a URL");
    assert!(url.starts_with("http://mmbiz.qpic.cn/"), "{url}");
    let voice = s
        .client
        .send(&AddMaterial::voice(UploadFile::new("v.wav", &b"RIFF"[..])))
        .await
        .expect("voice");
    assert_eq!(voice.url, None);
    let video = s
        .client
        .send(&AddMaterial::video(
            UploadFile::new("clip.mp4", &b"\0\0\0\x18ftypmp42"[..]),
            "春天",
            "An \"introduction\"",
        ))
        .await
        .expect("video");
    let news = s
        .sandbox
        .add_news_material(
            APPID,
            vec![
                json!({"title": "Old news", "thumb_media_id": image.media_id,
                "content": "<p>2021</p>", "url": "http://mp.weixin.qq.com/s/old"}),
            ],
        )
        .expect("app");

    let Material::File(f) = material(&s, &image.media_id).await.expect("file") else {
        panic!("an image is a file")
    };
    assert_eq!(f.bytes.as_ref(), photo.as_slice());
    assert_eq!(f.content_type.as_deref(), Some("image/bmp"));
    let Material::File(f) = material(&s, &voice.media_id).await.expect("file") else {
        panic!("a voice is a file")
    };
    assert_eq!(f.bytes.as_ref(), b"RIFF");
    let Material::Video(v) = material(&s, &video.media_id).await.expect("video") else {
        panic!("a video is its details")
    };
    assert_eq!(
        (v.title.as_str(), v.description.as_str()),
        ("春天", "An \"introduction\"")
    );
    assert!(v.down_url.ends_with(&video.media_id), "{}", v.down_url);
    let Material::News(n) = material(&s, &news).await.expect("news") else {
        panic!("news is its articles")
    };
    assert_eq!(
        (
            n.news_item[0].title.as_str(),
            n.news_item[0].content.as_str()
        ),
        ("Old news", "<p>2021</p>")
    );

    let c = s.client.send(&MaterialCount).await.expect("count");
    assert_eq!(
        (c.image_count, c.voice_count, c.video_count, c.news_count),
        (1, 1, 1, 1)
    );

    // 25 images: the stream reads two pages of 20 and stops at the total.
    for n in 1..25u8 {
        s.client
            .send(&AddMaterial::image(UploadFile::new(
                format!("img{n}.png"),
                vec![n; 10],
            )))
            .await
            .expect("image");
    }
    s.sandbox.reset_counts();
    let images = walk(&s.client, BatchGetMaterial::new(MaterialType::Image)).await;
    assert_eq!(images.len(), 25);
    assert_eq!(s.sandbox.count(paths::MATERIAL_BATCHGET), 2);
    assert_eq!(
        (
            images[0].media_id.as_str(),
            images[0].name.as_str(),
            images[0].url.as_str()
        ),
        (image.media_id.as_str(), "cover.bmp", url.as_str())
    );
    assert_eq!(images[24].name, "img24.png");
    let listed = walk(&s.client, BatchGetMaterial::new(MaterialType::News)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].media_id, news);
    assert_eq!(
        listed[0]
            .content
            .as_ref()
            .map(|c| c.news_item[0].title.as_str()),
        Some("Old news")
    );
    let videos = walk(&s.client, BatchGetMaterial::new(MaterialType::Video)).await;
    assert_eq!(videos.len(), 1);

    // Delete: gone from the count, the list and get_material.
    for id in [&image.media_id, &news] {
        s.client
            .send(&DeleteMaterial::new(id.as_str()))
            .await
            .expect("deleted");
        let e = material(&s, id).await.expect_err("gone");
        assert_eq!(api_code(&e), Some(40007));
        let e = s
            .client
            .send(&DeleteMaterial::new(id.as_str()))
            .await
            .expect_err("twice");
        assert_eq!(api_code(&e), Some(40007));
    }
    let c = s.client.send(&MaterialCount).await.expect("count");
    assert_eq!((c.image_count, c.news_count), (24, 0));
    let images = walk(&s.client, BatchGetMaterial::new(MaterialType::Image)).await;
    assert!(images.iter().all(|m| m.media_id != image.media_id));

    // A video without its description field: WeChat's invalid args.
    let e = raw_upload(
        &s,
        "/cgi-bin/material/add_material",
        "video",
        MultipartForm::new().file("media", "c.mp4", "video/mp4", vec![1]),
    )
    .await
    .expect_err("no description");
    assert_eq!(api_code(&e), Some(40097));
}

#[tokio::test]
async fn a_full_material_library_refuses_another_upload() {
    let s = setup();
    s.sandbox.limit_materials(APPID, 3, 2).expect("app");
    let thumb = || AddMaterial::thumb(UploadFile::new("t.jpg", JPEG));
    let image = || AddMaterial::image(UploadFile::new("i.png", &b"\x89PNG"[..]));
    let first = s.client.send(&thumb()).await.expect("1 of 2");
    s.client.send(&thumb()).await.expect("2 of 2");
    let e = s.client.send(&thumb()).await.expect_err("full");
    assert_eq!(api_code(&e), Some(45001), "{e:?}");
    // Other types count apart.
    for _ in 0..3 {
        s.client.send(&image()).await.expect("images have room");
    }
    let e = s.client.send(&image()).await.expect_err("full");
    assert_eq!(api_code(&e), Some(45001), "{e:?}");
    // Deleting makes room again.
    s.client
        .send(&DeleteMaterial::new(first.media_id))
        .await
        .expect("deleted");
    s.client.send(&thumb()).await.expect("room again");
    let c = s.client.send(&MaterialCount).await.expect("count");
    assert_eq!(c.image_count, 3);
}
