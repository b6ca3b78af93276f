//! The keyword types of subscription notices and the rule each one's value must follow.
//!
//! A subscription template's keywords are typed: the `rule` of
//! [`GetPubTemplateKeywords`](super::GetPubTemplateKeywords), and the prefix of the data key a
//! send fills (`thing1`, `time2`, `character_string3`). WeChat refuses a value that breaks its
//! type's rule with `47003`; [`SubscribeSend`](super::SubscribeSend) checks every value first.
//! Lengths count characters (Unicode scalar values), not bytes.

use std::fmt;

/// The type of a subscription-notice keyword, with WeChat's rule for its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeywordType {
    /// `thing` (事物): up to 20 characters of any kind.
    Thing,
    /// `number` (数字): up to 32 characters, digits with an optional decimal point.
    Number,
    /// `letter` (字母): up to 32 letters (A-Z, a-z).
    Letter,
    /// `symbol` (符号): up to 5 symbols (no letters, digits or spaces).
    Symbol,
    /// `character_string` (字符串): up to 32 ASCII letters, digits and symbols.
    CharacterString,
    /// `time` (时间): a 24-hour time, optionally after a date (`15:01`,
    /// `2019年10月1日 15:01`); a range joins two with `~`. A date alone passes too: WeChat's
    /// own `bizsend` example fills `time7` with `2019年8月8日`.
    Time,
    /// `date` (日期): a date, optionally followed by a 24-hour time (`2019年10月1日`,
    /// `2019-10-01 15:01`); a range joins two with `~`.
    Date,
    /// `amount` (金额): an optional currency symbol, at most 10 digits with an optional decimal
    /// point, an optional trailing `元` (`¥39.80`, `39.8元`).
    Amount,
    /// `phone_number` (电话): up to 17 digits and symbols (`+86-0766-66888866`).
    PhoneNumber,
    /// `car_number` (车牌): up to 8 characters; the first and the last may be Chinese
    /// characters, the others are letters or digits (`粤A8Z888挂`).
    CarNumber,
    /// `name` (姓名): up to 10 characters when it holds a Chinese character (mixed names count
    /// as Chinese), otherwise up to 20 letters and symbols; no digits.
    Name,
    /// `phrase` (汉字): up to 5 Chinese characters only (`配送中`).
    Phrase,
}

impl KeywordType {
    /// Every type.
    pub const ALL: [KeywordType; 12] = [
        KeywordType::Thing,
        KeywordType::Number,
        KeywordType::Letter,
        KeywordType::Symbol,
        KeywordType::CharacterString,
        KeywordType::Time,
        KeywordType::Date,
        KeywordType::Amount,
        KeywordType::PhoneNumber,
        KeywordType::CarNumber,
        KeywordType::Name,
        KeywordType::Phrase,
    ];

