//! The typed request layer (`send`) and the one paging adapter, on the recording mock.

use futures::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use wx_core::Result;
use wx_official::paging::{Cursor, Page, Paged};
use wx_official::{Auth, Endpoint, Request};

use crate::common::{query, setup, token_body};

/// A `user/get`-shaped list: `next_openid` cursor and a `total`.
#[derive(Clone, Debug, Default)]
struct Followers {
    next_openid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FollowersPage {
    total: u64,
    #[serde(default)]
    data: Option<Data>,
    next_openid: String,
}

#[derive(Debug, Deserialize)]
struct Data {
    openid: Vec<String>,
}

impl Request for Followers {
    type Response = FollowersPage;
    fn endpoint(&self) -> Result<Endpoint> {
        let ep = Endpoint::get("/cgi-bin/user/get").with_base_token();
        Ok(match &self.next_openid {
            Some(c) => ep.query("next_openid", c.clone()),
            None => ep,
        })
    }
}

impl Paged for Followers {
    type Item = String;
    fn page_of(&self, answer: FollowersPage) -> Page<String> {
        let items = answer.data.map(|d| d.openid).unwrap_or_default();
        Page::new(
            items,
            Some(Cursor::Openid(answer.next_openid)),
            Some(answer.total),
        )
    }
    fn at(&self, cursor: &Cursor) -> Self {
        match cursor {
            Cursor::Openid(c) => Followers {
                next_openid: Some(c.clone()),
            },
            _ => self.clone(),
        }
    }
}

fn page(total: u64, ids: &[&str], next: &str) -> String {
    serde_json::json!({
        "total": total, "count": ids.len(),
        "data": {"openid": ids}, "next_openid": next
    })
    .to_string()
}

#[tokio::test]
async fn send_adds_the_token_the_endpoint_declares() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock.push_json(page(1, &["o1"], "o1"));
    let answer = s.client.send(&Followers::default()).await.expect("sent");
    assert_eq!(answer.total, 1);
    let reqs = s.mock.requests_to("/cgi-bin/user/get");
    assert_eq!(reqs.len(), 1);
    assert!(query(&reqs[0]).contains(&("access_token".into(), "TOK".into())));
    assert_eq!(
        Followers::default().endpoint().expect("ok").auth_kind(),
        Auth::BaseToken
    );
}

#[tokio::test]
async fn the_stream_sends_nothing_until_polled_and_stops_at_the_total() {
    let s = setup();
    let stream = s.client.items(Followers::default());
    assert_eq!(
        s.mock.total(),
        0,
        "a stream sends nothing before it is polled"
    );
    s.mock.push_json(token_body("TOK", 7200));
    s.mock.push_json(page(5, &["o1", "o2"], "o2"));
    s.mock.push_json(page(5, &["o3", "o4"], "o4"));
    // WeChat's last page still carries a non-empty next_openid.
    s.mock.push_json(page(5, &["o5"], "o5"));
    let all: Vec<String> = stream.try_collect().await.expect("walks");
    assert_eq!(all, ["o1", "o2", "o3", "o4", "o5"]);
    let reqs = s.mock.requests_to("/cgi-bin/user/get");
    assert_eq!(
        reqs.len(),
        3,
        "no fourth request after the total is reached"
    );
    assert!(!query(&reqs[0]).iter().any(|(k, _)| k == "next_openid"));
    assert!(query(&reqs[1]).contains(&("next_openid".into(), "o2".into())));
    assert!(query(&reqs[2]).contains(&("next_openid".into(), "o4".into())));
}

#[tokio::test]
async fn the_stream_stops_on_an_empty_page_an_empty_or_repeated_cursor() {
    // Empty cursor (no total reached).
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock.push_json(page(100, &["o1"], ""));
    let all: Vec<String> = s
        .client
        .items(Followers::default())
        .try_collect()
        .await
        .expect("ok");
    assert_eq!(all, ["o1"]);
    assert_eq!(s.mock.count("/cgi-bin/user/get"), 1);

    // Repeated cursor: a cycle is cut.
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock.push_json(page(100, &["o1"], "A"));
    s.mock.push_json(page(100, &["o2"], "B"));
    s.mock.push_json(page(100, &["o3"], "A"));
    let all: Vec<String> = s
        .client
        .items(Followers::default())
        .try_collect()
        .await
        .expect("ok");
    assert_eq!(all, ["o1", "o2", "o3"]);
    assert_eq!(s.mock.count("/cgi-bin/user/get"), 3);

    // Empty page: nothing yielded, stream ends.
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock
        .push_json(r#"{"total":0,"count":0,"next_openid":""}"#);
    let pages: Vec<_> = s.client.pages(Followers::default()).collect().await;
    assert!(pages.is_empty());
}

#[tokio::test]
async fn an_error_is_yielded_and_ends_the_stream() {
    let s = setup();
    s.mock.push_json(token_body("TOK", 7200));
    s.mock.push_json(page(10, &["o1"], "o1"));
    s.mock
        .push_json(r#"{"errcode":40013,"errmsg":"invalid appid"}"#);
    let got: Vec<_> = s.client.items(Followers::default()).collect().await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_ref().expect("first item"), "o1");
    assert!(matches!(got[1], Err(wx_core::Error::Api(_))));
}

fn assert_send_static<T: Send + 'static>(_: &T) {}

#[test]
fn streams_are_send_and_static() {
    let s = setup();
    let st = s.client.pages(Followers::default());
    assert_send_static(&st);
}
