//! [`NotificationCursor`]: which notifications are new since the last look. The one answer
//! to "what is new" for every follower of the list: `follow_notifications`, the CLI's
//! `notifications --follow`, the exporter's poller and the MQTT bridge.
//!
//! The API lists notifications newest first, 50 at most a request. A poll reads pages from
//! the top until it meets a notification it knows: one whose id it read last time, or, when
//! all of those are gone (deleted), one older than the newest it knows. The new ones are
//! those above it. Notifications that arrive while a poll pages push the list down: items
//! read twice are merged by id, and what arrived is shown by the next poll. Only the ids at
//! the top of the list, where the next poll can meet them, are remembered, so memory stays
//! bounded however long a cursor is used.

use std::collections::HashSet;

use crate::notifications::MAX_NOTIFICATION_PAGE_SIZE;
use crate::{Client, Error, Notification, PhysicalId, Timestamp};

/// The most pages one poll reads: of a larger burst between two polls, the newest
/// `MAX_PAGES_PER_POLL × 50` are new.
pub const MAX_PAGES_PER_POLL: usize = 200;

/// Which notifications are new since the cursor last looked (see the module docs).
///
/// The first [`poll`](Self::poll) learns what exists and returns nothing, or the newest `n`
/// with [`with_backlog`](Self::with_backlog); each poll after returns the notifications that
/// arrived since, oldest first, each once, whatever was deleted meanwhile.
///
/// ```no_run
/// use std::time::Duration;
/// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
/// let mut cursor = leapcraft_ext::NotificationCursor::new().with_backlog(3);
/// loop {
///     for alert in cursor.poll(&client).await? {
///         println!("{}: {:?}", alert.id, alert.message);
///     }
///     tokio::time::sleep(Duration::from_secs(30)).await;
/// }
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct NotificationCursor {
    device: Option<PhysicalId>,
    known: Option<Known>,
    backlog: usize,
}

/// What a cursor knows of the list.
#[derive(Clone, Debug, Default)]
struct Known {
    /// The ids at the top of the list at the last poll.
    ids: HashSet<i64>,
    /// The newest time of any notification read.
    newest: Option<Timestamp>,
}

impl Known {
    fn is_older(&self, n: &Notification) -> bool {
        matches!((n.created_at, self.newest), (Some(at), Some(newest)) if at < newest)
    }
}

impl NotificationCursor {
    /// A cursor over the notifications of the whole account.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cursor over the notifications of one device.
    pub fn for_device(device: impl Into<PhysicalId>) -> Self {
        Self {
            device: Some(device.into()),
            ..Self::default()
        }
    }

    /// The first poll returns the newest `n` notifications (oldest first) instead of none.
    pub fn with_backlog(mut self, n: usize) -> Self {
        self.backlog = n.min(MAX_PAGES_PER_POLL * MAX_NOTIFICATION_PAGE_SIZE as usize);
        self
    }

    /// The notifications that are new since the last poll, oldest first. A failed poll
    /// changes nothing: the next one finds what this one would have.
    pub async fn poll(&mut self, client: &Client) -> Result<Vec<Notification>, Error> {
        let page = |offset: u64| {
            client
                .notifications_of(self.device.clone())
                .page_size(MAX_NOTIFICATION_PAGE_SIZE)
                .skip(offset)
                .max_items(MAX_NOTIFICATION_PAGE_SIZE as usize)
                .collect()
        };
        let (new, known) = poll_pages(page, self.known.as_ref(), self.backlog).await?;
        self.known = Some(known);
        Ok(new)
    }
}

/// One poll: reads the list from the top, a page of 50 at a time from `page(offset)`, until
/// a page holds a notification `known` knows (`None` on the first poll, which reads enough
/// pages for `backlog`, at least one). Returns the new notifications, oldest first, and what
/// is known after.
async fn poll_pages<F, Fut>(
    mut page: F,
    known: Option<&Known>,
    backlog: usize,
) -> Result<(Vec<Notification>, Known), Error>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Vec<Notification>, Error>>,
{
    let size = MAX_NOTIFICATION_PAGE_SIZE as usize;
    let first_pages = backlog.div_ceil(size).max(1);
    let mut window = Window::default();
    for k in 0..MAX_PAGES_PER_POLL {
        let found = page((k * size) as u64).await?;
        let full = found.len() >= size;
        let met_known = window.add_page(found, known);
        if met_known || !full || (known.is_none() && k + 1 >= first_pages) {
            break;
        }
    }
    Ok(window.finish(known, backlog))
}

/// The notifications one poll has read, in list order (newest first), each id once.
#[derive(Debug, Default)]
struct Window {
    items: Vec<Notification>,
    ids: HashSet<i64>,
}

impl Window {
    /// Adds a page; an item already read this poll (pushed down onto this page by a newer
    /// one) is skipped. Returns whether the page holds a notification `known` knows.
    fn add_page(&mut self, page: Vec<Notification>, known: Option<&Known>) -> bool {
        let mut met_known = false;
        for n in page {
            met_known |= known.is_some_and(|k| k.ids.contains(&n.id) || k.is_older(&n));
            if self.ids.insert(n.id) {
                self.items.push(n);
            }
        }
        met_known
    }