    /// WeChat's name of the type (`character_string`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeywordType::Thing => "thing",
            KeywordType::Number => "number",
            KeywordType::Letter => "letter",
            KeywordType::Symbol => "symbol",
            KeywordType::CharacterString => "character_string",
            KeywordType::Time => "time",
            KeywordType::Date => "date",
            KeywordType::Amount => "amount",
            KeywordType::PhoneNumber => "phone_number",
            KeywordType::CarNumber => "car_number",
            KeywordType::Name => "name",
            KeywordType::Phrase => "phrase",
        }
    }

    /// The type WeChat names `rule` (the `rule` field of a keyword), if known.
    #[must_use]
    pub fn parse(rule: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == rule)
    }

    /// The type of a data key (`thing1` → `Thing`, `character_string12` →
    /// `CharacterString`): the key without its trailing number. `None` for a key without a
    /// number or of an unknown type.
    #[must_use]
    pub fn of_key(key: &str) -> Option<Self> {
        let name = key.trim_end_matches(|c: char| c.is_ascii_digit());
        if name.len() == key.len() {
            return None;
        }
        Self::parse(name)
    }

    /// The most characters a value may have.
    #[must_use]
    pub fn max_chars(self) -> usize {
        match self {
            KeywordType::Thing => 20,
            KeywordType::Number | KeywordType::Letter | KeywordType::CharacterString => 32,
            KeywordType::Symbol | KeywordType::Phrase => 5,
            // Two date-times joined by `~`: "2019年10月01日 15:01:02~2019年10月01日 16:01:02".
            KeywordType::Time | KeywordType::Date => 64,
            // A currency symbol, 10 digits, a point and `元`.
            KeywordType::Amount => 13,
            KeywordType::PhoneNumber => 17,
            KeywordType::CarNumber => 8,
            KeywordType::Name => 20,
        }
    }

    /// Checks `value` against the type's rule.
    ///
    /// # Errors
    /// Why the value breaks the rule (a short text naming the rule, never the value).
    pub fn check(self, value: &str) -> Result<(), &'static str> {
        let chars = value.chars().count();
        if chars == 0 {
            return Err("must not be empty");
        }
        if value.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        if chars > self.max_chars() {
            return Err(self.too_long());
        }
        let ok = match self {
            KeywordType::Thing => true,
            KeywordType::Number => is_decimal(value),
            KeywordType::Letter => value.chars().all(|c| c.is_ascii_alphabetic()),
            KeywordType::Symbol => value.chars().all(is_symbol),
            KeywordType::CharacterString => value.chars().all(|c| c.is_ascii_graphic()),
            KeywordType::Time => is_date_time(value, false),
            KeywordType::Date => is_date_time(value, true),
            KeywordType::Amount => is_amount(value),
            KeywordType::PhoneNumber => value
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' '),
            KeywordType::CarNumber => is_car_number(value),
            KeywordType::Name => is_name(value, chars),
            KeywordType::Phrase => value.chars().all(is_han),
        };
        if ok { Ok(()) } else { Err(self.rule()) }
    }

    fn too_long(self) -> &'static str {
        match self {
            KeywordType::Thing => "a `thing` value is at most 20 characters",
            KeywordType::Number => "a `number` value is at most 32 characters",
            KeywordType::Letter => "a `letter` value is at most 32 letters",
            KeywordType::Symbol => "a `symbol` value is at most 5 symbols",
            KeywordType::CharacterString => "a `character_string` value is at most 32 characters",
            KeywordType::Time | KeywordType::Date => "a `time` or `date` value is too long",
            KeywordType::Amount => "an `amount` value is at most 10 digits",
            KeywordType::PhoneNumber => "a `phone_number` value is at most 17 characters",
            KeywordType::CarNumber => "a `car_number` value is at most 8 characters",
            KeywordType::Name => {
                "a `name` value is at most 10 Chinese characters or 20 letters and symbols"
            }
            KeywordType::Phrase => "a `phrase` value is at most 5 Chinese characters",
        }
    }

    fn rule(self) -> &'static str {
        match self {
            KeywordType::Thing => "a `thing` value is at most 20 characters",
            KeywordType::Number => "a `number` value holds only digits and one decimal point",
            KeywordType::Letter => "a `letter` value holds only letters A-Z, a-z",
            KeywordType::Symbol => "a `symbol` value holds only symbols",
            KeywordType::CharacterString => {
                "a `character_string` value holds only ASCII letters, digits and symbols"
            }
            KeywordType::Time => "a `time` value is a 24-hour time (hh:mm), a date, or both",
            KeywordType::Date => {
                "a `date` value is a date (2019年10月1日 or 2019-10-01), optionally with a time"
            }
            KeywordType::Amount => {
                "an `amount` value is an optional currency symbol, digits with an optional decimal point, an optional `元`"
            }
            KeywordType::PhoneNumber => "a `phone_number` value holds only digits and symbols",
            KeywordType::CarNumber => {
                "a `car_number` value is letters and digits, with a Chinese character allowed first and last"
            }
            KeywordType::Name => {
                "a `name` value is up to 10 Chinese characters, or up to 20 letters and symbols, without digits"
            }
            KeywordType::Phrase => "a `phrase` value holds only Chinese characters",
        }
    }
}

