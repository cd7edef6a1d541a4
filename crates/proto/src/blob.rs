//! Bytes on the wire, losslessly and cheaply: a [`Blob`] that is valid UTF-8
//! travels as a plain JSON string (so text calls cost what they did), any
//! other bytes as `{"b64":"..."}`. Payloads, outputs and stderr are blobs.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Arbitrary bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Blob {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The bytes as text, when they are valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes in standard base64.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(text) => write!(f, "{text:?}"),
            None => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<String> for Blob {
    fn from(text: String) -> Self {
        Self(text.into_bytes())
    }
}

impl From<&str> for Blob {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_str() {
            Some(text) => serializer.serialize_str(text),
            None => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("b64", &self.to_base64())?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BlobVisitor)
    }
}

struct BlobVisitor;

impl<'de> Visitor<'de> for BlobVisitor {
    type Value = Blob;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or {\"b64\": \"...\"}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
        Ok(Blob(v.as_bytes().to_vec()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Blob, E> {
        Ok(Blob(v.into_bytes()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Blob, E> {
        Ok(Blob::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Blob, A::Error> {
        let mut bytes = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != "b64" {
                return Err(de::Error::unknown_field(&key, &["b64"]));
            }
            let text: std::borrow::Cow<'de, str> = map.next_value()?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(de::Error::custom)?;
            bytes = Some(decoded);
        }
        bytes
            .map(Blob)
            .ok_or_else(|| de::Error::missing_field("b64"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_a_string_and_other_bytes_round_trip() {
        let text = Blob::from("héllo\n");
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"héllo\\n\"");
        let all: Blob = (0..=255u8).collect::<Vec<_>>().into();
        let json = serde_json::to_string(&all).unwrap();
        assert!(json.starts_with("{\"b64\":"), "{json}");
        assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), all);
        assert_eq!(
            serde_json::from_str::<Blob>("\"x\"").unwrap(),
            Blob::from("x")
        );
        assert!(serde_json::from_str::<Blob>("{\"b64\":\"!!\"}").is_err());
        assert!(serde_json::from_str::<Blob>("{\"other\":\"\"}").is_err());
    }
}
