//! Permanent materials (`cgi-bin/material/*`): images, voices, videos and thumbs kept until
//! deleted (news materials are read-only since 2022-02-28; write drafts instead).

use serde::{Deserialize, Serialize};
use wx_core::{Ack, HttpResponse, MultipartForm, Result, check_arg};

use crate::batch::{BatchPage, Window};
use crate::draft::{NewsContent, media_id_post};
use crate::endpoint::Endpoint;
use crate::media::{
    FileOrJson, MAX_DOWNLOAD, MediaFile, MediaType, Rules, UploadFile, file_or_json,
};
use crate::paging::{Cursor, Page, Paged};
use crate::request::{FromResponse, Request};

/// Longest video title and introduction accepted (WeChat shows far less).
const MAX_VIDEO_TEXT: usize = 1024;

/// `POST /cgi-bin/material/add_material?type=...`: uploads a permanent material. Documented
/// rules, checked before sending: image ≤ 10 MiB (bmp, png, jpeg, jpg, gif), voice ≤ 2 MiB
/// (mp3, wma, wav, amr), video ≤ 10 MiB (mp4, with a title and an introduction), thumb
/// ≤ 64 KiB (jpg).
#[derive(Clone, Debug)]
#[must_use]
pub struct AddMaterial {
    kind: MediaType,
    file: UploadFile,
    video: Option<(String, String)>,
}

impl AddMaterial {
    /// An image material.
    pub fn image(file: UploadFile) -> Self {
        AddMaterial {
            kind: MediaType::Image,
            file,
            video: None,
        }
    }

    /// A voice material.
    pub fn voice(file: UploadFile) -> Self {
        AddMaterial {
            kind: MediaType::Voice,
            file,
            video: None,
        }
    }

    /// A thumb material.
    pub fn thumb(file: UploadFile) -> Self {
        AddMaterial {
            kind: MediaType::Thumb,
            file,
            video: None,
        }
    }

    /// A video material with its title and introduction (WeChat requires both).
    pub fn video(
        file: UploadFile,
        title: impl Into<String>,
        introduction: impl Into<String>,
    ) -> Self {
        AddMaterial {
            kind: MediaType::Video,
            file,
            video: Some((title.into(), introduction.into())),
        }
    }
}

/// The answer of [`AddMaterial`].
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct AddedMaterial {
    /// The material's media id.
    pub media_id: String,
    /// The image's URL (images only).
    #[serde(default)]
    pub url: Option<String>,
}

impl Request for AddMaterial {
    type Response = AddedMaterial;
    fn endpoint(&self) -> Result<Endpoint> {
        let mut form: MultipartForm = self.file.form(Rules::permanent(self.kind))?;
        if let Some((title, introduction)) = &self.video {
            check_arg("title", title, MAX_VIDEO_TEXT)?;
            check_arg("introduction", introduction, MAX_VIDEO_TEXT)?;
            #[derive(Serialize)]
            struct Description<'a> {
                title: &'a str,
                introduction: &'a str,
            }
            let description = serde_json::to_string(&Description {
                title,
                introduction,
            })
            .map_err(|_| wx_core::InvalidInput::new("description", "could not be serialised"))?;
            form = form.text("description", description);
        }
        Ok(
            Endpoint::post_form("/cgi-bin/material/add_material", &form)?
                .query("type", self.kind.as_str())
                .with_base_token(),
        )
    }
}

/// `POST /cgi-bin/material/get_material`: a permanent material. The answer may be up to
/// 10 MiB (an image).
#[derive(Clone, Debug)]
#[must_use]
pub struct GetMaterial {
    media_id: String,
}

impl GetMaterial {
    /// The material `media_id`.
    pub fn new(media_id: impl Into<String>) -> Self {
        GetMaterial {
            media_id: media_id.into(),
        }
    }
}

/// The answer of [`GetMaterial`]: WeChat's three shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Material {
    /// An image, voice or thumb: the file itself.
    File(MediaFile),
    /// A video: its title, description and download URL.
    Video(VideoMaterial),
    /// A (read-only) news material: its articles.
    News(NewsContent),
}

