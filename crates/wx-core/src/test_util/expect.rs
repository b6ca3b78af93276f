//! Expected requests as data, compared in one call (smithy-rs's replay client), and a
//! transport that never answers.

use std::fmt;

use async_trait::async_trait;
use http::Method;
use serde_json::Value;

use super::MockTransport;
use crate::{HttpRequest, HttpResponse, HttpTransport, TransportError};

/// A request a test expects: method, path, query parameters and, for JSON bodies, the body as a
/// value (so key order and spacing do not matter).
///
/// A query parameter listed with [`query_present`](Self::query_present) must be there with any
/// value (the access token, a timestamp); every other parameter must match exactly, and none
/// may be missing or extra.
#[derive(Clone, PartialEq)]
#[must_use]
pub struct ExpectedRequest {
    method: Method,
    path: String,
    query: Vec<(String, Option<String>)>,
    json: Option<Value>,
}

impl ExpectedRequest {
    /// A GET of `path`.
    pub fn get(path: &str) -> Self {
        ExpectedRequest {
            method: Method::GET,
            path: path.to_owned(),
            query: Vec::new(),
            json: None,
        }
    }

    /// A POST of `path` with the JSON body `json`.
    pub fn post_json(path: &str, json: Value) -> Self {
        ExpectedRequest {
            method: Method::POST,
            path: path.to_owned(),
            query: Vec::new(),
            json: Some(json),
        }
    }

    /// The query parameter `name` with exactly `value`.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), Some(value.to_owned())));
        self
    }

    /// The query parameter `name` with any value.
    pub fn query_present(mut self, name: &str) -> Self {
        self.query.push((name.to_owned(), None));
        self
    }

    /// What differs between this expectation and `actual` (empty when it matches).
    #[must_use]
    pub fn differences(&self, actual: &HttpRequest) -> Vec<String> {
        let mut out = Vec::new();
        if actual.method != self.method {
            out.push(format!(
                "method {} instead of {}",
                actual.method, self.method
            ));
        }
        if actual.path() != self.path {
            out.push(format!("path {} instead of {}", actual.path(), self.path));
        }
        let mut got = actual.query_pairs();
        for (name, value) in &self.query {
            match got.iter().position(|(k, _)| k == name) {
                Some(i) => {
                    let (_, v) = got.remove(i);
                    if let Some(value) = value
                        && &v != value
                    {
                        out.push(format!("query {name}={v:?} instead of {value:?}"));
                    }
                }
                None => out.push(format!("query {name} missing")),
            }
        }
        for (k, _) in got {
            out.push(format!("unexpected query parameter {k}"));
        }
        let body = actual
            .body
            .as_ref()
            .map(|b| serde_json::from_slice::<Value>(b));
        match (&self.json, body) {
            (None, None) => {}
            (Some(want), Some(Ok(got))) if &got == want => {}
            (Some(want), Some(Ok(got))) => out.push(format!("JSON body {got} instead of {want}")),
            (Some(_), Some(Err(_))) => out.push("body is not JSON".to_owned()),
            (Some(_), None) => out.push("no body".to_owned()),
            (None, Some(_)) => out.push("unexpected body".to_owned()),
        }
        out
    }
}

impl fmt::Debug for ExpectedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

impl MockTransport {
    /// Asserts that the requests sent so far are exactly `expected`, in order.
    ///
    /// # Panics
    /// Listing every difference, request by request.
    pub fn assert_requests(&self, expected: &[ExpectedRequest]) {
        let actual = self.requests();
        let mut report = Vec::new();
        if actual.len() != expected.len() {
            report.push(format!(
                "{} requests sent, {} expected: {:?}",
                actual.len(),
                expected.len(),
                actual
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.path()))
                    .collect::<Vec<_>>()
            ));
        }
        for (i, (want, got)) in expected.iter().zip(&actual).enumerate() {
            for d in want.differences(got) {
                report.push(format!("request #{i} ({want:?}): {d}"));
            }
        }
        assert!(report.is_empty(), "{}", report.join("\n"));
    }
}

/// A transport that accepts every request and never answers: for deadlines, cancellation and
/// "may have been sent" paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverAnswers;

#[async_trait]
impl HttpTransport for NeverAnswers {
    async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn differences_name_what_is_off() {
        let mock = MockTransport::new();
        mock.push_json("{}").push_json("{}");
        mock.send(HttpRequest::get(
            "https://h/cgi-bin/user/info?access_token=T&openid=o1",
        ))
        .await
        .expect("canned");
        mock.send(HttpRequest::post_json(
            "https://h/cgi-bin/tags/create?access_token=T",
            Bytes::from_static(br#"{ "tag": {"name": "vip"} }"#),
        ))
        .await
        .expect("canned");
        mock.assert_requests(&[
            ExpectedRequest::get("/cgi-bin/user/info")
                .query_present("access_token")
                .query("openid", "o1"),
            ExpectedRequest::post_json(
                "/cgi-bin/tags/create",
                serde_json::json!({"tag": {"name": "vip"}}),
            )
            .query_present("access_token"),
        ]);
        let wrong = ExpectedRequest::get("/cgi-bin/user/info").query("openid", "o2");
        let d = wrong.differences(&mock.requests()[0]);
        assert_eq!(
            d,
            [
                "query openid=\"o1\" instead of \"o2\"",
                "unexpected query parameter access_token"
            ]
        );
        let caught =
            std::panic::catch_unwind(|| mock.assert_requests(std::slice::from_ref(&wrong)));
        assert!(caught.is_err());
    }

    #[tokio::test]
    async fn never_answers_really_does_not() {
        let r = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            NeverAnswers.send(HttpRequest::get("https://h/x")),
        )
        .await;
        assert!(r.is_err(), "still pending");
    }
}
