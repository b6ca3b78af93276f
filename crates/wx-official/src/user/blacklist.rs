//! The blacklist (`cgi-bin/tags/members/*blacklist`): who is blocked, as a stream of openids
//! (10,000 a page), and blocking / unblocking 1 to [`MAX_BLACKLIST`] users a call (a longer
//! list is refused before sending, never split).

use serde::Serialize;
use wx_core::{Ack, OpenId, Result};

use super::{OpenIdPage, check_openid, check_openid_list, openid_cursor};
use crate::endpoint::Endpoint;
use crate::paging::{Cursor, Page, Paged};
use crate::request::Request;

/// Openids per `batchblacklist` / `batchunblacklist` call at most.
pub const MAX_BLACKLIST: usize = 20;

/// `POST /cgi-bin/tags/members/getblacklist`: the blocked users, 10,000 a page, from
/// `begin_openid`. Paged: `client.items(blacklist::List::new())` streams every blocked openid.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct List {
    begin_openid: Option<OpenId>,
}

impl List {
    /// The first page.
    pub fn new() -> Self {
        List::default()
    }

    /// The page after `openid` (a `next_openid` WeChat returned).
    pub fn after(openid: impl Into<OpenId>) -> Self {
        List {
            begin_openid: Some(openid.into()),
        }
    }
}

#[derive(Serialize)]
struct ListBody<'a> {
    begin_openid: &'a str,
}

impl Request for List {
    type Response = OpenIdPage;
    fn endpoint(&self) -> Result<Endpoint> {
        if let Some(o) = &self.begin_openid {
            check_openid("begin_openid", o)?;
        }
        let body = ListBody {
            begin_openid: self.begin_openid.as_ref().map_or("", OpenId::as_str),
        };
        Ok(
            Endpoint::post_json("/cgi-bin/tags/members/getblacklist", &body)?
                .with_base_token()
                .idempotent(true),
        )
    }
}

impl Paged for List {
    type Item = OpenId;
    fn page_of(&self, answer: OpenIdPage) -> Page<OpenId> {
        answer.into_page()
    }
    fn at(&self, cursor: &Cursor) -> Self {
        List {
            begin_openid: openid_cursor(cursor),
        }
    }
}

#[derive(Serialize)]
struct OpenIdListBody<'a> {
    openid_list: Vec<&'a str>,
}

fn blacklist_endpoint(path: &'static str, openids: &[OpenId]) -> Result<Endpoint> {
    check_openid_list(
        openids,
        MAX_BLACKLIST,
        "more than 20 openids: WeChat takes at most 20 a call; send the rest in further calls",
    )?;
    let body = OpenIdListBody {
        openid_list: openids.iter().map(OpenId::as_str).collect(),
    };
    Ok(Endpoint::post_json(path, &body)?
        .with_base_token()
        .idempotent(true))
}

/// `POST /cgi-bin/tags/members/batchblacklist`: blocks 1 to [`MAX_BLACKLIST`] users.
#[derive(Clone, Debug)]
#[must_use]
pub struct Block {
    openids: Vec<OpenId>,
}

impl Block {
    /// Blocks `openids`.
    pub fn new(openids: impl IntoIterator<Item = impl Into<OpenId>>) -> Self {
        Block {
            openids: openids.into_iter().map(Into::into).collect(),
        }
    }
}

impl Request for Block {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        blacklist_endpoint("/cgi-bin/tags/members/batchblacklist", &self.openids)
    }
}

/// `POST /cgi-bin/tags/members/batchunblacklist`: unblocks 1 to [`MAX_BLACKLIST`] users.
#[derive(Clone, Debug)]
#[must_use]
pub struct Unblock {
    openids: Vec<OpenId>,
}

impl Unblock {
    /// Unblocks `openids`.
    pub fn new(openids: impl IntoIterator<Item = impl Into<OpenId>>) -> Self {
        Unblock {
            openids: openids.into_iter().map(Into::into).collect(),
        }
    }
}

impl Request for Unblock {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        blacklist_endpoint("/cgi-bin/tags/members/batchunblacklist", &self.openids)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::user::tests::{body, refused};

    #[test]
    fn list_pages_with_begin_openid() {
        let ep = List::new().endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/members/getblacklist");
        assert!(ep.is_idempotent());
        assert_eq!(body(&ep), json!({"begin_openid": ""}));
        let next = List::new().at(&Cursor::Openid("o9".into()));
        assert_eq!(
            body(&next.endpoint().expect("valid")),
            json!({"begin_openid": "o9"})
        );
    }

    #[test]
    fn block_and_unblock_take_1_to_20_openids() {
        let ep = Block::new(["o1", "o2"]).endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/members/batchblacklist");
        assert_eq!(body(&ep), json!({"openid_list": ["o1", "o2"]}));
        let ep = Unblock::new(["o1"]).endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/members/batchunblacklist");
        let twenty: Vec<String> = (0..20).map(|i| format!("o{i}")).collect();
        let _ = Block::new(twenty.clone()).endpoint().expect("20 ok");
        let mut more = twenty;
        more.push("o20".into());
        let (arg, reason) = refused(&Block::new(more.clone()));
        assert_eq!(arg, "openids");
        assert!(reason.contains("at most 20"), "{reason}");
        assert_eq!(refused(&Unblock::new(more)).0, "openids");
    }
}
