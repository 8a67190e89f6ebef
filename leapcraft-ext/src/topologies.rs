//! Topologies: gateways and the devices that report through them.

use crate::{Client, Error, GatewayId, types};

impl Client {
    /// Every topology of the account, with the devices of each.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// for topology in client.topologies().await? {
    ///     println!("{} has {} devices", topology.gateway_id, topology.devices.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn topologies(&self) -> Result<Vec<types::Topology>, Error> {
        self.call("list_topologies", self.api().list_topologies().send())
            .await
    }

    /// One topology, by its gateway id.
    ///
    /// ```no_run
    /// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
    /// let topology = client.topology("0123245cf74c60d7ee").await?;
    /// println!("created {:?}", topology.created_at);
    /// # Ok(()) }
    /// ```
    pub async fn topology(
        &self,
        gateway_id: impl Into<GatewayId>,
    ) -> Result<types::TopologyDetails, Error> {
        let id = gateway_id.into();
        let send = self
            .api()
            .get_topology()
            .topology_id(id.checked("get_topology")?)
            .send();
        self.call("get_topology", send).await
    }
}
