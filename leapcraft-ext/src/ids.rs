//! Identifier newtypes, so a device's physical id and a topology's gateway id cannot be
//! swapped by mistake.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as sent to and received from the API.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id, or [`Error::InvalidInput`](crate::Error::InvalidInput) if it cannot be
            /// sent: empty, or `.` or `..`, which URL parsers resolve as dot segments even
            /// when percent-encoded (the request would reach another path).
            pub(crate) fn checked(&self, operation: &str) -> Result<&str, crate::Error> {
                match self.0.as_str() {
                    "" => Err(crate::Error::invalid(format!(concat!("{}: empty ", $what), operation))),
                    "." | ".." => Err(crate::Error::invalid(format!(
                        concat!("{}: ", $what, " {:?} cannot be sent as a path segment"),
                        operation, self.0
                    ))),
                    id => Ok(id),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

id_type!(
    /// The physical id of a device, such as its MAC address (`D2:C1:AA:FF:3E:09`).
    ///
    /// ```
    /// use leapcraft_ext::PhysicalId;
    /// let id = PhysicalId::from("D2:C1:AA:FF:3E:09");
    /// assert_eq!(id.as_str(), "D2:C1:AA:FF:3E:09");
    /// ```
    PhysicalId,
    "physical id"
);

id_type!(
    /// The gateway id that identifies a topology, such as `0123245cf74c60d7ee`.
    ///
    /// ```
    /// use leapcraft_ext::GatewayId;
    /// let id: GatewayId = "0123245cf74c60d7ee".into();
    /// assert_eq!(id.to_string(), "0123245cf74c60d7ee");
    /// ```
    GatewayId,
    "gateway id"
);
