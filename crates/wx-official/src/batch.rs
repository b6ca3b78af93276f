//! The offset/count lists shared by `material/batchget_material`, `draft/batchget` and
//! `freepublish/batchget`: one page shape, one argument rule, one cursor rule.

use serde::{Deserialize, Serialize};
use wx_core::{Error, InvalidInput, Result};

use crate::paging::{Cursor, Page};

/// Most items WeChat returns per page of these lists.
pub const MAX_BATCH_COUNT: u32 = 20;

/// One page of an offset/count list.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct BatchPage<T> {
    /// How many items the whole list holds.
    #[serde(default)]
    pub total_count: u64,
    /// How many items this page holds.
    #[serde(default)]
    pub item_count: u64,
    /// The items.
    #[serde(default = "Vec::new")]
    pub item: Vec<T>,
}

/// The window of a batchget request: where it starts and how many items it asks for.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) offset: u64,
    pub(crate) count: u32,
}

impl Window {
    pub(crate) fn first() -> Self {
        Window {
            offset: 0,
            count: MAX_BATCH_COUNT,
        }
    }

    pub(crate) fn check(self) -> Result<()> {
        if (1..=MAX_BATCH_COUNT).contains(&self.count) {
            Ok(())
        } else {
            Err(Error::InvalidInput(InvalidInput::new(
                "count",
                "must be 1 to 20",
            )))
        }
    }

    /// The window starting at `cursor` (same count).
    pub(crate) fn at(self, cursor: &Cursor) -> Self {
        match cursor {
            Cursor::Offset(offset) => Window {
                offset: *offset,
                ..self
            },
            _ => self,
        }
    }

    /// Splits an answer into a page whose next cursor is the offset after its items.
    pub(crate) fn page<T>(self, answer: BatchPage<T>) -> Page<T> {
        let next = self.offset + answer.item.len() as u64;
        Page::new(
            answer.item,
            Some(Cursor::Offset(next)),
            Some(answer.total_count),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_rules() {
        assert!(
            Window {
                offset: 0,
                count: 0
            }
            .check()
            .is_err()
        );
        assert!(
            Window {
                offset: 0,
                count: 21
            }
            .check()
            .is_err()
        );
        Window {
            offset: 5,
            count: 20,
        }
        .check()
        .expect("valid");
        let w = Window::first().at(&Cursor::Offset(40));
        assert_eq!(
            w,
            Window {
                offset: 40,
                count: 20
            }
        );
        let page = w.page(BatchPage {
            total_count: 43,
            item_count: 3,
            item: vec![1, 2, 3],
        });
        assert_eq!(page.next, Some(Cursor::Offset(43)));
        assert_eq!(page.total, Some(43));
    }
}
