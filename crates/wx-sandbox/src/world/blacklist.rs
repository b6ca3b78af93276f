//! The blacklist: `cgi-bin/tags/members/getblacklist` (10,000 a page from `begin_openid`, with
//! `total`) and `batchblacklist` / `batchunblacklist` (1 to 20 openids, `40032` beyond).

use serde_json::{Value, json};

use super::user::{json_body, ok, openid_list, openid_page, str_field};
use super::*;
use crate::paths::{BATCH_BLACKLIST, BATCH_UNBLACKLIST, GET_BLACKLIST};

/// This group's routes.
pub(super) const ROUTES: &[Route] = &[
    Route::json(GET_BLACKLIST, |w, c| w.blacklist(c)),
    Route::json(BATCH_BLACKLIST, |w, c| w.set_blacklisted(c, true)),
    Route::json(BATCH_UNBLACKLIST, |w, c| w.set_blacklisted(c, false)),
];

const MAX_BLACKLIST: usize = 20;

impl World {
    fn blacklist(&mut self, c: &Call<'_>) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        // An empty body asks for the first page.
        let body = if c.body.is_empty() {
            serde_json::Map::new()
        } else {
            json_body(c.body)?
        };
        let blocked = self.apps[i].sorted_followers(|f| f.blacklisted);
        let mut page = openid_page(&blocked, str_field(&body, "begin_openid"));
        page.insert("total".into(), json!(blocked.len()));
        Ok(Value::Object(page))
    }

    /// Every openid is checked before any changes.
    fn set_blacklisted(&mut self, c: &Call<'_>, blocked: bool) -> Answer {
        let i = self.check_base_token(&c.query, c.now)?;
        let body = json_body(c.body)?;
        let openids = openid_list(&body, MAX_BLACKLIST)?;
        let app = &mut self.apps[i];
        if openids.iter().any(|o| app.follower_mut(o).is_none()) {
            return Err(E_OPENID);
        }
        for openid in &openids {
            if let Some(f) = app.follower_mut(openid) {
                f.blacklisted = blocked;
            }
        }
        Ok(ok())
    }
}
