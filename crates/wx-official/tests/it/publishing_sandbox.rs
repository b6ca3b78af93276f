//! Drafts and publishing against the in-process sandbox: a draft's life (add, get, update,
//! delete, count, the list as a stream), a submitted draft published `PUBLISH_DELAY` later by
//! the sandbox clock with its `PUBLISHJOBFINISH` push, the published article read, listed and
//! deleted, and WeChat's typed error for each refusal.

use wx_official::draft::{
    AddDraft, Article, BatchGetDrafts, DeleteDraft, DraftCount, GetDraft, UpdateDraft,
};
use wx_official::freepublish::{
    BatchGetPublished, DeletePublished, GetPublishStatus, GetPublishedArticle, PublishState,
    SubmitPublish,
};
use wx_official::material::AddMaterial;
use wx_official::media::{MediaType, UploadFile, UploadMedia};
use wx_sandbox::{PUBLISH_DELAY, PUBLISHER_OPENID, PushOutcome, paths};

use crate::common::{APPID, SandboxSetup, api_code, sandbox_setup_with, walk};
use crate::media::JPEG;

/// A sandbox client and a cover (a permanent image material).
async fn setup() -> (SandboxSetup, String) {
    let s = sandbox_setup_with(|b| b);
    let cover = s
        .client
        .send(&AddMaterial::image(UploadFile::new("cover.jpg", JPEG)))
        .await
        .expect("cover");
    (s, cover.media_id)
}

fn article(title: &str, cover: &str) -> Article {
    Article::new(title, format!("<p>{title}</p>"), cover)
        .author("Ann")
        .open_comments(true)
}

#[tokio::test]
async fn a_draft_is_added_read_updated_listed_and_deleted() {
    let (s, cover) = setup().await;
    let draft = s
        .client
        .send(&AddDraft::new(vec![
            article("One", &cover).digest("first"),
            article("Two", &cover),
        ]))
        .await
        .expect("added");
    let got = s
        .client
        .send(&GetDraft::new(draft.media_id.as_str()))
        .await
        .expect("draft");
    let titles: Vec<&str> = got.news_item.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(titles, ["One", "Two"]);
    let one = &got.news_item[0];
    assert_eq!(
        (
            one.content.as_str(),
            one.author.as_str(),
            one.digest.as_str(),
            one.thumb_media_id.as_str(),
            one.need_open_comment
        ),
        ("<p>One</p>", "Ann", "first", cover.as_str(), 1)
    );
    assert!(
        one.url.starts_with("https://mp.weixin.qq.com/s/preview-"),
        "{}",
        one.url
    );

    s.client
        .send(&UpdateDraft::new(
            draft.media_id.as_str(),
            1,
            article("Two, revised", &cover),
        ))
        .await
        .expect("updated");
    let got = s
        .client
        .send(&GetDraft::new(draft.media_id.as_str()))
        .await
        .expect("draft");
    assert_eq!(got.news_item[1].title, "Two, revised");
    assert_eq!(got.news_item[0].title, "One", "the other article is kept");
    // Index 2 of a two-article draft, and an unknown cover: refused, nothing changed.
    let e = s
        .client
        .send(&UpdateDraft::new(
            draft.media_id.as_str(),
            2,
            article("Three", &cover),
        ))
        .await
        .expect_err("no article 2");
    assert_eq!(api_code(&e), Some(40097));
    let e = s
        .client
        .send(&AddDraft::new(vec![article("X", "not-a-material")]))
        .await
        .expect_err("unknown cover");
    assert_eq!(api_code(&e), Some(40007));
    // A temporary image is not a cover: covers are permanent materials.
    let temporary = s
        .client
        .send(&UploadMedia::new(
            MediaType::Image,
            UploadFile::new("t.jpg", JPEG),
        ))
        .await
        .expect("temporary");
    let e = s
        .client
        .send(&AddDraft::new(vec![article("X", &temporary.media_id)]))
        .await
        .expect_err("temporary cover");
    assert_eq!(api_code(&e), Some(40007));

    // 22 drafts: the list streams in two pages, newest first, without content when asked.
    for n in 0..21 {
        s.client
            .send(&AddDraft::new(vec![article(&format!("Draft {n}"), &cover)]))
            .await
            .expect("added");
    }
    assert_eq!(
        s.client.send(&DraftCount).await.expect("count").total_count,
        22
    );
    s.sandbox.reset_counts();
    let all = walk(&s.client, BatchGetDrafts::new().no_content(true)).await;
    assert_eq!(all.len(), 22);
    assert_eq!(s.sandbox.count(paths::DRAFT_BATCHGET), 2);
    assert_eq!(all[0].content.news_item[0].title, "Draft 20");
    assert_eq!(all[21].media_id, draft.media_id);
    assert!(
        all.iter()
            .flat_map(|d| &d.content.news_item)
            .all(|a| a.content.is_empty()),
        "no_content"
    );
    let with_content = walk(&s.client, BatchGetDrafts::new().window(21, 5)).await;
    assert_eq!(with_content.len(), 1);
    assert_eq!(with_content[0].content.news_item[0].content, "<p>One</p>");

    s.client
        .send(&DeleteDraft::new(draft.media_id.as_str()))
        .await
        .expect("deleted");
    for e in [
        s.client
            .send(&GetDraft::new(draft.media_id.as_str()))
            .await
            .expect_err("gone"),
        s.client
            .send(&DeleteDraft::new(draft.media_id.as_str()))
            .await
            .expect_err("twice"),
    ] {
        assert_eq!(api_code(&e), Some(40007));
    }
    assert_eq!(
        s.client.send(&DraftCount).await.expect("count").total_count,
        21
    );
}

