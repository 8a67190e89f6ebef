//! Devices: [`Device`], listing them page by page, getting one.

use futures::FutureExt;
use serde_json::{Map, Value};

use crate::paging::{PageRequest, Pager, Scheme, key_of};
use crate::{Client, DeviceKind, Error, PhysicalId, types};

/// The API's default number of devices per page.
pub const DEFAULT_DEVICE_PAGE_SIZE: i64 = 100;

/// A hardware sensor (Airbird, Ambinode, a Modbus integration...).
///
/// ```
/// use leapcraft_ext::{Device, DeviceKind};
/// let device: Device = serde_json::from_str(
///     r#"{"physical_id": "D2:C1:AA:FF:3E:09", "name": null, "type": "ultralink_modbus"}"#,
/// )?;
/// assert_eq!(device.kind, Some(DeviceKind::UltralinkModbus));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Device {
    /// The physical id, such as a MAC address.
    pub physical_id: PhysicalId,
    /// Display name, if one was given.
    pub name: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Numeric id of the topology the device belongs to.
    pub topology_id: Option<i64>,
    /// The kind of device; unknown kinds are kept as [`DeviceKind::Other`].
    #[serde(rename = "type")]
    pub kind: Option<DeviceKind>,
    /// Free-form metadata.
    #[serde(default)]
    pub meta: Map<String, Value>,
}

impl From<types::Device> for Device {
    fn from(d: types::Device) -> Self {
        Self {
            physical_id: d.physical_id.into(),
            name: d.name,
            serial: d.serial,
            topology_id: d.topology_id,
            kind: d.type_.map(DeviceKind::from),
            meta: d.meta.map(|m| m.0).unwrap_or_default(),
        }
    }
}

impl Device {
    /// A device from the details endpoint, which may leave out the physical id (the docs'
    /// sample does): `requested` fills it in.
    fn from_details(d: types::DeviceDetails, requested: &PhysicalId) -> Self {
        Self {
            physical_id: d
                .physical_id
                .map_or_else(|| requested.clone(), PhysicalId::from),
            name: d.name,
            serial: d.serial,
            topology_id: d.topology_id,
            kind: d.type_.map(DeviceKind::from),
            meta: d.meta.map(|m| m.0).unwrap_or_default(),
        }
    }
}

impl Client {
    /// The details of one device.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let device = client.device("D2:C1:AA:FF:3E:09").await?;
    /// println!("serial {:?}", device.serial);
    /// # Ok(()) }
    /// ```
    pub async fn device(&self, physical_id: impl Into<PhysicalId>) -> Result<Device, Error> {
        let id = physical_id.into();
        let checked = id.checked("get_device")?;
        let details = self
            .call_for_items("get_device", 1, async |api| {
                api.get_device().physical_id(checked).send().await
            })
            .await?;
        Ok(Device::from_details(details, &id))
    }

    /// All devices of the account, page by page (100 per page unless set; pages are numbered
    /// from 1 on the wire). `page_size(-1)` asks for the whole list in one request.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let all = client.devices().page_size(1000).collect().await?;
    /// let first_ten = client.devices().max_items(10).collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn devices(&self) -> Pager<Device> {
        let client = self.clone();
        Pager::new(
            "list_devices",
            Scheme::Pages,
            DEFAULT_DEVICE_PAGE_SIZE,
            |d: &Device| key_of(&d.physical_id),
            move |page: PageRequest| {
                let client = client.clone();
                async move {
                    // A request for all (`-1`) is bounded by the client's limit alone.
                    let asked = u64::try_from(page.limit).unwrap_or(u64::MAX);
                    let devices: Vec<types::Device> = client
                        .list("list_devices", asked, async |api| {
                            let request = api.list_devices().limit(page.limit);
                            request.page(page.page_number()).send().await
                        })
                        .await?;
                    Ok(devices.into_iter().map(Device::from).collect())
                }
                .boxed()
            },
        )
    }
}
