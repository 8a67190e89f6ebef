//! [`Pager`]: the API's three ways of paging (page + limit, offset + limit, limit alone)
//! behind one type that gives a stream of items, a stream of pages, or everything collected.
//!
//! A stream ends on a short or empty page. Items are delivered in order, exactly once: a page
//! that repeats an item of an earlier page (a server ignoring the paging parameters, or a list
//! changing while it is paged) ends the stream with [`Error::Pagination`].

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesOrdered};
use futures::{StreamExt, TryStreamExt};

use crate::Error;
use crate::task::spawned;

/// What one page request asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageRequest {
    /// How many items of the list come before this page.
    pub offset: u64,
    /// Items per page; `-1` asks for everything at once.
    pub limit: i64,
}

impl PageRequest {
    /// The 1-based page number, for lists paged by number (the offset is a multiple of the
    /// limit: [`Pager`] checks it).
    pub fn page_number(&self) -> std::num::NonZeroU64 {
        let page = if self.limit >= 1 {
            self.offset / self.limit as u64
        } else {
            0
        };
        std::num::NonZeroU64::MIN.saturating_add(page)
    }
}

/// How a list is paged on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `page` (from 1) and `limit`, `-1` for all: devices.
    Pages,
    /// `offset` and `limit`, with a cap: notifications.
    Offsets {
        /// The largest limit the API accepts.
        max_limit: i64,
    },
    /// `limit` alone, `-1` for all: only the first page exists (things).
    FirstOnly,
}

/// The most pages a [`Pager`] fetches ahead: past the end of a list, prefetched pages are
/// requests wasted, and a window without a bound would send them without end.
pub const MAX_PREFETCH: usize = 16;

type Fetch<T> = Arc<dyn Fn(PageRequest) -> BoxFuture<'static, Result<Vec<T>, Error>> + Send + Sync>;

/// A list of the API, to be read page by page.
///
/// Made by [`Client::devices`](crate::Client::devices),
/// [`Client::notifications`](crate::Client::notifications) and
/// [`Client::things`](crate::Client::things). Configure it, then read it with
/// [`items`](Self::items), [`pages`](Self::pages) or [`collect`](Self::collect).
///
/// ```no_run
/// use futures::TryStreamExt;
/// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
/// let mut devices = client.devices().page_size(500).prefetch(2).items();
/// while let Some(device) = devices.try_next().await? {
///     println!("{} {:?}", device.physical_id, device.kind);
/// }
/// # Ok(()) }
/// ```
#[must_use = "a pager does nothing until it is read"]
pub struct Pager<T> {
    operation: &'static str,
    fetch: Fetch<T>,
    key: fn(&T) -> Option<u64>,
    scheme: Scheme,
    page_size: i64,
    skip: u64,
    max_items: Option<usize>,
    prefetch: usize,
}

impl<T> std::fmt::Debug for Pager<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("operation", &self.operation)
            .field("page_size", &self.page_size)
            .field("max_items", &self.max_items)
            .field("prefetch", &self.prefetch)
            .finish_non_exhaustive()
    }
}

/// A key that tells items apart, for duplicate detection: a hash of the id.
pub(crate) fn key_of(id: impl Hash) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    Some(hasher.finish())
}

