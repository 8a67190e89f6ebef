//! Devices: listing them and getting one.

use crate::{Client, Error, types};

impl Client {
    /// The details of one device.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let device = client.device("D2:C1:AA:FF:3E:09").await?;
    /// # Ok(()) }
    /// ```
    pub async fn device(
        &self,
        physical_id: impl AsRef<str>,
    ) -> Result<types::DeviceDetails, Error> {
        let id = physical_id.as_ref();
        if id.is_empty() {
            return Err(Error::invalid("get_device: empty physical id"));
        }
        self.call("get_device", self.api().get_device().physical_id(id).send())
            .await
    }

    /// One page of devices: `limit` per page (`-1` for all), pages numbered from 1.
    pub async fn devices_page(&self, limit: i64, page: u64) -> Result<Vec<types::Device>, Error> {
        let page = std::num::NonZeroU64::new(page)
            .ok_or_else(|| Error::invalid("list_devices: pages are numbered from 1"))?;
        self.call(
            "list_devices",
            self.api().list_devices().limit(limit).page(page).send(),
        )
        .await
    }
}
