//! Open enums for the API's open-ended strings: a value we do not know yet decodes to
//! `Other`, keeping its exact text, so a device kind released next year breaks nothing.

use std::fmt;

macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value this version does not know, exactly as the API sent it.
            Other(String),
        }

        impl $name {
            /// The value as the API spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                match text.as_str() {
                    $($text => Self::$variant,)*
                    _ => Self::Other(text),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(Self::from)
            }
        }
    };
}

open_enum!(
    /// The kind of a device.
    ///
    /// ```
    /// use leapcraft_ext::DeviceKind;
    /// assert_eq!(DeviceKind::from("ambinode"), DeviceKind::Ambinode);
    /// let future = DeviceKind::from("airbird_pro_2027");
    /// assert_eq!(future, DeviceKind::Other("airbird_pro_2027".into()));
    /// assert_eq!(future.as_str(), "airbird_pro_2027");
    /// ```
    DeviceKind {
        /// An Airbird sensor.
        Airbird = "airbird",
        /// An Ambinode sensor.
        Ambinode = "ambinode",
        /// A device behind a Modbus integration (UltraLink).
        UltralinkModbus = "ultralink_modbus",
    }
);

open_enum!(
    /// The category of a notification.
    ///
    /// ```
    /// use leapcraft_ext::NotificationCategory;
    /// assert_eq!(NotificationCategory::from("technicalAlert"), NotificationCategory::TechnicalAlert);
    /// ```
    NotificationCategory {
        /// A technical alert, such as high CO2 levels.
        TechnicalAlert = "technicalAlert",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_round_trip_exactly() {
        let kinds: Vec<DeviceKind> =
            serde_json::from_str(r#"["ambinode","Ambinode","new kind ✨",""]"#).unwrap();
        assert_eq!(kinds[0], DeviceKind::Ambinode);
        assert_eq!(
            kinds[1],
            DeviceKind::Other("Ambinode".into()),
            "case is kept, not guessed"
        );
        assert_eq!(
            serde_json::to_string(&kinds).unwrap(),
            r#"["ambinode","Ambinode","new kind ✨",""]"#
        );
        assert_eq!(format!("[{:>10}]", DeviceKind::Ambinode), "[  ambinode]");
        let category: NotificationCategory = serde_json::from_str(r#""maintenance""#).unwrap();
        assert_eq!(category, NotificationCategory::Other("maintenance".into()));
    }
}