    /// The new notifications, oldest first, and what is known after. New are those above
    /// the first known id; if no known id is left (they were deleted), those above the first
    /// notification older than the newest known. On the first poll, the newest `backlog`.
    fn finish(self, known: Option<&Known>, backlog: usize) -> (Vec<Notification>, Known) {
        let mut items = self.items;
        let newest = items
            .iter()
            .filter_map(|n| n.created_at)
            .chain(known.and_then(|k| k.newest))
            .max();
        let boundary = match known {
            None => backlog.min(items.len()),
            Some(known) => items
                .iter()
                .position(|n| known.ids.contains(&n.id))
                .or_else(|| items.iter().position(|n| known.is_older(n)))
                .unwrap_or(items.len()),
        };
        let after = Known {
            ids: self.ids,
            newest,
        };
        items.truncate(boundary);
        items.reverse();
        (items, after)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A notification list, newest first, as the API pages it.
    #[derive(Default)]
    struct List {
        newest_first: VecDeque<i64>,
        next_id: i64,
    }

    impl List {
        fn raise(&mut self, n: usize) -> Vec<i64> {
            (0..n)
                .map(|_| {
                    self.next_id += 1;
                    self.newest_first.push_front(self.next_id);
                    self.next_id
                })
                .collect()
        }

        fn delete_newest(&mut self, n: usize) {
            self.newest_first.drain(..n.min(self.newest_first.len()));
        }

        fn page(&self, offset: u64) -> Vec<Notification> {
            self.newest_first
                .iter()
                .skip(offset as usize)
                .take(MAX_NOTIFICATION_PAGE_SIZE as usize)
                .map(|&id| notification(id))
                .collect()
        }
    }

    /// Notification `id`, raised `id` seconds after a fixed instant.
    fn notification(id: i64) -> Notification {
        let at = chrono::DateTime::from_timestamp(1_767_225_600 + id, 0).unwrap();
        serde_json::from_value(serde_json::json!({ "id": id, "created_at": at.to_rfc3339() }))
            .unwrap()
    }

    /// One poll of `list`; `raise_per_page` notifications arrive before each page request.
    fn poll(list: &mut List, top: Option<&Known>, raise_per_page: usize) -> (Vec<i64>, Known) {
        let list = std::cell::RefCell::new(list);
        let page = |offset| {
            let mut list = list.borrow_mut();
            list.raise(raise_per_page);
            std::future::ready(Ok(list.page(offset)))
        };
        let (new, top) = futures::executor::block_on(poll_pages(page, top, 0)).unwrap();
        (new.iter().map(|n| n.id).collect(), top)
    }

    #[test]
    fn each_new_notification_once_while_the_list_shifts_under_the_pages() {
        let mut list = List::default();
        list.raise(120);
        let (first, mut top) = poll(&mut list, None, 0);
        assert!(first.is_empty(), "the first poll only learns what exists");

        let mut yielded = Vec::new();
        let mut raised = Vec::new();
        // Bursts larger than a page, and one notification arriving before every page request.
        for burst in [0, 3, 49, 50, 51, 170, 1] {
            raised.extend(list.raise(burst));
            let (new, next_top) = poll(&mut list, Some(&top), 1);
            yielded.extend(new);
            top = next_top;
        }
        // What arrived during the last poll is shown by the next one.
        let (new, _) = poll(&mut list, Some(&top), 0);
        yielded.extend(new);
        let all_new: Vec<i64> = (121..=list.next_id).collect();
        assert_eq!(yielded, all_new, "each once, oldest first, none lost");
        assert!(raised.iter().all(|id| yielded.contains(id)));
    }

    #[test]
    fn memory_stays_bounded_over_many_polls() {
        let mut list = List::default();
        list.raise(10);
        let (_, mut top) = poll(&mut list, None, 0);
        let mut count = 0;
        for _ in 0..2_000 {
            list.raise(7);
            let (new, next_top) = poll(&mut list, Some(&top), 0);
            count += new.len();
            top = next_top;
            assert!(
                top.ids.len() <= 2 * MAX_NOTIFICATION_PAGE_SIZE as usize,
                "{}",
                top.ids.len()
            );
        }
        assert_eq!(count, 14_000);
    }

    #[test]
    fn a_poll_reads_a_bounded_number_of_pages() {
        let mut list = List::default();
        let (_, top) = poll(&mut list, None, 0);
        list.raise(MAX_PAGES_PER_POLL * 50 + 500);
        let (new, top) = poll(&mut list, Some(&top), 0);
        assert_eq!(new.len(), MAX_PAGES_PER_POLL * 50, "the newest ones");
        assert_eq!(new.last(), Some(&list.next_id));
        assert_eq!(top.ids.len(), new.len());
    }

    #[test]
    fn deleted_notifications_do_not_make_old_ones_new() {
        let mut list = List::default();
        list.raise(500);
        let (_, top) = poll(&mut list, None, 0);
        // Every notification the cursor knows is deleted, and one arrives.
        list.delete_newest(MAX_NOTIFICATION_PAGE_SIZE as usize);
        let raised = list.raise(1);
        let (new, top) = poll(&mut list, Some(&top), 0);
        assert_eq!(new, raised, "the new one only, not the 49 below it");
        list.delete_newest(3);
        let (new, _) = poll(&mut list, Some(&top), 0);
        assert!(new.is_empty(), "{new:?}");
    }

    #[test]
    fn a_backlog_gives_the_newest_first_time() {
        let mut list = List::default();
        list.raise(120);
        let size = MAX_NOTIFICATION_PAGE_SIZE as usize;
        let list = std::cell::RefCell::new(&mut list);
        let page = |offset| std::future::ready(Ok(list.borrow().page(offset)));
        let (new, known) = futures::executor::block_on(poll_pages(page, None, 70)).unwrap();
        let ids: Vec<i64> = new.iter().map(|n| n.id).collect();
        assert_eq!(
            ids,
            (51..=120).collect::<Vec<_>>(),
            "the newest 70, oldest first"
        );
        assert_eq!(known.ids.len(), 2 * size);
    }
}
