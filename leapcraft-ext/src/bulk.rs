//! Latest readings of many devices at once, with bounded concurrency.

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::{Client, Error, PhysicalId, Reading};

/// How many requests the bulk helpers keep in flight unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;

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
    /// that fails), then streams as [`latest_many`](Self::latest_many).
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
        let ids: Vec<PhysicalId> = self
            .devices()
            .page_size(1000)
            .items()
            .map_ok(|d| d.physical_id)
            .try_collect()
            .await?;
        Ok(self.latest_many(ids, concurrency))
    }
}
