//! One paging adapter for WeChat's cursors (`next_openid`, `begin_openid`, offset/count): a
//! [`futures::Stream`] of pages or of items that owns a client clone (so it is `Send +
//! 'static`), sends nothing until polled, and fetches page by page.
//!
//! The stream stops on the first of: an empty page; no cursor, an empty cursor or one seen
//! before (a cycle); or when the items seen reach the `total` WeChat reported (`user/get`
//! returns a non-empty `next_openid` on its last page, so the cursor alone would ask once more).

use std::collections::HashSet;

use futures::stream::{self, Stream, TryStreamExt as _};
use wx_core::{HttpTransport, Result, TokenStore};

use crate::client::OfficialAccount;
use crate::request::Request;

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cursor {
    /// An openid cursor (`next_openid` / `begin_openid`); empty means "no more".
    Openid(String),
    /// An item offset (`offset` of `batchget` calls).
    Offset(u64),
}

impl Cursor {
    fn is_end(&self) -> bool {
        matches!(self, Cursor::Openid(s) if s.is_empty())
    }
}

/// One page of a paged answer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Page<I> {
    /// The page's items.
    pub items: Vec<I>,
    /// Where the next page starts, as WeChat (or the offset arithmetic) says; `None`: no more.
    pub next: Option<Cursor>,
    /// The total WeChat reported, when it reports one.
    pub total: Option<u64>,
}

impl<I> Page<I> {
    /// A page of `items` with the cursor of the next page and the reported total.
    #[must_use]
    pub fn new(items: Vec<I>, next: Option<Cursor>, total: Option<u64>) -> Self {
        Page { items, next, total }
    }
}

/// A request whose answer is one page of a longer list.
///
/// Implementations say how an answer splits into a [`Page`] and how to ask for the page at a
/// cursor; the stop rules are the adapter's, written once.
pub trait Paged: Request + Clone + Send + Sync + 'static {
    /// One element of the list.
    type Item: Send + 'static;

    /// Splits this request's answer into a page (with the cursor of the next one).
    fn page_of(&self, answer: Self::Response) -> Page<Self::Item>;

    /// This request asking for the page that starts at `cursor`.
    #[must_use]
    fn at(&self, cursor: &Cursor) -> Self;
}

struct Walk<R> {
    next: Option<R>,
    seen_items: u64,
    seen_cursors: HashSet<Cursor>,
}

impl<T, S> OfficialAccount<T, S>
where
    T: HttpTransport + 'static,
    S: TokenStore + 'static,
{
    /// The pages of the list that `first` starts, fetched one by one as the stream is polled
    /// (nothing is sent before the first poll). Empty pages are not yielded. An error ends the
    /// stream after it is yielded.
    pub fn pages<R: Paged>(
        &self,
        first: R,
    ) -> impl Stream<Item = Result<Page<R::Item>>> + Send + 'static
    where
        R::Response: Send,
    {
        let client = self.clone();
        let walk = Walk {
            next: Some(first),
            seen_items: 0,
            seen_cursors: HashSet::new(),
        };
        stream::try_unfold(walk, move |mut walk| {
            let client = client.clone();
            async move {
                let Some(request) = walk.next.take() else {
                    return Ok(None);
                };
                let answer = client.send(&request).await?;
                let page = request.page_of(answer);
                if page.items.is_empty() {
                    return Ok(None);
                }
                walk.seen_items += page.items.len() as u64;
                let reached_total = page.total.is_some_and(|t| walk.seen_items >= t);
                walk.next = match &page.next {
                    Some(c)
                        if !reached_total && !c.is_end() && walk.seen_cursors.insert(c.clone()) =>
                    {
                        Some(request.at(c))
                    }
                    _ => None,
                };
                Ok(Some((page, walk)))
            }
        })
    }

    /// Every item of the list that `first` starts, fetched page by page as the stream is polled
    /// (see [`pages`](Self::pages) for when it stops).
    pub fn items<R: Paged>(&self, first: R) -> impl Stream<Item = Result<R::Item>> + Send + 'static
    where
        R::Response: Send,
    {
        self.pages(first)
            .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
            .try_flatten()
    }
}
