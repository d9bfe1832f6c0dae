//! `custody._native`: the Python package's bridge to the verifier library.
//!
//! Every check is the `custody` CLI's own code path
//! (`custody_verifier::directory::{pull_any, verify_any}`, `Trust::refresh`,
//! `history::history`), run against a log opened with
//! [`Session::resolve`] from the same home, configuration files and
//! `CUSTODY_*` variables as the CLI. This module only converts arguments
//! in and results out: results are plain dicts that `custody/*.py` turns
//! into typed dataclasses, and errors become the exception classes of
//! `custody.errors` by the CLI's exit-code class.
//!
//! The GIL is released for all network, hashing and file work, so other
//! Python threads keep running while a model verifies.

mod convert;
mod errors;

use std::path::PathBuf;

use custody_registry::names::ModelName;
use custody_registry::registry::Lifecycle;
use custody_verifier::directory::{default_jobs, is_directory, pull_any, verify_any};
use custody_verifier::error::Error;
use custody_verifier::history::history as proven_history;
use custody_verifier::keyfile::load_signer;
use custody_verifier::pull::{verify_reference, Ref, ANY_STATUS};
use custody_verifier::session::{Session, Settings};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The reason recorded in the access statements this package logs, unless
/// `CUSTODY_REASON` says otherwise: audits can tell Python loads apart.
const REASON: &str = "custody python";

/// The caller's overrides on top of the `CUSTODY_*` environment.
fn settings(
    home: Option<PathBuf>,
    log: Option<String>,
    policy: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Settings {
    let mut s = Settings::from_env();
    s.home = home.or(s.home);
    s.log_url = log.or(s.log_url);
    s.policy = policy.or(s.policy);
    s.key = key.or(s.key);
    s
}

/// `--allow-status` values, refused as a usage error when unknown.
fn statuses(allow: &[String]) -> Result<Vec<Lifecycle>, Error> {
    allow
        .iter()
        .map(|a| {
            ANY_STATUS.iter().copied().find(|s| s.as_str() == a).ok_or_else(|| {
                Error::Usage(format!("allow_status: unknown status {a:?} (expected one of development, staging, production, deprecated, archived)"))
            })
        })
        .collect()
}

fn jobs(jobs: Option<usize>) -> usize {
    jobs.filter(|j| *j > 0).unwrap_or_else(default_jobs)
}

/// Runs `f` without the GIL and turns its error into the exception of its
/// class.
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    py.detach(f).map_err(|e| errors::to_py(py, e))
}

/// Whether a transfer writes the artifact into place or checks it there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pull,
    Verify,
}

/// `pull` and `verify`: the CLI's `pull_any` / `verify_any` on `path`.
fn transfer<'py>(
    py: Python<'py>,
    mode: Mode,
    reference: String,
    path: PathBuf,
    s: Settings,
    allow_status: Vec<String>,
    jobs: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let (v, dir) = detached(py, || {
        let allow = statuses(&allow_status)?;
        let r = Ref::parse(&reference)?;
        let session = Session::resolve(&s)?;
        let why = Settings::why_from_env(REASON);
        let trust = session.trust();
        let (jobs, wait) = (self::jobs(jobs), Settings::wait_from_env());
        let signer = || load_signer(&session.key_path());
        match mode {
            Mode::Pull => pull_any(&trust, &signer()?, &why, &r, &allow, &path, None, jobs, wait),
            Mode::Verify => verify_any(&trust, signer, &why, &r, &allow, &path, None, jobs, wait),
        }
    })?;
    convert::verified(py, &reference, &path, mode == Mode::Pull, &v, dir.as_ref())
}

/// `custody pull REF -o DEST`: verifies, then writes the file or directory
/// into place (nothing at `dest` unless everything verified).
#[pyfunction]
#[pyo3(signature = (reference, dest, *, home=None, log=None, policy=None, key=None, allow_status=Vec::new(), jobs=None))]
#[allow(clippy::too_many_arguments)]
fn pull<'py>(
    py: Python<'py>,
    reference: String,
    dest: PathBuf,
    home: Option<PathBuf>,
    log: Option<String>,
    policy: Option<PathBuf>,
    key: Option<PathBuf>,
    allow_status: Vec<String>,
    jobs: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = settings(home, log, policy, key);
    transfer(py, Mode::Pull, reference, dest, s, allow_status, jobs)
}

/// `custody pull REF --verify-only PATH`: checks a file or directory already
/// on disk against what the log proves for `reference`.
#[pyfunction]
#[pyo3(signature = (reference, path, *, home=None, log=None, policy=None, key=None, allow_status=Vec::new(), jobs=None))]
#[allow(clippy::too_many_arguments)]
fn verify<'py>(
    py: Python<'py>,
    reference: String,
    path: PathBuf,
    home: Option<PathBuf>,
    log: Option<String>,
    policy: Option<PathBuf>,
    key: Option<PathBuf>,
    allow_status: Vec<String>,
    jobs: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = settings(home, log, policy, key);
    transfer(py, Mode::Verify, reference, path, s, allow_status, jobs)
}

/// What the log proves for `reference`, without any bytes: the publish,
/// tag move, authorization and current state (no access is logged). Used
/// to name a cache directory by digest, never to hand over a path.
#[pyfunction]
#[pyo3(signature = (reference, *, home=None, log=None, policy=None, allow_status=Vec::new()))]
fn resolve<'py>(
    py: Python<'py>,
    reference: String,
    home: Option<PathBuf>,
    log: Option<String>,
    policy: Option<PathBuf>,
    allow_status: Vec<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = settings(home, log, policy, None);
    let (v, dir) = detached(py, || {
        let allow = statuses(&allow_status)?;
        let r = Ref::parse(&reference)?;
        let session = Session::resolve(&s)?;
        let v = verify_reference(&session.trust(), &r, &allow, Settings::wait_from_env())?;
        let dir = is_directory(&v);
        Ok((v, dir))
    })?;
    let d = convert::artifact(py, &reference, &v)?;
    d.set_item("is_directory", dir)?;
    Ok(d)
}

/// `custody checkpoint`: the log's checkpoint, verified against the policy
/// and proven consistent with the remembered one (then remembered).
#[pyfunction]
#[pyo3(signature = (*, home=None, log=None, policy=None))]
fn checkpoint<'py>(
    py: Python<'py>,
    home: Option<PathBuf>,
    log: Option<String>,
    policy: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = settings(home, log, policy, None);
    let t = detached(py, || Session::resolve(&s)?.trust().refresh())?;
    convert::checkpoint(py, &t)
}

/// `custody history NAME`: every entry about a model name, proven complete
/// and included under one verified checkpoint.
#[pyfunction]
#[pyo3(signature = (name, *, home=None, log=None, policy=None, max_accesses=1000))]
fn history<'py>(
    py: Python<'py>,
    name: String,
    home: Option<PathBuf>,
    log: Option<String>,
    policy: Option<PathBuf>,
    max_accesses: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let s = settings(home, log, policy, None);
    let h = detached(py, || {
        let model = ModelName::new(&name).map_err(|e| Error::Usage(format!("name: {e}")))?;
        let session = Session::resolve(&s)?;
        proven_history(&session.trust(), &model, max_accesses, Settings::wait_from_env())
    })?;
    convert::history(py, &name, &h)
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pull, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(resolve, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(history, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
