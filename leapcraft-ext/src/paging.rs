//! [`Pager`]: the API's three ways of paging (page + limit, offset + limit, limit alone)
//! behind one type that gives a stream of items, a stream of pages, or everything collected.
//!
//! A stream ends on a short or empty page. A list may change while it is read (a live
//! account gains and loses devices and notifications at the front), so consecutive requests
//! overlap by a few items, and items are merged by a stable key (the physical id, the
//! notification id): an item present for the whole listing is delivered once, never missed
//! and never repeated; one added or removed meanwhile may appear or not. A request that shares
//! no item with the one before has seen the list shift by more than the overlap: it is read
//! again with a larger overlap, back to the start if need be. A list that keeps shifting past
//! repair, or a server that ignores the paging parameters (full pages of nothing new, a few
//! in a row), ends the stream with [`Error::Pagination`], never with a gap.
//!
//! Devices are paged by number (`page`, `limit`), so an overlapping request asks for a page of
//! a slightly smaller size, whose start falls where the overlap needs it.

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

/// A key that tells items apart, for merging overlapping pages: a hash of the id.
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
    /// notifications); device requests after the first vary between half and twice this, so
    /// that they overlap the one before (see the module docs); `-1` asks for the whole list in one request where the API allows it
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
        let first = PageRequest {
            offset: self.skip,
            limit,
        };
        Ok(PageState {
            operation: op,
            fetch: self.fetch,
            key: self.key,
            scheme: self.scheme,
            single_request: self.scheme == Scheme::FirstOnly || limit == -1,
            limit,
            skip: self.skip,
            overlap: overlap_for(limit),
            window: self.prefetch + 1,
            remaining: self.max_items,
            next: Some(first),
            in_flight: FuturesOrdered::new(),
            last: None,
            seen: HashSet::new(),
            reads: 0,
            repairs: 0,
            repairs_in_all: 0,
            idle_pages: 0,
            done: self.max_items == Some(0),
        })
    }
}

/// The most times in a row a listing reads again after the list shifted past the overlap.
const MAX_REPAIRS: u32 = 8;
/// The most times one listing reads again, in all.
const MAX_REPAIRS_IN_ALL: u32 = 32;
/// The most full pages in a row that bring nothing new: a server that ignores the paging
/// parameters, or a list growing at the front faster than it is read.
const MAX_IDLE_PAGES: u32 = 3;

/// Items two consecutive requests of `limit` items share: a twentieth of a page, at least one
/// (none for pages of one item, which cannot overlap and still move on).
fn overlap_for(limit: i64) -> u64 {
    if limit >= 2 {
        (limit as u64 / 20).max(1)
    } else {
        0
    }
}

/// A page and the request it answers.
type Answer<T> = (PageRequest, Result<Vec<T>, Error>);

/// The state of a page stream between pages.
struct PageState<T> {
    operation: &'static str,
    fetch: Fetch<T>,
    key: fn(&T) -> Option<u64>,
    scheme: Scheme,
    single_request: bool,
    /// Items per request, as configured.
    limit: i64,
    skip: u64,
    overlap: u64,
    window: usize,
    remaining: Option<usize>,
    /// The request to start next, if the list may go on.
    next: Option<PageRequest>,
    in_flight: FuturesOrdered<BoxFuture<'static, Answer<T>>>,
    /// The last request whose page was taken, and the keys of that page.
    last: Option<(PageRequest, Vec<u64>)>,
    seen: HashSet<u64>,
    /// Pages taken so far.
    reads: u64,
    /// Repairs since a page last continued the one before.
    repairs: u32,
    repairs_in_all: u32,
    /// Full pages in a row that brought nothing new.
    idle_pages: u32,
    done: bool,
}

