//! Minimal query-string encoding and decoding (no dependency needed for this much).

/// Percent-encodes everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`), as
/// WeChat's docs ask for `redirect_uri` and as is safe for any query value.
#[must_use]
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    encode_into(&mut out, value);
    out
}

/// RFC 3986 unreserved bytes, as a table: one load per byte.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = unreserved_simd(c);
        b += 1;
    }
    table
};

/// Whether `b` is an RFC 3986 unreserved byte, by branch-free compares, so that a fold over
/// a block of bytes is vectorised (a table load is not).
#[inline(always)]
const fn unreserved_simd(b: u8) -> bool {
    ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
}

/// The length of the leading run of `bytes` that needs no escape. Tokens and ids are one
/// long run: whole 16-byte blocks are checked by a vectorised fold, the rest by the table.
#[inline]
fn unreserved_run(bytes: &[u8]) -> usize {
    const BLOCK: usize = 16;
    let mut start = 0;
    for block in bytes.chunks_exact(BLOCK) {
        // A fold without early exit over a fixed-size block: the compiler vectorises it.
        if !block.iter().fold(true, |all, &b| all & unreserved_simd(b)) {
            break;
        }
        start += BLOCK;
    }
    start
        + bytes[start..]
            .iter()
            .position(|&b| !UNRESERVED[usize::from(b)])
            .unwrap_or(bytes.len() - start)
}

/// Appends `value` percent-encoded (everything but RFC 3986 unreserved characters) to `out`.
pub fn encode_into(out: &mut String, value: &str) {
    let mut rest = value;
    while !rest.is_empty() {
        // A run of bytes that need no escape is copied at once.
        let run = unreserved_run(rest.as_bytes());
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        let Some(ch) = rest.chars().next() else { break };
        let mut buf = [0u8; 4];
        for &b in ch.encode_utf8(&mut buf).as_bytes() {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
        rest = &rest[ch.len_utf8()..];
    }
}

/// Appends `name=value` to a query string (after a `&` unless `query` is empty), both
/// percent-encoded.
pub fn append_pair(query: &mut String, name: &str, value: &str) {
    let len = name.len() + value.len() + 2;
    // The first pair makes room for a few more, so that a query is built in one allocation.
    query.reserve(if query.capacity() == 0 {
        2 * len.max(64)
    } else {
        len
    });
    let separator = if query.is_empty() { None } else { Some('&') };
    push_pair(query, separator, name, value);
}

/// Appends `separator`, then `name=value` percent-encoded.
fn push_pair(out: &mut String, separator: Option<char>, name: &str, value: &str) {
    if let Some(separator) = separator {
        out.push(separator);
    }
    encode_into(out, name);
    out.push('=');
    encode_into(out, value);
}

/// Builds `base?k1=v1&k2=v2`, percent-encoding every name and value.
#[must_use]
pub fn url_with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let len: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut url = String::with_capacity(base.len() + len + 16);
    url.push_str(base);
    for (i, (k, v)) in pairs.iter().enumerate() {
        push_pair(&mut url, Some(if i == 0 { '?' } else { '&' }), k, v);
    }
    url
}

/// Decodes `a=1&b=x%20y` into pairs (`+` is a space, bad escapes are kept as they are).
#[must_use]
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

/// Percent-decodes one component (`+` as space); invalid UTF-8 is replaced.
#[must_use]
pub fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    bytes.get(i + 1).and_then(|&c| hex(c)),
                    bytes.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = "http://diveintonode.org/?a=1&b=中 文~";
        let e = encode_component(v);
        assert_eq!(&e[..30], "http%3A%2F%2Fdiveintonode.org%");
        assert_eq!(decode_component(&e), v);
        assert_eq!(
            parse_query("a=1&b=x%20y&c"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), String::new())
            ]
        );
        assert_eq!(decode_component("%zz%4"), "%zz%4");
        assert_eq!(
            url_with_query("http://h/p", &[("a", "1 2"), ("b", "/")]),
            "http://h/p?a=1%202&b=%2F"
        );
    }

    /// The block scan agrees with a byte-at-a-time reference for every byte value at every
    /// position around the 16-byte blocks.
    #[test]
    fn block_scan_matches_the_reference() {
        fn reference(value: &str) -> String {
            let mut out = String::new();
            for &b in value.as_bytes() {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        }
        let chars: Vec<char> = (0u8..=127)
            .map(char::from)
            .chain(['é', '中', '😀'])
            .collect();
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 47, 130] {
            for &c in &chars {
                for at in [0, len / 2, len.saturating_sub(1)] {
                    let mut v: String = "aZ9-._~".chars().cycle().take(len).collect();
                    if len > 0 {
                        let byte = v.char_indices().nth(at).map_or(0, |(i, _)| i);
                        v.replace_range(byte..=byte, &c.to_string());
                    } else {
                        v.push(c);
                    }
                    assert_eq!(encode_component(&v), reference(&v), "{v:?}");
                }
            }
        }
        let mut query = String::new();
        append_pair(&mut query, "a", "1 2");
        append_pair(&mut query, "b", "");
        assert_eq!(query, "a=1%202&b=");
    }
}