#[tokio::test]
async fn a_submitted_draft_is_published_after_the_delay_pushed_read_listed_and_deleted() {
    let (s, cover) = setup().await;
    let draft = s
        .client
        .send(&AddDraft::new(vec![
            article("Hello", &cover),
            article("World", &cover),
        ]))
        .await
        .expect("draft");
    let job = s
        .client
        .send(&SubmitPublish::new(draft.media_id.as_str()))
        .await
        .expect("submitted");
    assert!(job.msg_data_id.is_some());
    let status = s
        .client
        .send(&GetPublishStatus::new(job.publish_id.as_str()))
        .await
        .expect("status");
    assert_eq!(
        (
            status.state(),
            status.article_id.as_deref(),
            status.articles.len()
        ),
        (PublishState::Publishing, None, 0)
    );
    assert!(s.sandbox.settle_pushes().await.is_empty(), "nothing yet");

    s.sandbox.clock().advance(PUBLISH_DELAY);
    let status = s
        .client
        .send(&GetPublishStatus::new(job.publish_id.as_str()))
        .await
        .expect("status");
    assert_eq!(status.state(), PublishState::Published);
    let article_id = status.article_id.clone().expect("an article id");
    let urls: Vec<(u32, &str)> = status
        .articles
        .iter()
        .map(|a| (a.idx, a.article_url.as_str()))
        .collect();
    assert_eq!(urls.len(), 2);
    assert_eq!((urls[0].0, urls[1].0), (1, 2));
    assert!(urls[0].1.starts_with("https://mp.weixin.qq.com/s/"));

    // WeChat pushed PUBLISHJOBFINISH (this app has no server URL, so it went nowhere).
    let pushes = s.sandbox.settle_pushes().await;
    assert_eq!(pushes.len(), 1);
    let push = &pushes[0];
    assert_eq!(
        (push.appid.as_str(), push.openid.as_str()),
        (APPID, PUBLISHER_OPENID)
    );
    assert_eq!(push.fields.get("Event"), Some("PUBLISHJOBFINISH"));
    let info = push.fields.get_node("PublishEventInfo").expect("info");
    assert_eq!(info.get("publish_id"), Some(job.publish_id.as_str()));
    assert_eq!(info.get("publish_status"), Some("0"));
    assert_eq!(info.get("article_id"), Some(article_id.as_str()));
    assert!(matches!(push.outcome, PushOutcome::NoServer));

    // The draft became the published article; its URLs are those of the status.
    let e = s
        .client
        .send(&GetDraft::new(draft.media_id.as_str()))
        .await
        .expect_err("published drafts leave the draft box");
    assert_eq!(api_code(&e), Some(40007));
    let published = s
        .client
        .send(&GetPublishedArticle::new(article_id.as_str()))
        .await
        .expect("article");
    let got: Vec<(&str, &str, bool)> = published
        .news_item
        .iter()
        .map(|a| (a.title.as_str(), a.url.as_str(), a.is_deleted))
        .collect();
    assert_eq!(
        got,
        [("Hello", urls[0].1, false), ("World", urls[1].1, false)]
    );
    let list = walk(&s.client, BatchGetPublished::new()).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].article_id, article_id);
    assert_eq!(list[0].content.news_item.len(), 2);

    // Delete the second article only, then all of it.
    s.client
        .send(&DeletePublished::new(article_id.as_str()).only(2))
        .await
        .expect("deleted");
    let deleted = |a: &wx_official::draft::NewsContent| -> Vec<bool> {
        a.news_item.iter().map(|n| n.is_deleted).collect()
    };
    let now = s
        .client
        .send(&GetPublishedArticle::new(article_id.as_str()))
        .await
        .expect("article");
    assert_eq!(deleted(&now), [false, true]);
    s.client
        .send(&DeletePublished::new(article_id.as_str()))
        .await
        .expect("deleted");
    let now = s
        .client
        .send(&GetPublishedArticle::new(article_id.as_str()))
        .await
        .expect("article");
    assert_eq!(deleted(&now), [true, true]);

    // WeChat's typed errors: unknown publish job, article, or draft.
    let e = s
        .client
        .send(&GetPublishStatus::new("2247599999"))
        .await
        .expect_err("no such job");
    assert_eq!(api_code(&e), Some(48006));
    for e in [
        s.client
            .send(&GetPublishedArticle::new("no-such-article"))
            .await
            .expect_err("no such article"),
        s.client
            .send(&DeletePublished::new("no-such-article"))
            .await
            .expect_err("no such article"),
    ] {
        assert_eq!(api_code(&e), Some(53600));
    }
    let e = s
        .client
        .send(&SubmitPublish::new(draft.media_id.as_str()))
        .await
        .expect_err("the draft was used");
    assert_eq!(api_code(&e), Some(40007));
}