/// A video material's details.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
#[non_exhaustive]
pub struct VideoMaterial {
    /// The title.
    pub title: String,
    /// The introduction.
    pub description: String,
    /// Where to download the video.
    pub down_url: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MaterialJson {
    News {
        news_item: Vec<crate::draft::NewsArticle>,
    },
    Video(VideoMaterial),
}

impl FromResponse for Material {
    fn from_response(endpoint: &'static str, response: &HttpResponse) -> Result<Self> {
        Ok(match file_or_json::<MaterialJson>(endpoint, response)? {
            FileOrJson::File(f) => Material::File(f),
            FileOrJson::Json(MaterialJson::News { news_item }) => {
                Material::News(NewsContent { news_item })
            }
            FileOrJson::Json(MaterialJson::Video(v)) => Material::Video(v),
        })
    }
}

impl Request for GetMaterial {
    type Response = Material;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(
            media_id_post("/cgi-bin/material/get_material", &self.media_id)?
                .idempotent(true)
                .response_limit(MAX_DOWNLOAD),
        )
    }
}

/// `POST /cgi-bin/material/del_material`: deletes a permanent material.
#[derive(Clone, Debug)]
#[must_use]
pub struct DeleteMaterial {
    media_id: String,
}

impl DeleteMaterial {
    /// Deletes the material `media_id`.
    pub fn new(media_id: impl Into<String>) -> Self {
        DeleteMaterial {
            media_id: media_id.into(),
        }
    }
}

impl Request for DeleteMaterial {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        media_id_post("/cgi-bin/material/del_material", &self.media_id)
    }
}

/// `GET /cgi-bin/material/get_materialcount`: how many materials of each type are stored.
#[derive(Clone, Copy, Debug, Default)]
pub struct MaterialCount;

/// The answer of [`MaterialCount`].
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
#[non_exhaustive]
pub struct MaterialCounts {
    /// Voices.
    pub voice_count: u64,
    /// Videos.
    pub video_count: u64,
    /// Images.
    pub image_count: u64,
    /// News.
    pub news_count: u64,
}

impl Request for MaterialCount {
    type Response = MaterialCounts;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/material/get_materialcount").with_base_token())
    }
}

/// The kinds of [`BatchGetMaterial`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MaterialType {
    /// Images.
    Image,
    /// Voices.
    Voice,
    /// Videos.
    Video,
    /// News (read-only).
    News,
}

/// One material of a [`BatchGetMaterial`] page.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct MaterialItem {
    /// The media id.
    pub media_id: String,
    /// The filename (images, voices, videos).
    pub name: String,
    /// The URL (images).
    pub url: String,
    /// Last change (Unix seconds).
    pub update_time: i64,
    /// The articles (news).
    pub content: Option<NewsContent>,
}

/// `POST /cgi-bin/material/batchget_material`: a page (at most 20) of one type of material; as
/// a stream with [`OfficialAccount::items`](crate::OfficialAccount::items).
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct BatchGetMaterial {
    kind: MaterialType,
    window: Window,
}

impl BatchGetMaterial {
    /// The first page of 20 materials of `kind`.
    pub fn new(kind: MaterialType) -> Self {
        BatchGetMaterial {
            kind,
            window: Window::first(),
        }
    }

    /// Starts at `offset` and asks for `count` items (1 to 20).
    pub fn window(mut self, offset: u64, count: u32) -> Self {
        self.window = Window { offset, count };
        self
    }
}

impl Request for BatchGetMaterial {
    type Response = BatchPage<MaterialItem>;
    fn endpoint(&self) -> Result<Endpoint> {
        self.window.check()?;
        #[derive(Serialize)]
        struct Body {
            #[serde(rename = "type")]
            kind: MaterialType,
            offset: u64,
            count: u32,
        }
        let body = Body {
            kind: self.kind,
            offset: self.window.offset,
            count: self.window.count,
        };
        Ok(
            Endpoint::post_json("/cgi-bin/material/batchget_material", &body)?
                .with_base_token()
                .idempotent(true),
        )
    }
}

