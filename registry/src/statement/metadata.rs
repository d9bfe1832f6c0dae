//! Publish metadata (free-form but capped) and lineage.
//!
//! JSON objects with caller-chosen keys (metrics, labels) are read through
//! [`StrictMap`], which refuses duplicate keys: parsers disagree on which
//! duplicate wins, and a signed payload must mean the same to every reader.
//! (Fixed-field objects get the same guarantee from serde's derived
//! deserializers, which report duplicate fields.)

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::names::Digest;
use crate::statement::text::Text;

/// Most entries in one metrics or labels map.
pub const MAX_MAP_ENTRIES: usize = 64;
/// Longest metrics or labels key, in bytes.
pub const MAX_MAP_KEY_LEN: usize = 128;
/// Cap on the metadata's content: the sum of all key and text lengths plus
/// 8 bytes per metric. Bounds what the registry and every index must hold.
pub const MAX_METADATA_SIZE: usize = 16 * 1024;
/// Most parents, and most datasets, in one lineage.
pub const MAX_LINEAGE_REFS: usize = 32;

/// A JSON object with unique keys, at most [`MAX_MAP_ENTRIES`] of them,
/// each 1..=[`MAX_MAP_KEY_LEN`] bytes of `[A-Za-z0-9._/-]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrictMap<V>(pub BTreeMap<String, V>);

impl<V> Default for StrictMap<V> {
    fn default() -> Self {
        StrictMap(BTreeMap::new())
    }
}

impl<V> StrictMap<V> {
    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `k` is a valid metrics or labels key.
pub fn is_map_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_MAP_KEY_LEN
        && k.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'/' | b'-'))
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for StrictMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = StrictMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with unique keys")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                use serde::de::Error as _;
                let mut out = BTreeMap::new();
                while let Some(k) = map.next_key::<String>()? {
                    if !is_map_key(&k) {
                        return Err(A::Error::custom(format_args!(
                            "invalid map key {:?}: 1..={MAX_MAP_KEY_LEN} bytes of [A-Za-z0-9._/-]",
                            k.chars().take(40).collect::<String>()
                        )));
                    }
                    if out.len() == MAX_MAP_ENTRIES {
                        return Err(A::Error::custom(format_args!(
                            "more than {MAX_MAP_ENTRIES} map entries"
                        )));
                    }
                    let v = map.next_value()?;
                    if out.insert(k.clone(), v).is_some() {
                        return Err(A::Error::custom(format_args!("duplicate key {k:?}")));
                    }
                }
                Ok(StrictMap(out))
            }
        }
        d.deserialize_map(V_(PhantomData))
    }
}

/// Descriptive metadata of a published artifact.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Training framework, e.g. `pytorch 2.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<Text>,
    /// Human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
    /// Evaluation metrics, name to number.
    #[serde(default, skip_serializing_if = "StrictMap::is_empty")]
    pub metrics: StrictMap<f64>,
    /// Free-form labels, key to text.
    #[serde(default, skip_serializing_if = "StrictMap::is_empty")]
    pub labels: StrictMap<Text>,
}

impl Metadata {
    /// The capped content size (see [`MAX_METADATA_SIZE`]).
    pub fn content_size(&self) -> usize {
        let t = |o: &Option<Text>| o.as_ref().map_or(0, |t| t.as_str().len());
        t(&self.framework)
            + t(&self.description)
            + self.metrics.0.keys().map(|k| k.len() + 8).sum::<usize>()
            + self.labels.0.iter().map(|(k, v)| k.len() + v.as_str().len()).sum::<usize>()
    }

    /// Whether every metric is finite (JSON cannot spell NaN or infinity,
    /// but a caller building a statement in Rust can).
    pub fn metrics_finite(&self) -> bool {
        self.metrics.0.values().all(|v| v.is_finite())
    }
}

/// One lineage reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageRef {
    /// The referenced artifact.
    pub digest: Digest,
    /// `true` if the artifact lives outside this log (then it need not be
    /// published here); `false` (the default) requires that some name in
    /// the log published it earlier.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
}

/// Where an artifact came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lineage {
    /// Parent artifacts (base model, checkpoint fine-tuned from...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<LineageRef>,
    /// Training and evaluation datasets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<LineageRef>,
    /// Version of the training pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Text>,
    /// Source commit the artifact was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<Text>,
}

impl Lineage {
    /// Every reference, parents first.
    pub fn refs(&self) -> impl Iterator<Item = &LineageRef> {
        self.parents.iter().chain(self.datasets.iter())
    }

    /// The first rule the lineage breaks, if any: too many references, or
    /// one digest listed twice in the same list.
    pub fn check(&self) -> Result<(), &'static str> {
        for list in [&self.parents, &self.datasets] {
            if list.len() > MAX_LINEAGE_REFS {
                return Err("lineage lists hold at most 32 references");
            }
            for (i, r) in list.iter().enumerate() {
                if list[..i].iter().any(|p| p.digest == r.digest) {
                    return Err("lineage list names one digest twice");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_map_refuses_duplicates_bad_keys_and_too_many() {
        let m: StrictMap<f64> = serde_json::from_str(r#"{"acc":0.5,"f1":0.25}"#).unwrap();
        assert_eq!(m.0.len(), 2);
        let e = serde_json::from_str::<StrictMap<f64>>(r#"{"acc":0.5,"acc":0.9}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key"), "{e}");
        let e = serde_json::from_str::<StrictMap<f64>>(r#"{"a b":1}"#).unwrap_err();
        assert!(e.to_string().contains("invalid map key"), "{e}");
        let e = serde_json::from_str::<StrictMap<f64>>(r#"{"":1}"#).unwrap_err();
        assert!(e.to_string().contains("invalid map key"), "{e}");
        let many = (0..=MAX_MAP_ENTRIES).map(|i| format!("\"k{i}\":1")).collect::<Vec<_>>().join(",");
        let e = serde_json::from_str::<StrictMap<f64>>(&format!("{{{many}}}")).unwrap_err();
        assert!(e.to_string().contains("more than 64"), "{e}");
        assert!(serde_json::from_str::<StrictMap<f64>>("[]").is_err());
    }

    #[test]
    fn metadata_size_and_lineage_rules() {
        let m: Metadata =
            serde_json::from_str(r#"{"framework":"pytorch","metrics":{"acc":1},"labels":{"team":"vision"}}"#)
                .unwrap();
        assert_eq!(m.content_size(), 7 + (3 + 8) + (4 + 6));
        assert!(serde_json::from_str::<Metadata>(r#"{"frame":"x"}"#).is_err());
        assert!(serde_json::from_str::<Metadata>(r#"{"framework":"a","framework":"b"}"#).is_err());
        let d = format!("sha256:{}", "00".repeat(32));
        let l: Lineage =
            serde_json::from_str(&format!(r#"{{"parents":[{{"digest":"{d}","external":true}}]}}"#)).unwrap();
        assert!(l.parents[0].external);
        l.check().unwrap();
        let twice: Lineage =
            serde_json::from_str(&format!(r#"{{"datasets":[{{"digest":"{d}"}},{{"digest":"{d}"}}]}}"#))
                .unwrap();
        assert_eq!(twice.check(), Err("lineage list names one digest twice"));
        let many = Lineage {
            parents: (0..=MAX_LINEAGE_REFS as u8)
                .map(|i| LineageRef { digest: Digest(custody_standards::hash::sha256(&[i])), external: true })
                .collect(),
            ..Lineage::default()
        };
        assert_eq!(many.check(), Err("lineage lists hold at most 32 references"));
    }
}
