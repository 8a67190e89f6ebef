//! Reading many devices at once: a call per device with bounded concurrency, started while the
//! device list is still arriving.

use futures::future::Either;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};

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
    /// does not stop the others.
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
        let client = self.clone();
        let ids: Vec<PhysicalId> = ids.into_iter().map(Into::into).collect();
        futures::stream::iter(ids)
            .map(move |id: PhysicalId| {
                let client = client.clone();
                async move {
                    let result = client.latest(id.clone()).await;
                    (id, result)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .boxed()
    }

    /// The latest reading of every device of the account: lists the devices (failing if
    /// that fails), then streams as [`latest_many`](Self::latest_many). To start reading
    /// while the list is still arriving, use [`fetch_each`](Self::fetch_each) with
    /// [`device_ids`](Self::device_ids).
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let readings: Vec<_> = client.latest_for_all_devices(32).await?.collect().await;
    /// # Ok(()) }
    /// ```
    pub async fn latest_for_all_devices(
        &self,
        concurrency: usize,
    ) -> Result<BoxStream<'static, (PhysicalId, Result<Reading, Error>)>, Error> {
        let ids: Vec<PhysicalId> = self.device_ids().try_collect().await?;
        Ok(self.latest_many(ids, concurrency))
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
    /// device failing does not stop the others. An `Err` item is a failure of `ids` itself
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
                let call = fetch(client.clone(), id.clone());
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