impl Paged for BatchGetMaterial {
    type Item = MaterialItem;
    fn page_of(&self, answer: Self::Response) -> Page<MaterialItem> {
        self.window.page(answer)
    }
    fn at(&self, cursor: &Cursor) -> Self {
        BatchGetMaterial {
            window: self.window.at(cursor),
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wx_core::Error;

    #[test]
    fn video_needs_title_and_introduction_in_the_description_field() {
        let file = || UploadFile::new("clip.mp4", &b"\0\0\0\x18ftypmp42"[..]);
        let ep = AddMaterial::video(file(), "Title", "Intro")
            .endpoint()
            .expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/material/add_material");
        let body = String::from_utf8_lossy(ep.body_bytes().expect("body")).into_owned();
        assert!(
            body.contains("name=\"media\"; filename=\"clip.mp4\"\r\nContent-Type: video/mp4"),
            "{body}"
        );
        assert!(
            body.contains("Content-Disposition: form-data; name=\"description\"\r\n\r\n{\"title\":\"Title\",\"introduction\":\"Intro\"}\r\n"),
            "{body}"
        );
        for (t, i) in [("", "I"), ("T", "")] {
            let e = AddMaterial::video(file(), t, i)
                .endpoint()
                .expect_err("missing");
            assert!(matches!(e, Error::InvalidInput(_)));
        }
        // Permanent images accept bmp (temporary ones do not).
        let _ = AddMaterial::image(UploadFile::new("a.bmp", &b"BM"[..]))
            .endpoint()
            .expect("bmp");
        let e = AddMaterial::thumb(UploadFile::new("a.jpg", vec![0; 64 * 1024 + 1]))
            .endpoint()
            .expect_err("big");
        assert!(matches!(e, Error::InvalidInput(ref i) if i.argument == "file"));
    }

    #[test]
    fn get_material_answers_three_shapes() {
        let ep = GetMaterial::new("M").endpoint().expect("valid");
        assert_eq!(ep.response_limit_bytes(), Some(10 * 1024 * 1024));
        let video =
            HttpResponse::json(r#"{"title":"T","description":"D","down_url":"http://x/v"}"#);
        assert!(
            matches!(Material::from_response("x", &video).expect("video"), Material::Video(v) if v.down_url == "http://x/v")
        );
        let news = HttpResponse::json(
            r#"{"news_item":[{"title":"N","thumb_media_id":"T","url":"http://x/a"}]}"#,
        );
        assert!(
            matches!(Material::from_response("x", &news).expect("news"), Material::News(n) if n.news_item[0].title == "N")
        );
        let mut file = HttpResponse::new(http::StatusCode::OK, &b"\xff\xd8"[..]);
        file.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("image/jpeg"),
        );
        assert!(matches!(
            Material::from_response("x", &file).expect("file"),
            Material::File(_)
        ));
        let err = HttpResponse::json(r#"{"errcode":40007,"errmsg":"invalid media_id"}"#);
        assert!(
            Material::from_response("x", &err)
                .expect_err("api")
                .api()
                .is_some()
        );
    }

    #[test]
    fn counts_and_batches() {
        let body = include_str!(
            "../../../tests/fixtures/push/material_get_materialcount.success.wechatpy_fixture.json"
        );
        let c: MaterialCounts = wx_core::decode_response("x", body.as_bytes()).expect("fixture");
        assert_eq!(
            (c.voice_count, c.video_count, c.image_count, c.news_count),
            (1, 2, 3, 4)
        );
        let ep = BatchGetMaterial::new(MaterialType::Image)
            .window(40, 20)
            .endpoint()
            .expect("valid");
        let json: serde_json::Value =
            serde_json::from_slice(ep.body_bytes().expect("body")).expect("json");
        assert_eq!(json, json!({"type":"image","offset":40,"count":20}));
        assert!(
            BatchGetMaterial::new(MaterialType::News)
                .window(0, 0)
                .endpoint()
                .is_err()
        );
        assert_eq!(
            DeleteMaterial::new("M").endpoint().expect("valid").path(),
            "/cgi-bin/material/del_material"
        );
        assert_eq!(
            MaterialCount.endpoint().expect("valid").path(),
            "/cgi-bin/material/get_materialcount"
        );
    }
}
