//! Tags: `cgi-bin/tags/{create,get,update,delete,getidlist}`, `tags/members/batch(un)tagging`
//! and a tag's members (`user/tag/get`, 10,000 a page), with WeChat's limits: names of 1 to 30
//! characters and unique (`45157`, `45158`), at most 100 tags (`45056`), 20 tags per follower
//! (`45059`), 50 openids per call (`40032`), the reserved tags 0, 1, 2 unchangeable (`45058`),
//! a tag with more than 100,000 followers not deletable (`45057`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::user::{json_body, ok, openid_list, openid_page, str_field};
use super::*;
use crate::paths::{
    TAGS_BATCHTAGGING, TAGS_BATCHUNTAGGING, TAGS_CREATE, TAGS_DELETE, TAGS_GET, TAGS_GETIDLIST,
    TAGS_UPDATE, USER_TAG_GET,
};

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(TAGS_CREATE, |w, c| w.tag_create(c)),
    Route::json(TAGS_GET, |w, c| w.tags_get(c)),
    Route::json(TAGS_UPDATE, |w, c| w.tag_update(c)),
    Route::json(TAGS_DELETE, |w, c| w.tag_delete(c)),
    Route::json(USER_TAG_GET, |w, c| w.tag_members(c)),
    Route::json(TAGS_BATCHTAGGING, |w, c| w.tagging(c, true)),
    Route::json(TAGS_BATCHUNTAGGING, |w, c| w.tagging(c, false)),
    Route::json(TAGS_GETIDLIST, |w, c| w.tag_ids_of(c)),
];

const MAX_NAME_CHARS: usize = 30;
const MAX_TAGS: usize = 100;
const MAX_TAGS_PER_FOLLOWER: usize = 20;
const MAX_TAGGING: usize = 50;
const MAX_DELETABLE_FOLLOWERS: usize = 100_000;
/// The reserved tag WeChat creates for every account.
const STAR_TAG: (u64, &str) = (2, "星标组");
/// WeChat numbers an account's own tags from 100.
const FIRST_TAG_ID: u64 = 100;

const E_NAME_INVALID: WxError = err(ErrCode::TAG_NAME_EXISTS, "invalid tag name");
const E_NAME_EXISTS: WxError = err(ErrCode::TAG_NAME_EXISTS, "tag name exists");
const E_NAME_TOO_LONG: WxError = err(ErrCode::TAG_NAME_TOO_LONG, "tag name too long");
const E_TOO_MANY_TAGS: WxError = err(ErrCode::TOO_MANY_TAGS, "too many tags");
const E_RESERVED: WxError = err(ErrCode::TAG_RESERVED, "can not modify sys tag");
const E_TAG_ID: WxError = err(ErrCode::INVALID_TAG_ID, "invalid tagid");
const E_TOO_MANY_FOLLOWERS: WxError = err(
    ErrCode::TAG_HAS_TOO_MANY_FOLLOWERS,
    "tag has too many fans, can not delete",
);
const E_FOLLOWER_TAGS: WxError = err(
    ErrCode::FOLLOWER_HAS_TOO_MANY_TAGS,
    "user has too many tags",
);

/// An app's tags: id → name, with the reserved star tag from the start.
struct Tags {
    names: BTreeMap<u64, String>,
    next_id: u64,
}

impl Default for Tags {
    fn default() -> Self {
        Tags {
            names: BTreeMap::from([(STAR_TAG.0, STAR_TAG.1.to_owned())]),
            next_id: FIRST_TAG_ID,
        }
    }
}

impl Tags {
    fn check_name(&self, name: &str, except: Option<u64>) -> Result<(), WxError> {
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(E_NAME_TOO_LONG);
        }
        if name.chars().any(char::is_control) {
            return Err(E_NAME_INVALID);
        }
        if self
            .names
            .iter()
            .any(|(id, n)| n == name && Some(*id) != except)
        {
            return Err(E_NAME_EXISTS);
        }
        Ok(())
    }

    /// An existing tag the account may change.
    fn custom(&self, id: u64) -> Result<(), WxError> {
        if id < 3 {
            return Err(E_RESERVED);
        }
        if self.names.contains_key(&id) {
            Ok(())
        } else {
            Err(E_TAG_ID)
        }
    }
}

