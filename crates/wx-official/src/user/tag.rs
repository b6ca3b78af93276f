//! Tags (`cgi-bin/tags/*`, `cgi-bin/user/tag/get`): create, list, rename and delete tags, tag
//! and untag followers ([`MAX_TAGGING`] a call), a tag's members as a stream, a follower's tags.
//!
//! WeChat's rules checked before sending: a name of 1 to [`MAX_TAG_NAME_CHARS`] characters, the
//! reserved tags 0, 1 and 2 are never renamed or deleted, 1 to 50 openids per (un)tagging call
//! (a longer list is refused, not split). Checked by WeChat only: at most 100 tags per account
//! (`45056`), 20 tags per follower (`45059`), a tag with more than 100,000 followers cannot be
//! deleted (`45057`).

use serde::{Deserialize, Serialize};
use wx_core::{Ack, InvalidInput, OpenId, Result, check_arg, lenient};

use super::{OpenIdPage, check_openid, check_openid_list, null_as_empty, openid_cursor};
use crate::endpoint::Endpoint;
use crate::paging::{Cursor, Page, Paged};
use crate::request::Request;

/// Longest tag name, in characters.
pub const MAX_TAG_NAME_CHARS: usize = 30;
/// Openids per `batchtagging` / `batchuntagging` call at most.
pub const MAX_TAGGING: usize = 50;
/// Tags below this id (0, 1, 2) are WeChat's reserved tags: they cannot be changed.
pub const FIRST_CUSTOM_TAG_ID: u64 = 3;

/// A tag.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tag {
    /// The tag's id (WeChat assigns them from 100 up).
    #[serde(deserialize_with = "lenient::uint")]
    pub id: u64,
    /// The tag's name.
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    /// How many followers carry it (`tags/get` only; 0 elsewhere).
    #[serde(default, deserialize_with = "lenient::uint")]
    pub count: u64,
}

fn check_name(name: &str) -> Result<()> {
    check_arg("name", name, MAX_TAG_NAME_CHARS * 4)?;
    if name.chars().count() > MAX_TAG_NAME_CHARS {
        return Err(InvalidInput::new("name", "longer than 30 characters").into());
    }
    Ok(())
}

fn check_custom_id(id: u64) -> Result<()> {
    if id < FIRST_CUSTOM_TAG_ID {
        return Err(
            InvalidInput::new("tag_id", "the reserved tags 0, 1 and 2 cannot be changed").into(),
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct TagBody<'a> {
    tag: TagFields<'a>,
}

#[derive(Serialize)]
struct TagFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

/// `POST /cgi-bin/tags/create`: a new tag.
#[derive(Clone, Debug)]
#[must_use]
pub struct Create {
    name: String,
}

impl Create {
    /// A tag named `name` (1 to 30 characters; unique in the account).
    pub fn new(name: impl Into<String>) -> Self {
        Create { name: name.into() }
    }
}

/// The answer of `tags/create`.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Created {
    /// The new tag.
    pub tag: Tag,
}

impl Request for Create {
    type Response = Created;
    fn endpoint(&self) -> Result<Endpoint> {
        check_name(&self.name)?;
        let body = TagBody {
            tag: TagFields {
                id: None,
                name: Some(&self.name),
            },
        };
        // Not repeated after a timeout: a second create of the name answers 45157.
        Ok(Endpoint::post_json("/cgi-bin/tags/create", &body)?.with_base_token())
    }
}

/// `GET /cgi-bin/tags/get`: every tag of the account with its follower count.
#[derive(Clone, Copy, Debug, Default)]
#[must_use]
pub struct List;

/// The answer of `tags/get`.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct Tags {
    /// The tags.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<Tag>,
}

impl Request for List {
    type Response = Tags;
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(Endpoint::get("/cgi-bin/tags/get").with_base_token())
    }
}

/// `POST /cgi-bin/tags/update`: renames a tag.
#[derive(Clone, Debug)]
#[must_use]
pub struct Update {
    id: u64,
    name: String,
}

impl Update {
    /// Renames tag `id` to `name`.
    pub fn new(id: u64, name: impl Into<String>) -> Self {
        Update {
            id,
            name: name.into(),
        }
    }
}

impl Request for Update {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        check_custom_id(self.id)?;
        check_name(&self.name)?;
        let body = TagBody {
            tag: TagFields {
                id: Some(self.id),
                name: Some(&self.name),
            },
        };
        Ok(Endpoint::post_json("/cgi-bin/tags/update", &body)?
            .with_base_token()
            .idempotent(true))
    }
}

