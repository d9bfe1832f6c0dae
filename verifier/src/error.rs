//! Typed errors of the library, each with the exit code the `custody`
//! binary uses for its class, so scripts can tell "the network is down" from
//! "the log lied".

use std::path::PathBuf;

/// Exit code: any failure that is not a verification verdict (I/O, network,
/// configuration, a statement the log refused).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: something did not verify (signature, proof, policy quorum,
/// digest, authorization). Nothing was accepted or written into place.
pub const EXIT_VERIFICATION: i32 = 2;
/// Exit code: the log showed a checkpoint inconsistent with one this client
/// verified before (a split view or a rewritten history). An evidence report
/// was written.
pub const EXIT_INCONSISTENT: i32 = 3;
/// Exit code: bad command line (clap's own usage errors).
pub const EXIT_USAGE: i32 = 64;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The log could not be reached, or answered outside the protocol.
    #[error("{0}")]
    Network(String),
    /// The log answered with an HTTP error (its `error` code and `detail`).
    #[error("log refused {what}: {status} {code}: {detail}")]
    Refused {
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// The log's stable error code.
        code: String,
        /// The log's explanation.
        detail: String,
    },
    /// Local configuration is missing or invalid (no `custody init` yet,
    /// unreadable policy or key file, ...).
    #[error("{0}")]
    Config(String),
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// Something did not verify. The message says what.
    #[error("verification failed: {0}")]
    Verification(String),
    /// The log is inconsistent with the checkpoint this client remembers.
    #[error("log inconsistent with remembered checkpoint: {detail} (evidence written to {})", report.display())]
    Inconsistent {
        /// What did not match.
        detail: String,
        /// The evidence report file.
        report: PathBuf,
    },
}

impl Error {
    /// The process exit code for this class of error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Verification(_) => EXIT_VERIFICATION,
            Error::Inconsistent { .. } => EXIT_INCONSISTENT,
            Error::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    /// Shorthand for a verification failure.
    pub fn verify(msg: impl Into<String>) -> Self {
        Error::Verification(msg.into())
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
