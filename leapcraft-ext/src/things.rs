//! Things and their parameters.

use futures::FutureExt;

use crate::paging::{PageRequest, Pager, Scheme};
use crate::{Client, types};

/// The API's default number of things per request.
pub const DEFAULT_THINGS_LIMIT: i64 = 10;

impl Client {
    /// Things, with their parameters. The API returns only the first `limit` things (10
    /// unless set) or, with `page_size(-1)`, all of them: there is no second page, so this
    /// pager makes one request.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// for thing in client.things().page_size(-1).collect().await? {
    ///     println!("{:?}: {} parameters", thing.name, thing.parameters.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn things(&self) -> Pager<types::Thing> {
        let client = self.clone();
        Pager::new(
            "list_things",
            Scheme::FirstOnly,
            DEFAULT_THINGS_LIMIT,
            |_| None,
            move |page: PageRequest| {
                let client = client.clone();
                async move {
                    client
                        .list(
                            "list_things",
                            u64::try_from(page.limit).unwrap_or(u64::MAX),
                            async |api| api.list_things().limit(page.limit).send().await,
                        )
                        .await
                }
                .boxed()
            },
        )
    }
}
