//! Parsed request URLs without parsing the same origin and path on every call.
//!
//! reqwest takes a parsed [`Url`]; parsing one from text costs most in the host (IDNA
//! processing, even for an IP address): about 12k instructions for a `sns/userinfo` URL, more
//! than all of wx's own layers. A client calls a few dozen endpoint paths on one or two hosts,
//! so the part before the query is parsed once per thread and kept; each request's query is
//! parsed as a reference relative to it (about 6k instructions: the query is still checked and
//! encoded as `Url::parse` would, by the same parser).

use std::cell::RefCell;
use std::collections::HashMap;

use reqwest::Url;
use rustc_hash::FxBuildHasher;

/// How many distinct scheme-host-path prefixes a thread keeps; past that, URLs are parsed
/// whole (a client that calls unboundedly many paths gains nothing from keeping them).
const CAPACITY: usize = 256;

thread_local! {
    /// Parsed `scheme://host[:port]/path` prefixes. A parse depends on the text alone, so one
    /// memo serves every transport; one per thread, so that no lock or shared cache line is
    /// touched on a call (a shared mutex cost several percent of the throughput of 64 tasks
    /// on two worker threads).
    ///
    /// Hashed with FxHash, not SipHash: the table never holds more than [`CAPACITY`] keys, so
    /// even keys chosen to collide cost at most a scan of those, and SipHash cost more than
    /// the rest of the lookup (about 250 instructions a call for a 40-byte prefix).
    static PREFIXES: RefCell<HashMap<Box<str>, Url, FxBuildHasher>> =
        const { RefCell::new(HashMap::with_hasher(FxBuildHasher)) };
}

/// `url` parsed, equal to `Url::parse(url)`; `None` when it must be parsed whole (it has a
/// fragment, its prefix ends in a space or control character, which a parse of the prefix
/// alone would trim, its prefix cannot be a base (`mailto:`), or does not parse: reqwest then
/// reports the error as it would).
pub(crate) fn parse(url: &str) -> Option<Url> {
    // One vectorised pass finds the query and any fragment (`str::contains` and `split_once`
    // were two byte-at-a-time walks of the whole URL).
    let bytes = url.as_bytes();
    let (prefix, query) = match memchr::memchr2(b'?', b'#', bytes) {
        None => (url, None),
        Some(at) if bytes[at] == b'#' => return None,
        Some(at) => {
            if memchr::memchr(b'#', &bytes[at + 1..]).is_some() {
                return None;
            }
            // The query keeps its `?`: it is parsed as a reference relative to the prefix.
            (&url[..at], Some(&url[at..]))
        }
    };
    if prefix.as_bytes().last().is_some_and(|&b| b <= b' ') {
        return None;
    }
    // `try_with`: a request sent while the thread is being torn down parses the URL whole.
    PREFIXES
        .try_with(|prefixes| {
            if let Some(base) = prefixes.borrow().get(prefix) {
                return with_query(base, query);
            }
            let base = Url::parse(prefix).ok()?;
            let url = with_query(&base, query);
            let mut prefixes = prefixes.borrow_mut();
            if prefixes.len() < CAPACITY {
                prefixes.insert(prefix.into(), base);
            }
            url
        })
        .ok()
        .flatten()
}