/// `POST /cgi-bin/tags/delete`: deletes a tag (WeChat refuses one with more than 100,000
/// followers: untag them first).
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct Delete {
    id: u64,
}

impl Delete {
    /// Deletes tag `id`.
    pub fn new(id: u64) -> Self {
        Delete { id }
    }
}

impl Request for Delete {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        check_custom_id(self.id)?;
        let body = TagBody {
            tag: TagFields {
                id: Some(self.id),
                name: None,
            },
        };
        Ok(Endpoint::post_json("/cgi-bin/tags/delete", &body)?.with_base_token())
    }
}

/// `POST /cgi-bin/user/tag/get`: a tag's members, 10,000 a page. Paged:
/// `client.items(tag::Members::new(id))` streams every member's openid.
#[derive(Clone, Debug)]
#[must_use]
pub struct Members {
    tag_id: u64,
    next_openid: Option<OpenId>,
}

impl Members {
    /// The first page of the members of tag `tag_id`.
    pub fn new(tag_id: u64) -> Self {
        Members {
            tag_id,
            next_openid: None,
        }
    }

    /// The page after `openid` (a `next_openid` WeChat returned).
    pub fn after(mut self, openid: impl Into<OpenId>) -> Self {
        self.next_openid = Some(openid.into());
        self
    }
}

#[derive(Serialize)]
struct MembersBody<'a> {
    tagid: u64,
    next_openid: &'a str,
}

impl Request for Members {
    type Response = OpenIdPage;
    fn endpoint(&self) -> Result<Endpoint> {
        if let Some(o) = &self.next_openid {
            check_openid("next_openid", o)?;
        }
        let body = MembersBody {
            tagid: self.tag_id,
            next_openid: self.next_openid.as_ref().map_or("", OpenId::as_str),
        };
        Ok(Endpoint::post_json("/cgi-bin/user/tag/get", &body)?
            .with_base_token()
            .idempotent(true))
    }
}

impl Paged for Members {
    type Item = OpenId;
    fn page_of(&self, answer: OpenIdPage) -> Page<OpenId> {
        answer.into_page()
    }
    fn at(&self, cursor: &Cursor) -> Self {
        Members {
            tag_id: self.tag_id,
            next_openid: openid_cursor(cursor),
        }
    }
}

#[derive(Serialize)]
struct TaggingBody<'a> {
    openid_list: Vec<&'a str>,
    tagid: u64,
}

fn tagging_endpoint(path: &'static str, tag_id: u64, openids: &[OpenId]) -> Result<Endpoint> {
    check_openid_list(
        openids,
        MAX_TAGGING,
        "more than 50 openids: WeChat takes at most 50 a call; send the rest in further calls",
    )?;
    let body = TaggingBody {
        openid_list: openids.iter().map(OpenId::as_str).collect(),
        tagid: tag_id,
    };
    // (Un)tagging twice leaves the same state.
    Ok(Endpoint::post_json(path, &body)?
        .with_base_token()
        .idempotent(true))
}

/// `POST /cgi-bin/tags/members/batchtagging`: puts a tag on 1 to [`MAX_TAGGING`] followers.
#[derive(Clone, Debug)]
#[must_use]
pub struct BatchTagging {
    tag_id: u64,
    openids: Vec<OpenId>,
}

impl BatchTagging {
    /// Tags `openids` with `tag_id`.
    pub fn new(tag_id: u64, openids: impl IntoIterator<Item = impl Into<OpenId>>) -> Self {
        BatchTagging {
            tag_id,
            openids: openids.into_iter().map(Into::into).collect(),
        }
    }
}

impl Request for BatchTagging {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        tagging_endpoint(
            "/cgi-bin/tags/members/batchtagging",
            self.tag_id,
            &self.openids,
        )
    }
}

/// `POST /cgi-bin/tags/members/batchuntagging`: takes a tag off 1 to [`MAX_TAGGING`]
/// followers.
#[derive(Clone, Debug)]
#[must_use]
pub struct BatchUntagging {
    tag_id: u64,
    openids: Vec<OpenId>,
}

impl BatchUntagging {
    /// Untags `openids` from `tag_id`.
    pub fn new(tag_id: u64, openids: impl IntoIterator<Item = impl Into<OpenId>>) -> Self {
        BatchUntagging {
            tag_id,
            openids: openids.into_iter().map(Into::into).collect(),
        }
    }
}

impl Request for BatchUntagging {
    type Response = Ack;
    fn endpoint(&self) -> Result<Endpoint> {
        tagging_endpoint(
            "/cgi-bin/tags/members/batchuntagging",
            self.tag_id,
            &self.openids,
        )
    }
}