impl<T: Send + 'static> Pager<T> {
    pub(crate) fn new(
        operation: &'static str,
        scheme: Scheme,
        page_size: i64,
        key: fn(&T) -> Option<u64>,
        fetch: impl Fn(PageRequest) -> BoxFuture<'static, Result<Vec<T>, Error>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            operation,
            fetch: Arc::new(fetch),
            key,
            scheme,
            page_size,
            skip: 0,
            max_items: None,
            prefetch: 0,
        }
    }

    /// Items per request. Values above the API's cap are clamped to it (50 for
    /// notifications); `-1` asks for the whole list in one request where the API allows it
    /// (devices and things); `0` and other negative values are invalid input.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let devices = client.devices().page_size(1000).collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn page_size(mut self, size: i64) -> Self {
        self.page_size = size;
        self
    }

    /// Start after the first `items` items of the list. Notifications start at any offset;
    /// devices, paged by number, need a multiple of the page size (`skip(2 * size)` starts on
    /// page 3); things have only a first page. Anything else is invalid input.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// // Page 3 of 50 devices a page.
    /// let page = client.devices().page_size(50).skip(100).max_items(50).collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn skip(mut self, items: u64) -> Self {
        self.skip = items;
        self
    }

    /// Stop after this many items, however many pages that takes (or less than a page).
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let latest_alerts = client.notifications().max_items(10).collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn max_items(mut self, max: usize) -> Self {
        self.max_items = Some(max);
        self
    }

    /// Fetch up to `pages` pages ahead, concurrently, while the current one is consumed
    /// (at most [`MAX_PREFETCH`]: more is that many). Items still come in order, exactly
    /// once. `0` (the default) fetches one page at a time.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let all = client.devices().page_size(500).prefetch(3).collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn prefetch(mut self, pages: usize) -> Self {
        self.prefetch = pages.min(MAX_PREFETCH);
        self
    }

    /// The items, in order, one at a time.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let mut things = client.things().page_size(-1).items();
    /// while let Some(thing) = things.try_next().await? {
    ///     println!("{:?}", thing.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn items(self) -> BoxStream<'static, Result<T, Error>> {
        self.pages()
            .map_ok(|page| futures::stream::iter(page.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// Everything, collected into one vector.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let devices = client.devices().collect().await?;
    /// println!("{} devices", devices.len());
    /// # Ok(()) }
    /// ```
    pub async fn collect(self) -> Result<Vec<T>, Error> {
        self.pages()
            .try_fold(Vec::new(), |mut all, page| async move {
                all.extend(page);
                Ok(all)
            })
            .await
    }

    /// The pages, in order; never an empty one.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let mut pages = client.devices().page_size(200).pages();
    /// while let Some(page) = pages.try_next().await? {
    ///     println!("a page of {}", page.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pages(self) -> BoxStream<'static, Result<Vec<T>, Error>> {
        match self.plan() {
            Ok(state) => futures::stream::unfold(state, PageState::next).boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn plan(self) -> Result<PageState<T>, Error> {
        let op = self.operation;
        let all_allowed = !matches!(self.scheme, Scheme::Offsets { .. });
        let mut limit = match (self.page_size, self.scheme) {
            (-1, _) if all_allowed => -1,
            (size, Scheme::Offsets { max_limit }) if size >= 1 => size.min(max_limit),
            (size, _) if size >= 1 => size,
            (size, _) => {
                let all = if all_allowed { ", or -1 for all" } else { "" };
                return Err(Error::invalid(format!(
                    "{op}: page size {size} (use at least 1{all})"
                )));
            }
        };
        let skip_ok = match self.scheme {
            Scheme::Offsets { .. } => true,
            Scheme::Pages => {
                self.skip == 0 || (limit >= 1 && self.skip.is_multiple_of(limit as u64))
            }
            Scheme::FirstOnly => self.skip == 0,
        };
        if !skip_ok {
            return Err(Error::invalid(format!(
                "{op}: cannot start after {} items with pages of {limit}",
                self.skip
            )));
        }
        // Asking for fewer than a page: ask for just that many, unless that would move the
        // page boundaries of a list paged by number.
        if let Some(max) = self.max_items {
            let max = i64::try_from(max).unwrap_or(i64::MAX).max(1);
            if (limit == -1 || max < limit) && (self.skip == 0 || self.scheme != Scheme::Pages) {
                limit = max;
            }
        }
        Ok(PageState {
            operation: op,
            fetch: self.fetch,
            key: self.key,
            limit,
            skip: self.skip,
            single_request: self.scheme == Scheme::FirstOnly || limit == -1,
            window: self.prefetch + 1,
            remaining: self.max_items,
            next_index: 0,
            in_flight: FuturesOrdered::new(),
            seen: HashSet::new(),
            done: self.max_items == Some(0),
        })
    }
}

/// The state of a page stream between pages.
struct PageState<T> {
    operation: &'static str,
    fetch: Fetch<T>,
    key: fn(&T) -> Option<u64>,
    limit: i64,
    skip: u64,
    single_request: bool,
    window: usize,
    remaining: Option<usize>,
    next_index: u64,
    in_flight: FuturesOrdered<BoxFuture<'static, Result<Vec<T>, Error>>>,
    seen: HashSet<u64>,
    done: bool,
}

impl<T: Send + 'static> PageState<T> {
    async fn next(mut self) -> Option<(Result<Vec<T>, Error>, Self)> {
        loop {
            if self.done {
                return None;
            }
            self.fill();
            let page = match self.in_flight.next().await? {
                Ok(page) => page,
                Err(e) => {
                    self.finish();
                    return Some((Err(e), self));
                }
            };
            let index = self.next_index - self.in_flight.len() as u64 - 1;
            let full = self.limit >= 1 && page.len() as i64 >= self.limit;
            if !full || self.single_request {
                self.finish();
            }
            if let Err(e) = self.check_new(&page, index) {
                self.finish();
                return Some((Err(e), self));
            }
            let mut page = page;
            if let Some(remaining) = &mut self.remaining {
                page.truncate(*remaining);
                *remaining -= page.len();
                if *remaining == 0 {
                    self.finish();
                }
            }
            if !page.is_empty() {
                return Some((Ok(page), self));
            }
        }
    }

    /// Starts page requests until `window` are in flight.
    fn fill(&mut self) {
        while self.in_flight.len() < self.window {
            if self.single_request && self.next_index > 0 {
                return;
            }
            // Don't ask for pages beyond the maximum number of items.
            if let Some(remaining) = self.remaining {
                let ahead = self.in_flight.len() as u64 * self.limit.max(1) as u64;
                if ahead >= remaining as u64 {
                    return;
                }
            }
            let request = PageRequest {
                offset: self.skip + self.next_index * self.limit.max(0) as u64,
                limit: self.limit,
            };
            // A task of its own: a page fetched ahead goes on while the stream is not polled.
            self.in_flight
                .push_back(Box::pin(spawned(self.operation, (self.fetch)(request))));
            self.next_index += 1;
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.in_flight = FuturesOrdered::new();
    }

    fn check_new(&mut self, page: &[T], index: u64) -> Result<(), Error> {
        for item in page {
            if let Some(key) = (self.key)(item)
                && !self.seen.insert(key)
            {
                return Err(Error::Pagination {
                    operation: self.operation,
                    page: index + 1,
                });
            }
        }
        Ok(())
    }
}