/// `base` with `query` (`?...`, or none). The query is parsed as a reference relative to
/// `base`: the URL standard's parser then copies `base` and parses only the query, into one
/// buffer, with the rules of a whole parse (a query setter trims differently: a trailing
/// space or control character is kept by `set_query` and dropped by `Url::parse`).
fn with_query(base: &Url, query: Option<&str>) -> Option<Url> {
    match query {
        None => Some(base.clone()),
        Some(query) => Url::options().base_url(Some(base)).parse(query).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the text, the URL given to reqwest is the one `Url::parse` gives, or the
    /// cache steps aside.
    #[test]
    fn equals_a_whole_parse() {
        let urls = [
            "http://127.0.0.1:38059/sns/userinfo?access_token=AbC-_9&openid=o6_x&lang=zh_CN",
            "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=wx1",
            "https://api.weixin.qq.com/cgi-bin/token",
            "https://api.weixin.qq.com/cgi-bin/token?",
            "https://API.Weixin.QQ.com:443/a/../b/./c?x=1",
            "https://api.weixin.qq.com/p?q=a b&r=中文&s=%zz&t=\"<>`{}|\\^'",
            "https://api.weixin.qq.com/p?q=\ttab\nnewline",
            "https://api.weixin.qq.com/p?q=trailing space ",
            "https://api.weixin.qq.com/p?q=trailing control\u{1}",
            "https://api.weixin.qq.com/p?\u{1}q=leading control",
            "https://api.weixin.qq.com/p ?q=space before the query",
            "https://api.weixin.qq.com/p\t?q=tab before the query",
            "  https://api.weixin.qq.com/p?q=leading spaces",
            "https://api.weixin.qq.com/p?",
            "https://api.weixin.qq.com/p??q=1",
            "https://api.weixin.qq.com/p?q=1?r=2",
            "https://用户.example/路径?名=值",
            "http://[::1]:8080/v6?x=y",
            "https://user:pw@host.example/p?q=1",
            "https://api.weixin.qq.com/p?a=1#frag",
            "https://api.weixin.qq.com/p#frag?a=1",
            "mailto:someone@example.com?subject=hi",
            "not a url?x=1",
            "http://exa mple.com/p?x=1",
            "",
        ];
        for url in urls {
            // A URL without a fragment that parses is served by the cache, not handed back,
            // unless its prefix ends in a space or control character or cannot be a base for
            // a query (`mailto:`).
            let prefix = url.split('?').next().unwrap_or_default();
            let cacheable = !url.contains('#')
                && !prefix.ends_with(|c: char| c <= ' ')
                && Url::parse(prefix).is_ok_and(|p| !p.cannot_be_a_base())
                && Url::parse(url).is_ok();
            assert_eq!(parse(url).is_some(), cacheable, "{url}");
            // Twice: the first parse fills the cache, the second is served from it.
            for _ in 0..2 {
                match (parse(url), Url::parse(url)) {
                    (Some(fast), Ok(whole)) => assert_eq!(fast.as_str(), whole.as_str(), "{url}"),
                    (Some(fast), Err(e)) => panic!("{url}: cached {fast} where parsing fails: {e}"),
                    (None, _) => {}
                }
            }
        }
        assert!(parse("https://api.weixin.qq.com/p?a=1#frag").is_none());
        assert!(parse("not a url?x=1").is_none());
    }

    /// Random URLs over an alphabet of the characters the parser treats specially: whenever the
    /// cache serves one, it equals a whole parse.
    #[test]
    fn random_urls_equal_a_whole_parse() {
        const PREFIXES: [&str; 5] = [
            "https://api.weixin.qq.com/cgi-bin/p",
            "http://127.0.0.1:8080/a/b",
            "https://h.example",
            "https://h.example/x y",
            "file:///tmp/f",
        ];
        const ALPHABET: [&str; 22] = [
            "a", "Z", "9", "-", "~", " ", "\t", "\n", "\u{1}", "\u{7f}", "?", "#", "%", "%4",
            "%41", "&", "=", "/", "\\", ".", "é", "中",
        ];
        // A fixed linear congruential generator: the same cases on every run.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        let mut served = 0;
        for _ in 0..20_000 {
            let mut url = PREFIXES[next(PREFIXES.len())].to_owned();
            for _ in 0..next(4) {
                url.push_str(ALPHABET[next(ALPHABET.len())]);
            }
            url.push('?');
            for _ in 0..next(12) {
                url.push_str(ALPHABET[next(ALPHABET.len())]);
            }
            if let Some(fast) = parse(&url) {
                served += 1;
                let whole = Url::parse(&url).expect("served URLs parse whole");
                assert_eq!(fast.as_str(), whole.as_str(), "{url:?}");
            }
        }
        // Most cases have no fragment and a prefix that parses: the cache was exercised.
        assert!(served > 10_000, "{served}");
    }

    #[test]
    fn the_cache_is_bounded() {
        for i in 0..CAPACITY + 50 {
            let url = format!("https://h.example/p{i}?x={i}");
            let parsed = parse(&url).expect("parses");
            assert_eq!(parsed.as_str(), url);
        }
        assert_eq!(PREFIXES.with(|p| p.borrow().len()), CAPACITY);
    }
}