/// `POST /cgi-bin/tags/getidlist`: the ids of a follower's tags.
#[derive(Clone, Debug)]
#[must_use]
pub struct IdsOf {
    openid: OpenId,
}

impl IdsOf {
    /// The tags of `openid`.
    pub fn new(openid: impl Into<OpenId>) -> Self {
        IdsOf {
            openid: openid.into(),
        }
    }
}

/// The answer of `tags/getidlist`.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct TagIds {
    /// The tag ids.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tagid_list: Vec<u64>,
}

#[derive(Serialize)]
struct OpenIdBody<'a> {
    openid: &'a str,
}

impl Request for IdsOf {
    type Response = TagIds;
    fn endpoint(&self) -> Result<Endpoint> {
        check_openid("openid", &self.openid)?;
        let body = OpenIdBody {
            openid: self.openid.as_str(),
        };
        Ok(Endpoint::post_json("/cgi-bin/tags/getidlist", &body)?
            .with_base_token()
            .idempotent(true))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::user::tests::{body, refused};

    #[test]
    fn create_update_delete_nest_the_tag_object() {
        let ep = Create::new("广东").endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/create");
        assert!(!ep.is_idempotent());
        assert_eq!(body(&ep), json!({"tag": {"name": "广东"}}));
        let ep = Update::new(134, "广东人").endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/update");
        assert_eq!(body(&ep), json!({"tag": {"id": 134, "name": "广东人"}}));
        let ep = Delete::new(134).endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/delete");
        assert_eq!(body(&ep), json!({"tag": {"id": 134}}));
        assert_eq!(List.endpoint().expect("valid").path(), "/cgi-bin/tags/get");
    }

    #[test]
    fn names_are_1_to_30_characters_and_reserved_tags_are_refused() {
        let _ = Create::new("标".repeat(30))
            .endpoint()
            .expect("30 characters");
        assert_eq!(refused(&Create::new("标".repeat(31))).0, "name");
        assert_eq!(refused(&Create::new("")).0, "name");
        assert_eq!(refused(&Update::new(100, "x".repeat(31))).0, "name");
        for id in 0..=2 {
            assert_eq!(refused(&Update::new(id, "x")).0, "tag_id");
            assert_eq!(refused(&Delete::new(id)).0, "tag_id");
        }
    }

    #[test]
    fn members_page_with_next_openid_in_the_body() {
        let first = Members::new(134);
        let ep = first.endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/user/tag/get");
        assert_eq!(body(&ep), json!({"tagid": 134, "next_openid": ""}));
        let next = first.at(&Cursor::Openid("o9".into()));
        assert_eq!(
            body(&next.endpoint().expect("valid")),
            json!({"tagid": 134, "next_openid": "o9"})
        );
    }

    #[test]
    fn tagging_takes_1_to_50_openids_and_refuses_more() {
        let ep = BatchTagging::new(134, ["o1", "o2"])
            .endpoint()
            .expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/members/batchtagging");
        assert_eq!(
            body(&ep),
            json!({"openid_list": ["o1", "o2"], "tagid": 134})
        );
        let ep = BatchUntagging::new(134, ["o1"]).endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/members/batchuntagging");
        let fifty: Vec<String> = (0..50).map(|i| format!("o{i}")).collect();
        let _ = BatchTagging::new(1, fifty.clone())
            .endpoint()
            .expect("50 ok");
        let mut fifty_one = fifty;
        fifty_one.push("o50".into());
        let (arg, reason) = refused(&BatchTagging::new(1, fifty_one.clone()));
        assert_eq!(arg, "openids");
        assert!(reason.contains("at most 50"), "{reason}");
        assert_eq!(refused(&BatchUntagging::new(1, fifty_one)).0, "openids");
        assert_eq!(
            refused(&BatchTagging::new(1, Vec::<String>::new())).0,
            "openids"
        );
    }

    #[test]
    fn ids_of_a_follower() {
        let ep = IdsOf::new("o1").endpoint().expect("valid");
        assert_eq!(ep.path(), "/cgi-bin/tags/getidlist");
        assert_eq!(body(&ep), json!({"openid": "o1"}));
        let ids: TagIds = serde_json::from_value(json!({"tagid_list": [128, 2]})).expect("decodes");
        assert_eq!(ids.tagid_list, vec![128, 2]);
        let tags: Tags = serde_json::from_value(
            json!({"tags": [{"id": 2, "name": "星标组", "count": 0}, {"id": "127", "name": "广东"}]}),
        )
        .expect("decodes");
        assert_eq!(tags.tags[1].id, 127);
        assert_eq!(tags.tags[1].count, 0);
    }
}
