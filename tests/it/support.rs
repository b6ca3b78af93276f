//! Shared helpers.

use std::error::Error as StdError;

use wx_core::HttpResponse;
use wx_core::reexports::http::{StatusCode, header};
use wx_official::RetryPolicy;

/// Retries as the default policy does, with millisecond delays.
pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy::default().with_backoff(
        std::time::Duration::from_millis(1),
        std::time::Duration::from_millis(4),
    )
}

/// Everything an error shows: Display and Debug of it and of every source.
pub(crate) fn error_text(e: &(dyn StdError + 'static)) -> String {
    let mut text = format!("{e} | {e:?}");
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} | {cause:?}"));
        source = cause.source();
    }
    text
}

/// The query pairs of `url` (decoded), in order.
pub(crate) fn query_pairs(url: &reqwest::Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `pairs` as owned strings.
pub(crate) fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The `Location` of a 302, parsed.
pub(crate) fn redirect_location(response: &HttpResponse) -> reqwest::Url {
    assert_eq!(response.status, StatusCode::FOUND, "expected a 302");
    let location = response
        .headers
        .get(header::LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("an ASCII Location");
    reqwest::Url::parse(location).expect("an absolute Location URL")
}

/// The value of query parameter `name` of `url`.
pub(crate) fn param(url: &reqwest::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