impl fmt::Display for KeywordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CJK ideograph (the basic block, extension A, compatibility ideographs, extensions B-F).
fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2EBEF}')
}

fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control()
}

/// Digits with at most one decimal point between digits.
fn is_decimal(s: &str) -> bool {
    let mut parts = s.split('.');
    let int = parts.next().unwrap_or_default();
    let frac = parts.next();
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    parts.next().is_none() && all_digits(int) && frac.is_none_or(all_digits)
}

fn is_amount(s: &str) -> bool {
    let s = s.strip_suffix('元').unwrap_or(s);
    let mut chars = s.chars();
    let body = match chars.next() {
        Some(c) if !c.is_ascii_digit() && is_symbol(c) => chars.as_str(),
        _ => s,
    };
    is_decimal(body) && body.bytes().filter(u8::is_ascii_digit).count() <= 10
}

fn is_car_number(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let last = chars.len().saturating_sub(1);
    chars
        .iter()
        .enumerate()
        .all(|(i, &c)| c.is_ascii_alphanumeric() || ((i == 0 || i == last) && is_han(c)))
}

fn is_name(s: &str, chars: usize) -> bool {
    if s.chars().any(|c| c.is_numeric()) {
        return false;
    }
    if s.chars().any(is_han) {
        chars <= 10
    } else {
        s.chars()
            .all(|c| c.is_alphabetic() || is_symbol(c) || c == ' ')
    }
}

/// One date-time, or two joined by `~`; `date_first`: the date is required (a `date`),
/// otherwise a date, a time or both (a `time`).
fn is_date_time(s: &str, date_first: bool) -> bool {
    let mut parts = s.split('~');
    let ok = |p: &str| {
        let (date, time) = split_date_time(p.trim());
        let date_ok = date.is_empty() && !date_first || is_date(date);
        let time_ok = time.is_empty() || is_time(time);
        (!date.is_empty() || !time.is_empty()) && date_ok && time_ok
    };
    let first = parts.next().is_some_and(ok);
    let second = parts.next().is_none_or(ok);
    first && second && parts.next().is_none()
}

/// Splits `2019年10月1日 15:01` into the date and the time (the digits before the first `:`
/// and what follows).
fn split_date_time(s: &str) -> (&str, &str) {
    let Some(colon) = s.find(':') else {
        return (s, "");
    };
    let start = s[..colon]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + s[i..].chars().next().map_or(1, char::len_utf8));
    (s[..start].trim(), &s[start..])
}

fn number_in(s: &str, min: u32, max: u32, max_digits: usize) -> bool {
    !s.is_empty()
        && s.len() <= max_digits
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|n| (min..=max).contains(&n))
}

/// `H:MM` or `H:MM:SS`, 24-hour.
fn is_time(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    matches!(parts.len(), 2 | 3)
        && number_in(parts[0], 0, 23, 2)
        && parts[1..]
            .iter()
            .all(|p| p.len() == 2 && number_in(p, 0, 59, 2))
}

