//! The XML of pushes and replies: a small element tree read with quick-xml (DTDs and custom
//! entities refused, depth bounded) and CDATA-safe writing.

use quick_xml::Reader;
use quick_xml::events::{BytesCData, Event};

use super::PushError;

/// Deepest nesting accepted. WeChat's deepest push (`PUBLISHJOBFINISH`) nests 5 levels; the
/// bound keeps a hostile body from building a tree whose drop recurses without end.
const MAX_DEPTH: usize = 16;

/// One XML element of a push: its name, its text (CDATA and plain text alike) and its children
/// in document order. Unknown messages keep every field this way, nested ones included.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Element {
    /// The element name (`Content`, `MsgId`, `item`, ...).
    pub name: String,
    /// The text of a leaf element (empty for an element with children).
    pub text: String,
    /// Child elements, in document order (repeated names stay repeated).
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name`.
    #[must_use]
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name` (one or many `<List>` or `<item>` alike).
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child named `name`, if present.
    #[must_use]
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.text_of(name).map(str::to_owned)
    }

    /// A number in a child; `None` when absent or not a number (WeChat sends numbers both bare
    /// and in CDATA, so surrounding whitespace is ignored).
    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.text_of(name).and_then(|t| t.trim().parse().ok())
    }
}

/// Parses a push body (or a decrypted message) into its `<xml>` root element.
pub(crate) fn parse(body: &[u8]) -> Result<Element, PushError> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().check_end_names = true;
    // Open elements, each with whether it held CDATA (then its text is kept verbatim; plain
    // text alone is trimmed, as numbers arrive indented).
    let mut stack: Vec<(Element, bool)> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|_| PushError::MalformedXml)?;
        match event {
            Event::DocType(_) => return Err(PushError::DtdOrEntity),
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(PushError::MalformedXml);
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(PushError::MalformedXml);
                }
                let name = name_of(start.local_name().as_ref())?;
                stack.push((
                    Element {
                        name,
                        ..Element::default()
                    },
                    false,
                ));
            }
            Event::Empty(start) => {
                let name = name_of(start.local_name().as_ref())?;
                close(
                    &mut stack,
                    &mut root,
                    Element {
                        name,
                        ..Element::default()
                    },
                );
            }
            Event::End(_) => {
                let (mut element, had_cdata) = stack.pop().ok_or(PushError::MalformedXml)?;
                if !element.children.is_empty() {
                    element.text.clear();
                } else if !had_cdata {
                    let trimmed = element.text.trim();
                    if trimmed.len() != element.text.len() {
                        element.text = trimmed.to_owned();
                    }
                }
                close(&mut stack, &mut root, element);
            }
            Event::Text(text) => {
                let content = text.xml10_content().map_err(|_| PushError::MalformedXml)?;
                // Whitespace between tags or around a CDATA section is layout, not content.
                if !content.trim().is_empty() {
                    let (open, _) = stack.last_mut().ok_or(PushError::MalformedXml)?;
                    open.text.push_str(&content);
                }
            }
            Event::CData(data) => {
                let content = data.xml10_content().map_err(|_| PushError::MalformedXml)?;
                let (open, had_cdata) = stack.last_mut().ok_or(PushError::MalformedXml)?;
                open.text.push_str(&content);
                *had_cdata = true;
            }
            Event::GeneralRef(reference) => {
                let (open, _) = stack.last_mut().ok_or(PushError::MalformedXml)?;
                if reference.is_char_ref() {
                    let ch = reference
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .ok_or(PushError::MalformedXml)?;
                    open.text.push(ch);
                } else {
                    let name = reference.decode().map_err(|_| PushError::MalformedXml)?;
                    let resolved = quick_xml::escape::resolve_xml_entity(&name)
                        .ok_or(PushError::DtdOrEntity)?;
                    open.text.push_str(resolved);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    match (root, stack.is_empty()) {
        (Some(root), true) if root.name == "xml" => Ok(root),
        _ => Err(PushError::MalformedXml),
    }
}

fn name_of(raw: &[u8]) -> Result<String, PushError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| PushError::MalformedXml)
}

fn close(stack: &mut [(Element, bool)], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some((parent, _)) => parent.children.push(element),
        None => *root = Some(element),
    }
}

/// Writes `<name><![CDATA[text]]></name>`; a `]]>` inside `text` is split across two CDATA
/// sections and characters XML 1.0 forbids (most C0 controls, U+FFFE, U+FFFF) are dropped, so
/// user content can never break the reply.
pub(crate) fn cdata(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    let clean: std::borrow::Cow<'_, str> = if text.chars().all(xml_char) {
        text.into()
    } else {
        text.chars()
            .filter(|&c| xml_char(c))
            .collect::<String>()
            .into()
    };
    for part in BytesCData::escaped(&clean) {
        out.push_str("<![CDATA[");
        out.push_str(&String::from_utf8_lossy(&part.into_inner()));
        out.push_str("]]>");
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Writes `<name>number</name>`.
pub(crate) fn number(out: &mut String, name: &str, value: impl std::fmt::Display) {
    use std::fmt::Write as _;
    let _ = write!(out, "<{name}>{value}</{name}>");
}

fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}