/// The `tag` object of a body.
fn tag_object(body: &Map<String, Value>) -> Result<&Map<String, Value>, WxError> {
    body.get("tag")
        .and_then(Value::as_object)
        .ok_or(E_INVALID_ARGS)
}

fn id_field(obj: &Map<String, Value>, name: &str) -> Result<u64, WxError> {
    let v = obj.get(name).ok_or(E_TAG_ID)?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or(E_TAG_ID)
}

impl World {
    fn tag_create(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let name = str_field(tag_object(&body)?, "name").ok_or(E_NAME_INVALID)?;
        let tags = self.apps[i].ext.get_mut::<Tags>();
        tags.check_name(name, None)?;
        // The reserved star tag does not count.
        if tags.names.range(FIRST_TAG_ID..).count() >= MAX_TAGS {
            return Err(E_TOO_MANY_TAGS);
        }
        let id = tags.next_id;
        tags.next_id += 1;
        tags.names.insert(id, name.to_owned());
        Ok(json!({ "tag": { "id": id, "name": name } }))
    }

    fn tags_get(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let app = &mut self.apps[i];
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for f in app.followers.values().filter(|f| f.subscribed) {
            for id in &f.tag_ids {
                *counts.entry(*id).or_default() += 1;
            }
        }
        let tags: Vec<Value> = app
            .ext
            .get_mut::<Tags>()
            .names
            .iter()
            .map(|(id, name)| {
                json!({ "id": id, "name": name, "count": counts.get(id).copied().unwrap_or(0) })
            })
            .collect();
        Ok(json!({ "tags": tags }))
    }

    fn tag_update(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let tag = tag_object(&body)?;
        let id = id_field(tag, "id")?;
        let name = str_field(tag, "name").ok_or(E_NAME_INVALID)?;
        let tags = self.apps[i].ext.get_mut::<Tags>();
        tags.custom(id)?;
        tags.check_name(name, Some(id))?;
        tags.names.insert(id, name.to_owned());
        Ok(ok())
    }

    fn tag_delete(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let id = id_field(tag_object(&body)?, "id")?;
        let app = &mut self.apps[i];
        app.ext.get_mut::<Tags>().custom(id)?;
        if app.sorted_followers(|f| f.tag_ids.contains(&id)).len() > MAX_DELETABLE_FOLLOWERS {
            return Err(E_TOO_MANY_FOLLOWERS);
        }
        app.ext.get_mut::<Tags>().names.remove(&id);
        for f in app.followers.values_mut() {
            f.tag_ids.retain(|t| *t != id);
        }
        Ok(ok())
    }

    fn tag_members(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let id = id_field(&body, "tagid")?;
        let app = &mut self.apps[i];
        if !app.ext.get_mut::<Tags>().names.contains_key(&id) {
            return Err(E_TAG_ID);
        }
        let members = app.sorted_followers(|f| f.tag_ids.contains(&id));
        Ok(Value::Object(openid_page(
            &members,
            str_field(&body, "next_openid"),
        )))
    }

    /// `batchtagging` (`add`) and `batchuntagging`: every openid is checked before any changes.
    fn tagging(&mut self, c: &Call<'_>, add: bool) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let openids = openid_list(&body, MAX_TAGGING)?;
        let id = id_field(&body, "tagid")?;
        let app = &mut self.apps[i];
        if !app.ext.get_mut::<Tags>().names.contains_key(&id) {
            return Err(E_TAG_ID);
        }
        for openid in &openids {
            let f = app.follower_mut(openid).ok_or(E_OPENID)?;
            if add && !f.tag_ids.contains(&id) && f.tag_ids.len() >= MAX_TAGS_PER_FOLLOWER {
                return Err(E_FOLLOWER_TAGS);
            }
        }
        for openid in &openids {
            if let Some(f) = app.follower_mut(openid) {
                f.tag_ids.retain(|t| *t != id);
                if add {
                    f.tag_ids.push(id);
                }
            }
        }
        Ok(ok())
    }

    fn tag_ids_of(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let openid = str_field(&body, "openid").ok_or(E_OPENID_MISSING)?;
        let f = self.apps[i].follower_mut(openid).ok_or(E_OPENID)?;
        Ok(json!({ "tagid_list": f.tag_ids }))
    }
}
