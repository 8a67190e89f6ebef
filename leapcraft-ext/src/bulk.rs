//! Reading many devices at once: a call per device with bounded concurrency, started while the
//! device list is still arriving. Each call runs as a tokio task of its own, so that on a
//! multi-threaded runtime the responses of many calls are read and decoded on every thread,
//! not only on the one that polls the stream.

use futures::future::Either;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::task::spawned;
use crate::{Client, Error, PhysicalId, Reading};

/// How many requests the bulk helpers keep in flight unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Devices per request when every device is listed: one request per thousand devices.
const LIST_PAGE_SIZE: i64 = 1000;

/// What [`Client::fetch_each`] yields: each device with the result of its call, or the
/// failure of the device ids.
type PerDevice<T> = BoxStream<'static, Result<(PhysicalId, Result<T, Error>), Error>>;

impl Client {
    /// The latest reading of each device, with at most `concurrency` requests in flight
    /// (0 counts as 1). Results come as they complete, not in input order; one device failing
    /// does not stop the others. Each call is a tokio task of its own, as with
    /// [`fetch_each`](Self::fetch_each).
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// # async fn run(client: leapcraft_ext::Client) {
    /// let ids = ["D2:C1:AA:FF:3E:09", "0123555235565de1ee"];
    /// let mut readings = client.latest_many(ids, leapcraft_ext::DEFAULT_CONCURRENCY);
    /// while let Some((id, result)) = readings.next().await {
    ///     match result {
    ///         Ok(reading) => println!("{id}: {:?} °C", reading.temperature),
    ///         Err(e) => eprintln!("{id}: {e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn latest_many<I>(
        &self,
        ids: I,
        concurrency: usize,
    ) -> BoxStream<'static, (PhysicalId, Result<Reading, Error>)>
    where
        I: IntoIterator,
        I::Item: Into<PhysicalId>,
    {
        let ids: Vec<Result<PhysicalId, Error>> = ids.into_iter().map(|id| Ok(id.into())).collect();
        let ids = futures::stream::iter(ids);
        self.fetch_each(ids, concurrency, |client, id| async move {
            client.latest(id).await
        })
        // The ids cannot fail: every item is a device's.
        .filter_map(|item| std::future::ready(item.ok()))
        .boxed()
    }

    /// The latest reading of every device of the account, reading while the list arrives:
    /// [`fetch_each`](Self::fetch_each) over [`device_ids`](Self::device_ids). If the list
    /// fails midway, the readings of the devices listed so far come first, then the error.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let mut readings = client.latest_for_all_devices(32);
    /// while let Some((id, reading)) = readings.try_next().await? {
    ///     println!("{id}: {:?}", reading.map(|r| r.temperature));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn latest_for_all_devices(&self, concurrency: usize) -> PerDevice<Reading> {
        self.fetch_each(self.device_ids(), concurrency, |client, id| async move {
            client.latest(id).await
        })
    }

    /// The physical id of every device of the account, in list order, as the list arrives:
    /// a thousand devices per request, the next page requested while one is read.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let ids: Vec<_> = client.device_ids().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn device_ids(&self) -> BoxStream<'static, Result<PhysicalId, Error>> {
        self.devices()
            .page_size(LIST_PAGE_SIZE)
            .prefetch(1)
            .items()
            .map_ok(|device| device.physical_id)
            .boxed()
    }

    /// Calls `fetch` for each device of `ids`, at most `concurrency` calls at a time (0
    /// counts as 1), starting as the ids arrive: with [`device_ids`](Self::device_ids), the
    /// first calls start with the first page of the device list.
    ///
    /// Each item is a device and the result of its call, in the order calls complete; one
    /// device failing does not stop the others. Each call runs as a task of its own on the
    /// current tokio runtime (dropping the stream aborts the calls in flight; a panic in
    /// `fetch` resumes in the caller). An `Err` item is a failure of `ids` itself
    /// (the device list could not be read): the stream ends with it, and no call starts
    /// after it.
    ///
    /// ```no_run
    /// use futures::TryStreamExt;
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let mut readings = client.fetch_each(client.device_ids(), 32, |client, id| async move {
    ///     client.latest(id).await
    /// });
    /// while let Some((id, reading)) = readings.try_next().await? {
    ///     println!("{id}: {:?}", reading.map(|r| r.co2));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn fetch_each<S, F, Fut, T>(&self, ids: S, concurrency: usize, mut fetch: F) -> PerDevice<T>
    where
        S: Stream<Item = Result<PhysicalId, Error>> + Send + 'static,
        F: FnMut(Client, PhysicalId) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        let client = self.clone();
        ids.map(move |id| match id {
            Ok(id) => {
                let call = spawned("fetch_each", fetch(client.clone(), id.clone()));
                Either::Left(async move { Ok((id, call.await)) })
            }
            Err(e) => Either::Right(futures::future::ready(Err(e))),
        })
        .buffer_unordered(concurrency.max(1))
        .scan(false, |ended, item| {
            let next = (!*ended).then_some(item);
            *ended = matches!(next, Some(Err(_)));
            futures::future::ready(next)
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures::FutureExt;

    use super::*;

    fn client() -> Client {
        Client::builder().api_key("key").build().unwrap()
    }

    fn ids(n: usize) -> impl Stream<Item = Result<PhysicalId, Error>> + Send + 'static {
        futures::stream::iter((0..n).map(|i| Ok(PhysicalId::from(format!("dev-{i}")))))
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_stream_aborts_the_calls_in_flight() {
        let (started, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, f) = (started.clone(), finished.clone());
        let mut each = client().fetch_each(ids(10), 4, move |_, id| {
            let (s, f) = (s.clone(), f.clone());
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                if id.as_str() != "dev-0" {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                f.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let (id, result) = each.try_next().await.unwrap().unwrap();
        assert_eq!((id.as_str(), result.is_ok()), ("dev-0", true));
        drop(each);
        tokio::time::sleep(Duration::from_secs(7200)).await;
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the other calls never finish"
        );
        assert!(
            started.load(Ordering::SeqCst) <= 5,
            "no call starts after the drop"
        );
    }

    #[tokio::test]
    async fn a_panic_in_a_call_resumes_in_the_caller() {
        let mut each = client().fetch_each(ids(3), 2, |_, id| async move {
            if id.as_str() == "dev-1" {
                panic!("the fetch of dev-1 panicked");
            }
            Ok(())
        });
        let drained = std::panic::AssertUnwindSafe(async {
            while each.try_next().await.unwrap().is_some() {}
        })
        .catch_unwind()
        .await;
        let panic = drained.expect_err("the panic reaches the caller");
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"the fetch of dev-1 panicked")
        );
    }
}
