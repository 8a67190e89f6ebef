//! Topologies: gateways and the devices that report through them.

use serde_json::{Map, Value};

use crate::{Client, DeviceKind, Error, GatewayId, PhysicalId, Timestamp, types};

/// A gateway and the devices that report through it, as listed by [`Client::topologies`].
///
/// ```no_run
/// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
/// for topology in client.topologies().await? {
///     let kinds: Vec<_> = topology.devices.iter().filter_map(|d| d.kind.clone()).collect();
///     println!("{}: {kinds:?}", topology.gateway_id);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Topology {
    /// The gateway id, which identifies the topology.
    pub gateway_id: GatewayId,
    /// Display name, if one was given.
    pub name: Option<String>,
    /// Numeric id of the network.
    pub network_id: Option<i64>,
    /// When the topology was created.
    pub created_at: Option<Timestamp>,
    /// The devices attached to the gateway.
    #[serde(default)]
    pub devices: Vec<TopologyDevice>,
}

/// A device of a [`Topology`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct TopologyDevice {
    /// The physical id of the device.
    pub physical_id: PhysicalId,
    /// Display name.
    pub name: Option<String>,
    /// The kind of device; unknown kinds are kept as [`DeviceKind::Other`].
    #[serde(rename = "type")]
    pub kind: Option<DeviceKind>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// One topology, as returned by [`Client::topology`]: its devices carry their topology's
/// numeric id rather than their kind (the API's two shapes differ).
///
/// ```no_run
/// # async fn run(client: leapcraft_ext::Client) -> Result<(), leapcraft_ext::Error> {
/// let topology = client.topology("0123245cf74c60d7ee").await?;
/// for member in &topology.devices {
///     println!("{} in topology {:?}", member.physical_id, member.topology_id);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct TopologyDetails {
    /// The gateway id, which identifies the topology.
    pub gateway_id: GatewayId,
    /// Display name, if one was given.
    pub name: Option<String>,
    /// When the topology was created (the API may send it without a zone: UTC).
    pub created_at: Option<Timestamp>,
    /// The devices attached to the gateway.
    #[serde(default)]
    pub devices: Vec<TopologyMember>,
}

/// A device of a [`TopologyDetails`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct TopologyMember {
    /// The physical id of the device.
    pub physical_id: PhysicalId,
    /// Numeric id of the topology.
    pub topology_id: Option<i64>,
    /// Display name.
    pub name: Option<String>,
}

impl From<types::Topology> for Topology {
    fn from(t: types::Topology) -> Self {
        Self {
            gateway_id: t.gateway_id.into(),
            name: t.name,
            network_id: t.network_id,
            created_at: t.created_at,
            devices: t
                .devices
                .into_iter()
                .map(|d| TopologyDevice {
                    physical_id: d.physical_id.into(),
                    name: d.name,
                    kind: d.type_.map(DeviceKind::from),
                    metadata: d.metadata.map(|m| m.0).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl From<types::TopologyDetails> for TopologyDetails {
    fn from(t: types::TopologyDetails) -> Self {
        Self {
            gateway_id: t.gateway_id.into(),
            name: t.name,
            created_at: t.created_at,
            devices: t
                .devices
                .into_iter()
                .map(|d| TopologyMember {
                    physical_id: d.physical_id.into(),
                    topology_id: d.topology_id,
                    name: d.name,
                })
                .collect(),
        }
    }
}

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
    pub async fn topologies(&self) -> Result<Vec<Topology>, Error> {
        let found: Vec<types::Topology> = self
            .call("list_topologies", async |api| {
                api.list_topologies().send().await
            })
            .await?;
        Ok(found.into_iter().map(Topology::from).collect())
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
    ) -> Result<TopologyDetails, Error> {
        let id = gateway_id.into();
        let checked = id.checked("get_topology")?;
        let details: types::TopologyDetails = self
            .call("get_topology", async |api| {
                api.get_topology().topology_id(checked).send().await
            })
            .await?;
        Ok(details.into())
    }
}
