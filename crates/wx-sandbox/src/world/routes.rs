//! The route table: each WeChat group's module lists its paths and handlers in a `ROUTES`
//! slice, and this file lists the groups. A new endpoint adds a line to its group's table (a new
//! group adds its file and one line here), never a branch in a central `match`.

use std::time::SystemTime;

use wx_core::{HttpRequest, HttpResponse};

use super::{Answer, Query, World};

/// One request as a handler sees it.
pub(crate) struct Call<'a> {
    /// Query parameters (an empty value reads as missing, as on WeChat).
    pub(crate) query: Query,
    /// The body (empty for a GET).
    pub(crate) body: &'a [u8],
    /// The sandbox clock's time of the request.
    pub(crate) now: SystemTime,
    /// The whole request (headers, for multipart uploads).
    pub(crate) request: &'a HttpRequest,
}

/// How a route answers.
#[derive(Clone, Copy)]
pub(crate) enum Handler {
    /// A JSON answer: the value, or a WeChat error rendered with its `rid` and the content type
    /// of the path's family.
    Json(fn(&mut World, &Call<'_>) -> Answer),
    /// A whole HTTP response (pages, redirects, files).
    Raw(fn(&mut World, &Call<'_>) -> HttpResponse),
}

/// A path and its handler.
#[derive(Clone, Copy)]
pub(crate) struct Route {
    pub(crate) path: &'static str,
    pub(crate) handler: Handler,
}

impl Route {
    /// A route answering JSON.
    pub(crate) const fn json(path: &'static str, f: fn(&mut World, &Call<'_>) -> Answer) -> Self {
        Route {
            path,
            handler: Handler::Json(f),
        }
    }

    /// A route answering a whole HTTP response.
    pub(crate) const fn raw(
        path: &'static str,
        f: fn(&mut World, &Call<'_>) -> HttpResponse,
    ) -> Self {
        Route {
            path,
            handler: Handler::Raw(f),
        }
    }
}

/// Every group's table.
const GROUPS: &[&[Route]] = &[
    super::token::ROUTES,
    super::oauth::ROUTES,
    super::consent::ROUTES,
    super::user::ROUTES,
    super::tag::ROUTES,
    super::blacklist::ROUTES,
    super::qrcode::ROUTES,
    super::menu::ROUTES,
    super::message::ROUTES,
    super::media::ROUTES,
    super::material::ROUTES,
    super::draft::ROUTES,
];

/// The route of `path`, if the sandbox answers it.
pub(crate) fn find(path: &str) -> Option<&'static Route> {
    GROUPS
        .iter()
        .flat_map(|g| g.iter())
        .find(|r| r.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_exactly_one_route() {
        let mut paths: Vec<&str> = GROUPS
            .iter()
            .flat_map(|g| g.iter())
            .map(|r| r.path)
            .collect();
        let n = paths.len();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), n, "a path is routed twice");
        assert!(find(crate::paths::TOKEN).is_some());
        assert!(find("/cgi-bin/nope").is_none());
    }
}
