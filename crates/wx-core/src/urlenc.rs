//! Minimal query-string encoding and decoding (no dependency needed for this much).

/// Percent-encodes everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`), as
/// WeChat's docs ask for `redirect_uri` and as is safe for any query value.
#[must_use]
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    encode_into(&mut out, value);
    out
}

/// RFC 3986 unreserved bytes, as a table: one load per byte on the hot path of every request.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
        b += 1;
    }
    table
};

fn encode_into(out: &mut String, value: &str) {
    let unreserved = |b: u8| UNRESERVED[usize::from(b)];
    let mut rest = value;
    while !rest.is_empty() {
        // A run of bytes that need no escape is copied at once.
        let run = rest
            .bytes()
            .position(|b| !unreserved(b))
            .unwrap_or(rest.len());
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

/// Builds `base?k1=v1&k2=v2`, encoding every value (keys are expected to be plain).
#[must_use]
pub fn url_with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let len: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut url = String::with_capacity(base.len() + len + 16);
    url.push_str(base);
    for (i, (k, v)) in pairs.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(k);
        url.push('=');
        encode_into(&mut url, v);
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
}
