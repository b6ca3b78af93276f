//! Drafts and publishing on the recording mock: every endpoint sends exactly the request
//! WeChat documents (method, path, query, JSON body) with the base token and decodes WeChat's
//! answers; bad drafts send nothing.

use serde_json::json;
use wx_core::Error;
use wx_official::draft::{
    AddDraft, Article, BatchGetDrafts, DeleteDraft, DraftCount, GetDraft, UpdateDraft,
};
use wx_official::freepublish::{
    BatchGetPublished, DeletePublished, GetPublishStatus, GetPublishedArticle, PublishState,
    SubmitPublish,
};

use crate::common::{Setup, api_code, err_body, walk};
use crate::media::{get, post, token_request, with_token};

async fn status(s: &Setup, id: &str) -> wx_core::Result<wx_official::freepublish::PublishStatus> {
    s.client.send(&GetPublishStatus::new(id)).await
}

#[tokio::test]
async fn drafts_add_get_update_delete_count_and_list() {
    let s = with_token();
    let article = Article::new("Hello", "<p>Hi</p>", "THUMB")
        .author("Ann")
        .digest("Summary")
        .content_source_url("https://example.com/more")
        .open_comments(true)
        .only_fans_can_comment(true)
        .cover_crops("0_0_1_0.5", "0_0_0.5_0.5");
    let draft_item = r#"{"title":"Hello","author":"Ann","digest":"Summary","content":"<p>Hi</p>","content_source_url":"https://example.com/more","thumb_media_id":"THUMB","need_open_comment":1,"only_fans_can_comment":1,"url":"http://mp.weixin.qq.com/s?__biz=x&tempkey=y","thumb_url":"http://mmbiz.qpic.cn/t"}"#;
    s.mock
        .push_json(r#"{"media_id":"DRAFT-1"}"#)
        .push_json(format!(r#"{{"news_item":[{draft_item}]}}"#))
        .push_json(r#"{"errcode":0,"errmsg":"ok"}"#)
        .push_json(r#"{"errcode":0,"errmsg":"ok"}"#)
        .push_json(err_body(40007, "invalid media_id"))
        .push_json(r#"{"total_count":2}"#)
        .push_json(format!(
            r#"{{"total_count":2,"item_count":1,"item":[{{"media_id":"DRAFT-2","content":{{"news_item":[{draft_item}]}},"update_time":1700000100}}]}}"#
        ))
        .push_json(
            r#"{"total_count":2,"item_count":1,"item":[{"media_id":"DRAFT-1","content":{"news_item":[]},"update_time":1700000000}]}"#,
        );
    let added = s
        .client
        .send(&AddDraft::new(vec![article.clone()]))
        .await
        .expect("added");
    assert_eq!(added.media_id, "DRAFT-1");
    let got = s
        .client
        .send(&GetDraft::new("DRAFT-1"))
        .await
        .expect("draft");
    let a = &got.news_item[0];
    assert_eq!(
        (a.title.as_str(), a.author.as_str(), a.thumb_url.as_str()),
        ("Hello", "Ann", "http://mmbiz.qpic.cn/t")
    );
    assert_eq!((a.need_open_comment, a.only_fans_can_comment), (1, 1));
    s.client
        .send(&UpdateDraft::new(
            "DRAFT-1",
            0,
            Article::new("Hello again", "<p>2</p>", "THUMB"),
        ))
        .await
        .expect("updated");
    s.client
        .send(&DeleteDraft::new("DRAFT-1"))
        .await
        .expect("deleted");
    let e = s
        .client
        .send(&DeleteDraft::new("DRAFT-1"))
        .await
        .expect_err("gone");
    assert_eq!(api_code(&e), Some(40007));
    assert_eq!(
        s.client.send(&DraftCount).await.expect("count").total_count,
        2
    );
    let all = walk(
        &s.client,
        BatchGetDrafts::new().window(0, 1).no_content(true),
    )
    .await;
    assert_eq!(
        all.iter().map(|d| d.media_id.as_str()).collect::<Vec<_>>(),
        ["DRAFT-2", "DRAFT-1"]
    );
    assert_eq!(all[0].update_time, 1_700_000_100);
    assert_eq!(all[0].content.news_item[0].title, "Hello");

    let full = json!({"title":"Hello","author":"Ann","digest":"Summary","content":"<p>Hi</p>",
        "content_source_url":"https://example.com/more","thumb_media_id":"THUMB",
        "need_open_comment":1,"only_fans_can_comment":1,
        "pic_crop_235_1":"0_0_1_0.5","pic_crop_1_1":"0_0_0.5_0.5"});
    s.mock.assert_requests(&[
        token_request(),
        post("/cgi-bin/draft/add", json!({"articles": [full]})),
        post("/cgi-bin/draft/get", json!({"media_id": "DRAFT-1"})),
        post(
            "/cgi-bin/draft/update",
            json!({"media_id":"DRAFT-1","index":0,"articles":{"title":"Hello again",
                "content":"<p>2</p>","thumb_media_id":"THUMB","need_open_comment":0,"only_fans_can_comment":0}}),
        ),
        post("/cgi-bin/draft/delete", json!({"media_id": "DRAFT-1"})),
        post("/cgi-bin/draft/delete", json!({"media_id": "DRAFT-1"})),
        get("/cgi-bin/draft/count"),
        post(
            "/cgi-bin/draft/batchget",
            json!({"offset":0,"count":1,"no_content":1}),
        ),
        post(
            "/cgi-bin/draft/batchget",
            json!({"offset":1,"count":1,"no_content":1}),
        ),
    ]);
    // Bad drafts are refused before anything is sent.
    let before = s.mock.total();
    for bad in [
        AddDraft::new(vec![]),
        AddDraft::new(vec![article.clone(); 9]),
        AddDraft::new(vec![Article::new("T", "<p>x</p>", "")]),
    ] {
        assert!(matches!(
            s.client.send(&bad).await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(matches!(
        s.client.send(&UpdateDraft::new("D", 8, article)).await,
        Err(Error::InvalidInput(i)) if i.argument == "index"
    ));
    assert_eq!(s.mock.total(), before);
}

#[tokio::test]
async fn publishing_submit_status_article_delete_and_list() {
    let s = with_token();
    s.mock
        .push_json(r#"{"errcode":0,"errmsg":"ok","publish_id":"100000001","msg_data_id":2247483661}"#)
        .push_json(r#"{"publish_id":"100000001","publish_status":1,"fail_idx":[]}"#)
        .push_json(
            r#"{"publish_id":"100000001","publish_status":0,"article_id":"ART-1","article_detail":{"count":2,"item":[{"idx":1,"article_url":"https://mp.weixin.qq.com/s/a1"},{"idx":2,"article_url":"https://mp.weixin.qq.com/s/a2"}]},"fail_idx":[]}"#,
        )
        .push_json(r#"{"publish_id":"100000002","publish_status":4,"fail_idx":[2]}"#)
        .push_json(
            r#"{"news_item":[{"title":"A1","url":"https://mp.weixin.qq.com/s/a1","is_deleted":false},{"title":"A2","url":"https://mp.weixin.qq.com/s/a2","is_deleted":true}]}"#,
        )
        .push_json(r#"{"errcode":0,"errmsg":"ok"}"#)
        .push_json(err_body(40007, "invalid media_id"))
        .push_json(
            r#"{"total_count":1,"item_count":1,"item":[{"article_id":"ART-1","content":{"news_item":[{"title":"A1"}]},"update_time":1700000200}]}"#,
        );
    let submitted = s
        .client
        .send(&SubmitPublish::new("DRAFT-1"))
        .await
        .expect("submitted");
    assert_eq!(
        (
            submitted.publish_id.as_str(),
            submitted.msg_data_id.as_deref()
        ),
        ("100000001", Some("2247483661"))
    );
    let first = status(&s, "100000001").await.expect("publishing");
    assert_eq!(
        (first.state(), first.article_id.as_deref()),
        (PublishState::Publishing, None)
    );
    let done = status(&s, "100000001").await.expect("published");
    assert_eq!(done.state(), PublishState::Published);
    assert_eq!(done.article_id.as_deref(), Some("ART-1"));
    assert_eq!(
        done.articles
            .iter()
            .map(|a| (a.idx, a.article_url.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, "https://mp.weixin.qq.com/s/a1"),
            (2, "https://mp.weixin.qq.com/s/a2")
        ]
    );
    let refused = status(&s, "100000002").await.expect("refused");
    assert_eq!(
        (refused.state(), refused.fail_idx.clone()),
        (PublishState::ReviewFailed, vec![2])
    );
    let article = s
        .client
        .send(&GetPublishedArticle::new("ART-1"))
        .await
        .expect("article");
    assert_eq!(
        article
            .news_item
            .iter()
            .map(|a| (a.title.as_str(), a.is_deleted))
            .collect::<Vec<_>>(),
        [("A1", false), ("A2", true)]
    );
    s.client
        .send(&DeletePublished::new("ART-1").only(2))
        .await
        .expect("deleted");
    let e = s
        .client
        .send(&DeletePublished::new("ART-9"))
        .await
        .expect_err("unknown");
    assert_eq!(api_code(&e), Some(40007));
    let list = walk(&s.client, BatchGetPublished::new()).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].article_id.as_str(), list[0].update_time),
        ("ART-1", 1_700_000_200)
    );
    s.mock.assert_requests(&[
        token_request(),
        post(
            "/cgi-bin/freepublish/submit",
            json!({"media_id": "DRAFT-1"}),
        ),
        post(
            "/cgi-bin/freepublish/get",
            json!({"publish_id": "100000001"}),
        ),
        post(
            "/cgi-bin/freepublish/get",
            json!({"publish_id": "100000001"}),
        ),
        post(
            "/cgi-bin/freepublish/get",
            json!({"publish_id": "100000002"}),
        ),
        post(
            "/cgi-bin/freepublish/getarticle",
            json!({"article_id": "ART-1"}),
        ),
        post(
            "/cgi-bin/freepublish/delete",
            json!({"article_id": "ART-1", "index": 2}),
        ),
        post(
            "/cgi-bin/freepublish/delete",
            json!({"article_id": "ART-9"}),
        ),
        post(
            "/cgi-bin/freepublish/batchget",
            json!({"offset":0,"count":20,"no_content":0}),
        ),
    ]);
}
