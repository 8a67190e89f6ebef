//! Notifications: [`Notification`], listing them with offset paging (at most 50 per page).

use futures::FutureExt;

use crate::paging::{PageRequest, Pager, Scheme, key_of};
use crate::{Client, NotificationCategory, PhysicalId, Timestamp, types};

/// The most notifications the API returns per request.
pub const MAX_NOTIFICATION_PAGE_SIZE: i64 = 50;

/// The API's default number of notifications per request.
pub const DEFAULT_NOTIFICATION_PAGE_SIZE: i64 = 20;

/// An alert raised for a device.
///
/// ```
/// use leapcraft_ext::{Notification, NotificationCategory};
/// let n: Notification = serde_json::from_str(
///     r#"{"id": 4521, "category": "technicalAlert", "created_at": "2021-05-28T17:15:06Z"}"#,
/// )?;
/// assert_eq!(n.category, Some(NotificationCategory::TechnicalAlert));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Notification {
    /// Notification id.
    pub id: i64,
    /// The device it is about.
    pub physical_id: Option<PhysicalId>,
    /// Its category; unknown ones are kept as [`NotificationCategory::Other`].
    pub category: Option<NotificationCategory>,
    /// Human-readable message.
    pub message: Option<String>,
    /// When it was raised.
    pub created_at: Option<Timestamp>,
}

impl From<types::Notification> for Notification {
    fn from(n: types::Notification) -> Self {
        Self {
            id: n.id,
            physical_id: n.physical_id.map(PhysicalId::from),
            category: n.category.map(NotificationCategory::from),
            message: n.message,
            created_at: n.created_at,
        }
    }
}

impl Client {
    /// Notifications of the account, page by page (20 per page unless set; page sizes above
    /// the API's cap of 50 are clamped to 50; `-1` is invalid here).
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let recent = client.notifications().page_size(50).max_items(200).collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn notifications(&self) -> Pager<Notification> {
        self.notifications_of(None)
    }

    /// The notifications of one device, page by page: as [`notifications`](Self::notifications).
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let alerts = client.device_notifications("D2:C1:AA:FF:3E:09").collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn device_notifications(&self, physical_id: impl Into<PhysicalId>) -> Pager<Notification> {
        self.notifications_of(Some(physical_id.into()))
    }

    pub(crate) fn notifications_of(&self, device: Option<PhysicalId>) -> Pager<Notification> {
        let client = self.clone();
        Pager::new(
            "list_notifications",
            Scheme::Offsets {
                max_limit: MAX_NOTIFICATION_PAGE_SIZE,
            },
            DEFAULT_NOTIFICATION_PAGE_SIZE,
            |n: &Notification| key_of(n.id),
            move |page: PageRequest| {
                let client = client.clone();
                let device = device.clone();
                async move {
                    let device = match &device {
                        Some(device) => Some(device.checked("list_notifications")?),
                        None => None,
                    };
                    let found: Vec<types::Notification> = client
                        .list("list_notifications", page.limit as u64, async |api| {
                            let mut request = api
                                .list_notifications()
                                .limit(page.limit)
                                .offset(page.offset);
                            if let Some(device) = device {
                                request = request.physical_id(device);
                            }
                            request.send().await
                        })
                        .await?;
                    Ok(found.into_iter().map(Notification::from).collect())
                }
                .boxed()
            },
        )
    }
}
