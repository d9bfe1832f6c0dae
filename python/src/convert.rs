//! Verifier results as plain Python dicts, spelled as the CLI's
//! `--output json` spells them (docs/verifier.md), which the dataclasses
//! of `custody/_types.py` are built from.

use std::path::Path;

use custody_verifier::directory::pull::DirPulled;
use custody_verifier::history::History;
use custody_verifier::pull::Verified;
use custody_verifier::trust::Trusted;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A verified checkpoint: origin, size, base64 root, cosigners, the note.
pub fn checkpoint<'py>(py: Python<'py>, t: &Trusted) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let c = &t.checkpoint;
    d.set_item("origin", &c.origin)?;
    d.set_item("size", c.size)?;
    d.set_item("root", c.root.to_base64())?;
    d.set_item("cosigners", PyList::new(py, &t.cosigners)?)?;
    d.set_item("note", String::from_utf8_lossy(&t.note).into_owned())?;
    Ok(d)
}

/// What was proven about the artifact `reference` names.
pub fn artifact<'py>(py: Python<'py>, reference: &str, v: &Verified) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("reference", reference)?;
    d.set_item("name", v.name.as_str())?;
    d.set_item("version", v.version.as_str())?;
    d.set_item("digest", v.digest.to_string())?;
    d.set_item("size", v.size)?;
    d.set_item("media_type", v.media_type.as_str())?;
    d.set_item("publisher", v.publisher.as_str())?;
    d.set_item("publish_index", v.publish_index)?;
    d.set_item("tag_index", v.tag_index)?;
    let statuses = PyList::empty(py);
    for (version, status) in &v.statuses {
        statuses.append((version.as_str(), status.as_str()))?;
    }
    d.set_item("statuses", statuses)?;
    d.set_item("checkpoint", checkpoint(py, &v.checkpoint)?)?;
    Ok(d)
}

/// [`artifact`] plus where it is on disk and, for a directory, what the
/// pull or check covered.
pub fn verified<'py>(
    py: Python<'py>,
    reference: &str,
    path: &Path,
    written: bool,
    v: &Verified,
    dir: Option<&DirPulled>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = artifact(py, reference, v)?;
    d.set_item("path", path)?;
    d.set_item("written", written)?;
    match dir {
        Some(p) => {
            let x = PyDict::new(py);
            x.set_item("files", p.files)?;
            x.set_item("bytes", p.bytes)?;
            x.set_item("access_index", p.access_index)?;
            d.set_item("directory", x)?;
        }
        None => d.set_item("directory", py.None())?,
    }
    Ok(d)
}

/// A name's proven history: its checkpoint and rows.
pub fn history<'py>(py: Python<'py>, name: &str, h: &History) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", name)?;
    d.set_item("checkpoint", checkpoint(py, &h.checkpoint)?)?;
    let rows = PyList::empty(py);
    for r in &h.rows {
        let row = PyDict::new(py);
        row.set_item("index", r.index)?;
        row.set_item("time", &r.time)?;
        row.set_item("received_ms", r.received_ms)?;
        row.set_item("actor", &r.actor)?;
        row.set_item("event", &r.event)?;
        row.set_item("name", &r.name)?;
        row.set_item("version", &r.version)?;
        row.set_item("detail", &r.detail)?;
        row.set_item("reason", &r.reason)?;
        rows.append(row)?;
    }
    d.set_item("rows", rows)?;
    Ok(d)
}