impl<T: Send + 'static> PageState<T> {
    async fn next(mut self) -> Option<(Result<Vec<T>, Error>, Self)> {
        loop {
            if self.done {
                return None;
            }
            self.fill();
            let (request, page) = self.in_flight.next().await?;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    self.finish();
                    return Some((Err(e), self));
                }
            };
            let keys: Vec<u64> = page.iter().filter_map(self.key).collect();
            if let Some((previous, previous_keys)) = &self.last
                && !self.continues(previous_keys, request, &keys)
            {
                // The list shifted by more than the overlap: this page may have skipped items.
                if let Err(e) = self.repair(*previous) {
                    return Some((Err(e), self));
                }
                continue;
            }
            self.repairs = 0;
            self.reads += 1;
            // The same items again for another request: a server that ignores the paging
            // parameters, unless the list moved by just as much (then reading on finds more).
            let again = self.last.as_ref().is_some_and(|(previous, previous_keys)| {
                previous.offset != request.offset && !keys.is_empty() && *previous_keys == keys
            });
            let full = self.limit >= 1 && page.len() as i64 >= request.limit;
            if (!full && !again) || self.single_request {
                self.finish();
            }
            self.last = Some((request, keys));
            let seen = &mut self.seen;
            let key = self.key;
            let mut page: Vec<T> = page
                .into_iter()
                .filter(|item| key(item).is_none_or(|k| seen.insert(k)))
                .collect();
            if (full || again) && page.is_empty() {
                self.idle_pages += 1;
                if self.idle_pages >= MAX_IDLE_PAGES {
                    self.finish();
                    return Some((Err(self.pagination_error()), self));
                }
            } else {
                self.idle_pages = 0;
            }
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

    /// Whether the page of `request` (with `keys`) continues the page before (with
    /// `previous_keys`): it shares an item with it, or nothing can come before it. From the item they share on, the list
    /// is read without a gap, whatever was added or removed before it.
    fn continues(&self, previous_keys: &[u64], request: PageRequest, keys: &[u64]) -> bool {
        if request.offset <= self.skip || self.overlap == 0 || previous_keys.is_empty() {
            return true;
        }
        let previous: HashSet<&u64> = previous_keys.iter().collect();
        keys.iter().any(|k| previous.contains(k))
    }

    /// Reads again after `previous` with a larger overlap (twice as large for each repair in
    /// a row, back to the start if need be), and overlaps more from now on: a list that
    /// shifted this much will shift again.
    fn repair(&mut self, previous: PageRequest) -> Result<(), Error> {
        self.repairs += 1;
        self.repairs_in_all += 1;
        if self.repairs > MAX_REPAIRS || self.repairs_in_all > MAX_REPAIRS_IN_ALL {
            self.finish();
            return Err(self.pagination_error());
        }
        self.in_flight = FuturesOrdered::new();
        self.overlap = (self.overlap * 2).min((self.limit.max(2) as u64 / 2).max(1));
        let overlap = self.overlap.saturating_mul(1 << (self.repairs - 1).min(32));
        let end = previous.offset + previous.limit.max(0) as u64;
        self.next = Some(
            self.ending_near(end, overlap, self.skip, 0)
                .unwrap_or(PageRequest {
                    offset: self.skip,
                    limit: self.limit,
                }),
        );
        Ok(())
    }

    fn pagination_error(&self) -> Error {
        Error::Pagination {
            operation: self.operation,
            page: self.reads,
        }
    }

    /// Starts page requests until `window` are in flight.
    fn fill(&mut self) {
        while self.in_flight.len() < self.window {
            let Some(request) = self.next else { return };
            // Don't ask for pages beyond the maximum number of items.
            if let Some(remaining) = self.remaining {
                let ahead = self.in_flight.len() as u64 * self.limit.max(1) as u64;
                if ahead >= remaining as u64 {
                    return;
                }
            }
            // A task of its own: a page fetched ahead goes on while the stream is not polled.
            let page = spawned(self.operation, (self.fetch)(request));
            self.in_flight
                .push_back(Box::pin(async move { (request, page.await) }));
            self.next = if self.single_request {
                None
            } else {
                Some(self.after(request))
            };
        }
    }

    /// The request after `previous`: overlapping it by [`overlap_for`] items where the scheme
    /// allows, else right after it. Either way it reaches at least half a page further.
    fn after(&self, previous: PageRequest) -> PageRequest {
        let end = previous.offset + previous.limit.max(0) as u64;
        let progress = (self.limit.max(1) as u64 / 2).max(1);
        self.ending_near(end, self.overlap, previous.offset + 1, end + progress)
            .or_else(|| self.ending_near(end, self.overlap, self.skip, end + 1))
            .unwrap_or(PageRequest {
                offset: end,
                limit: previous.limit,
            })
    }

    /// The request that starts as late as possible but `overlap` items before `end`, not
    /// before `floor`, and ends at `min_end` or later; for lists paged by number, of a size
    /// between half a page and two whose multiple the start is. `None` if there is none.
    fn ending_near(&self, end: u64, overlap: u64, floor: u64, min_end: u64) -> Option<PageRequest> {
        let want = end.checked_sub(overlap).filter(|&w| w >= floor)?;
        match self.scheme {
            Scheme::Offsets { .. } => Some(PageRequest {
                offset: want,
                limit: self.limit,
            }),
            Scheme::FirstOnly => None,
            Scheme::Pages => {
                // Of the sizes from half a page to two (and a few more, for small pages, whose
                // multiples are sparse), the one whose start shares the
                // fewest items beyond the overlap (then the nearest to a page): few requests,
                // little read twice. Reaching `min_end` comes first; then any progress.
                let limit = self.limit.max(1) as u64;
                let start = |size: u64| want / size * size;
                let sizes =
                    || (limit.div_ceil(2)..=limit * 2 + 16).filter(|&size| start(size) >= floor);
                let best = |min_end: u64| {
                    sizes()
                        .filter(|&size| start(size) + size >= min_end)
                        .min_by_key(|&size| (want - start(size), size.abs_diff(limit)))
                };
                let size = best(min_end).or_else(|| best(end + 1))?;
                Some(PageRequest {
                    offset: start(size),
                    limit: size as i64,
                })
            }
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.next = None;
        self.in_flight = FuturesOrdered::new();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use futures::FutureExt;

    use super::*;

    /// A list that changes after every request: `remove` items leave its front, `add` new
    /// ones arrive there.
    struct Live {
        items: VecDeque<u64>,
        next: u64,
        remove: usize,
        add: usize,
        removed: HashSet<u64>,
    }

    /// Reads a list of `n` items changing as `remove` and `add` say, `limit` a page in
    /// `scheme` with `prefetch`; returns what was read and the items removed meanwhile.
    async fn read_live(
        scheme: Scheme,
        n: u64,
        limit: i64,
        prefetch: usize,
        (remove, add): (usize, usize),
    ) -> (Result<Vec<u64>, Error>, HashSet<u64>, u64) {
        let live = Arc::new(Mutex::new(Live {
            items: (0..n).collect(),
            next: n,
            remove,
            add,
            removed: HashSet::new(),
        }));
        let list = live.clone();
        let pager = Pager::new(
            "list_test",
            scheme,
            limit,
            |&i: &u64| key_of(i),
            move |page| {
                let mut live = list.lock().unwrap();
                let limit = if page.limit < 0 {
                    usize::MAX
                } else {
                    page.limit as usize
                };
                let found: Vec<u64> = live
                    .items
                    .iter()
                    .skip(page.offset as usize)
                    .take(limit)
                    .copied()
                    .collect();
                for _ in 0..live.remove {
                    if let Some(gone) = live.items.pop_front() {
                        live.removed.insert(gone);
                    }
                }
                for _ in 0..live.add {
                    let id = live.next;
                    live.next += 1;
                    live.items.push_front(id);
                }
                async move { Ok(found) }.boxed()
            },
        );
        let read = pager.prefetch(prefetch).collect().await;
        let live = live.lock().unwrap();
        (read, live.removed.clone(), live.next)
    }

    /// Every item present for the whole listing read once, nothing read twice.
    fn check(read: &[u64], removed: &HashSet<u64>, n: u64) {
        let mut once = HashSet::new();
        for &i in read {
            assert!(once.insert(i), "{i} read twice");
        }
        let missed: Vec<u64> = (0..n)
            .filter(|i| !removed.contains(i) && !once.contains(i))
            .collect();
        assert!(
            missed.is_empty(),
            "missed {} items: {:?}",
            missed.len(),
            &missed[..missed.len().min(10)]
        );
    }

    const PAGES: Scheme = Scheme::Pages;
    const OFFSETS: Scheme = Scheme::Offsets { max_limit: 50 };

    #[tokio::test]
    async fn a_list_shrinking_at_the_front_loses_nothing_present_throughout() {
        for (scheme, limit, prefetches) in [
            (PAGES, 1000, [0, 3]),
            (PAGES, 100, [0, 3]),
            (OFFSETS, 50, [0, 3]),
            // Pages of 7 can overlap by 3 at most: more than the shift of the 3 requests
            // fetched ahead and dropped on a repair.
            (PAGES, 7, [0, 2]),
        ] {
            for prefetch in prefetches {
                let (read, removed, _) = read_live(scheme, 2_500, limit, prefetch, (1, 0)).await;
                let read = read.unwrap_or_else(|e| panic!("{scheme:?} {limit}: {e}"));
                check(&read, &removed, 2_500);
            }
        }
    }

    #[tokio::test]
    async fn a_list_growing_at_the_front_repeats_nothing_and_finishes() {
        for (scheme, limit) in [(PAGES, 1000), (OFFSETS, 50), (PAGES, 3)] {
            let (read, removed, _) = read_live(scheme, 2_500, limit, 2, (0, 1)).await;
            check(&read.unwrap(), &removed, 2_500);
        }
    }

    #[tokio::test]
    async fn a_shift_larger_than_the_overlap_is_read_again() {
        // 120 leave after each request: far more than the 50 a page of 1,000 overlaps by.
        let (read, removed, _) = read_live(PAGES, 3_000, 1000, 0, (120, 0)).await;
        check(&read.unwrap(), &removed, 3_000);
        let (read, removed, _) = read_live(OFFSETS, 1_000, 50, 0, (10, 3)).await;
        check(&read.unwrap(), &removed, 1_000);
    }

    #[tokio::test]
    async fn a_list_shrinking_faster_than_it_is_read_loses_nothing_present_throughout() {
        let (read, removed, _) = read_live(PAGES, 100_000, 100, 0, (5_000, 0)).await;
        check(&read.unwrap(), &removed, 100_000);
    }

    #[tokio::test]
    async fn a_list_growing_faster_than_it_is_read_is_an_error_never_a_gap() {
        // Three pages arrive at the front for each page read: the items that were there
        // at the start are never reached.
        let (read, _, _) = read_live(PAGES, 1_000, 100, 0, (0, 300)).await;
        assert!(
            matches!(
                read,
                Err(Error::Pagination {
                    operation: "list_test",
                    ..
                })
            ),
            "{:?}",
            read.map(|r| r.len())
        );
    }
}
