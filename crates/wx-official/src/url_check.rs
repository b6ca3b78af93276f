//! The one check of a caller-supplied http(s) URL (base URLs, `redirect_uri`, JS-SDK page URLs).

use wx_core::{InvalidInput, check_arg};

/// Checks that `url` is an absolute `http://` or `https://` URL with a host: not empty, at most
/// `max_len` bytes, without control characters or whitespace.
///
/// # Errors
/// [`InvalidInput`] naming `argument`.
pub(crate) fn check_http_url(
    argument: &'static str,
    url: &str,
    max_len: usize,
) -> Result<(), InvalidInput> {
    check_arg(argument, url, max_len)?;
    if url.chars().any(char::is_whitespace) {
        return Err(InvalidInput::new(argument, "must not contain whitespace"));
    }
    let scheme_ok = url.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
    });
    if !scheme_ok {
        return Err(InvalidInput::new(
            argument,
            "must be an absolute http:// or https:// URL",
        ));
    }
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(InvalidInput::new(argument, "must have a host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_http_url;

    #[test]
    fn accepts_absolute_http_urls_with_a_host() {
        for ok in [
            "http://a",
            "https://example.com/cb?x=1#f",
            "HTTPS://user@h:8080/p",
            "http://127.0.0.1:3000/callback",
        ] {
            assert!(check_http_url("u", ok, 100).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else_naming_the_argument() {
        for bad in [
            "",
            "example.com/cb",
            "ftp://h/",
            "https://",
            "https:///x",
            "http://?q",
            "http://#f",
            "http://:80/",
            "https://h /x",
            "https://h/\u{7}",
            "javascript://h",
        ] {
            let e = check_http_url("redirect_uri", bad, 100).expect_err(bad);
            assert_eq!(e.argument, "redirect_uri", "{bad}");
        }
        assert_eq!(
            check_http_url("u", &format!("https://h/{}", "a".repeat(100)), 100)
                .expect_err("too long")
                .reason,
            "too long"
        );
    }
}