/// `2019年10月1日`, `2019-10-01`, `2019/10/01` or `2019.10.01`.
fn is_date(s: &str) -> bool {
    let fields: Vec<&str> = match s.strip_suffix('日') {
        Some(rest) => rest.split(['年', '月']).collect(),
        None => s.split(['-', '/', '.']).collect(),
    };
    fields.len() == 3
        && fields[0].len() == 4
        && number_in(fields[0], 1, 9999, 4)
        && number_in(fields[1], 1, 12, 2)
        && number_in(fields[2], 1, 31, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(t: KeywordType, values: &[&str]) {
        for v in values {
            assert_eq!(t.check(v), Ok(()), "{t} {v:?}");
        }
    }

    fn bad(t: KeywordType, values: &[&str]) {
        for v in values {
            assert!(t.check(v).is_err(), "{t} {v:?} should be refused");
        }
    }

    #[test]
    fn names_and_keys() {
        for t in KeywordType::ALL {
            assert_eq!(KeywordType::parse(t.as_str()), Some(t));
            assert_eq!(KeywordType::of_key(&format!("{t}7")), Some(t));
        }
        assert_eq!(
            KeywordType::of_key("character_string12"),
            Some(KeywordType::CharacterString)
        );
        assert_eq!(KeywordType::of_key("thing"), None, "no number");
        assert_eq!(KeywordType::of_key("keyword1"), None, "not a type");
        assert_eq!(KeywordType::of_key("1"), None);
    }

    #[test]
    fn each_type_follows_its_documented_rule() {
        use KeywordType as K;
        ok(
            K::Thing,
            &[
                "巧克力",
                "Order #1001 shipped",
                "一二三四五六七八九十一二三四五六七八九十",
            ],
        );
        bad(
            K::Thing,
            &["", "一二三四五六七八九十一二三四五六七八九十一", "a\nb"],
        );
        ok(
            K::Number,
            &["0", "39.8", "12345678901234567890123456789012"],
        );
        bad(
            K::Number,
            &[
                "3a",
                "1.2.3",
                ".5",
                "5.",
                "-1",
                "123456789012345678901234567890123",
            ],
        );
        ok(K::Letter, &["abc", "ABCxyz"]);
        bad(K::Letter, &["ab1", "ab c", "ä"]);
        ok(K::Symbol, &["%", "+-*/", "…！"]);
        bad(K::Symbol, &["a", "1", "%%%%%%", " "]);
        ok(K::CharacterString, &["SF1234567890", "A-1_b#2"]);
        bad(
            K::CharacterString,
            &["a b", "单号1", "123456789012345678901234567890123"],
        );
        ok(
            K::Time,
            &[
                "15:01",
                "9:05:59",
                "2019年10月1日 15:01",
                "2019-10-01 15:01",
                "15:01~16:30",
                "2019年10月1日 15:01 ~ 2019年10月1日 16:01",
            ],
        );
        ok(K::Time, &["2019年8月8日"]);
        bad(
            K::Time,
            &["24:00", "15:60", "15", "15:01~", "1:2", "15:01~16:00~17:00"],
        );
        ok(
            K::Date,
            &[
                "2019年10月1日",
                "2019-10-01",
                "2019/10/1 15:01",
                "2019年10月1日~2019年10月3日",
                "2019年10月1日 15:01",
            ],
        );
        bad(
            K::Date,
            &["15:01", "2019年13月1日", "19-10-01", "2019-10", "tomorrow"],
        );
        ok(
            K::Amount,
            &["¥39.80", "39.8元", "$100", "1234567890", "￥8.88元"],
        );
        bad(K::Amount, &["12345678901", "¥", "39.8.1", "¥¥1", "1,000"]);
        ok(
            K::PhoneNumber,
            &["+86-0766-66888866", "13800138000", "(010) 1234"],
        );
        bad(K::PhoneNumber, &["call 911", "+86-0766-668888661"]);
        ok(K::CarNumber, &["粤A8Z888挂", "粤A12345", "AB1234"]);
        bad(K::CarNumber, &["粤A8Z8888挂", "A粤1234", "粤A-1234"]);
        ok(
            K::Name,
            &["张三", "欧阳娜娜Lee", "John Smith", "O'Neil-Jones"],
        );
        bad(
            K::Name,
            &[
                "张三1",
                "一二三四五六七八九十一",
                "Agent 007",
                "abcdefghijklmnopqrstu",
            ],
        );
        ok(K::Phrase, &["配送中", "已发货"]);
        bad(K::Phrase, &["配送中了吧啊", "ok", "配送 中"]);
    }

    #[test]
    fn reasons_never_carry_the_value() {
        let e = KeywordType::Thing
            .check("SECRET-VALUE-over-twenty-chars")
            .expect_err("long");
        assert!(!e.contains("SECRET"));
    }
}
