//! Library errors as the exceptions of `custody.errors`, one class per exit
//! code class of the CLI, carrying the message the CLI prints (without its
//! `custody: ` prefix) and the exit code it would exit with.

use custody_verifier::error::Error;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The exception for `e`: `VerificationError` (exit 2),
/// `InconsistencyError` with the evidence path (exit 3), else `UsageError`
/// (exit 1: network, I/O, configuration, a refusal; exit 64: bad usage).
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match raise(py, &e) {
        Ok(err) | Err(err) => err,
    }
}

fn raise(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let module = py.import("custody.errors")?;
    let class = match e {
        Error::Verification(_) => "VerificationError",
        Error::Inconsistent { .. } => "InconsistencyError",
        _ => "UsageError",
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("exit_code", e.exit_code())?;
    if let Error::Inconsistent { report, .. } = e {
        kwargs.set_item("evidence", report)?;
    }
    if let Error::Refused { status, code, .. } = e {
        kwargs.set_item("status", status)?;
        kwargs.set_item("code", code)?;
    }
    let exc = module.getattr(class)?.call((e.to_string(),), Some(&kwargs))?;
    Ok(PyErr::from_value(exc))
}
