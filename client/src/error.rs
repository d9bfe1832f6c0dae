//! Why a request failed, named precisely enough for an operator to act:
//! a TLS failure says which certificate check failed (the rustls text from
//! deep in the error's source chain, which reqwest's own message hides
//! behind "error sending request").

use std::error::Error as StdError;
use std::path::PathBuf;
use std::time::Duration;

/// Longest excerpt of an error body kept in a [`ClientError::Status`] message.
const EXCERPT: usize = 200;

/// Everything that can go wrong with an outgoing request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The extra CA file (`--ca-cert`) could not be read or holds no
    /// usable PEM certificate.
    #[error("CA certificate file {path}: {detail}")]
    CaCert {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The HTTP client could not be built (bad TLS configuration, ...).
    #[error("building the HTTP client: {0}")]
    Build(String),
    /// The URL is not an absolute http(s) URL.
    #[error("invalid URL {url:?}: {detail}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why it is invalid.
        detail: String,
    },
    /// A redirect to a presigned URL that cannot be followed.
    #[error("{what}: redirect refused: {detail}")]
    Redirect {
        /// The request.
        what: String,
        /// Why.
        detail: String,
    },
    /// A request header value is not valid HTTP.
    #[error("header {name}: {detail}")]
    Header {
        /// The header.
        name: &'static str,
        /// Why.
        detail: String,
    },
    /// The TLS handshake failed; `detail` names the problem (for example
    /// "invalid peer certificate: UnknownIssuer").
    #[error("TLS with {host} failed: {detail}")]
    Tls {
        /// `host:port` of the server.
        host: String,
        /// The certificate or protocol problem.
        detail: String,
    },
    /// Connection refused or reset, DNS failure, a body cut short, ...
    #[error("{what}: {detail}")]
    Transport {
        /// The request (`GET https://...`).
        what: String,
        /// The cause, with its source chain.
        detail: String,
    },
    /// No complete answer in time.
    #[error("{what}: no complete answer within {timeout:?}")]
    Timeout {
        /// The request.
        what: String,
        /// The per-attempt limit.
        timeout: Duration,
    },
    /// The server answered with a status the caller did not accept.
    #[error("{what}: HTTP {status}{}", excerpt_suffix(body))]
    Status {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The answer's body, capped (the caller may parse an error code
        /// from it).
        body: Vec<u8>,
    },
    /// The body was (or declared itself) larger than the caller's cap; it
    /// was not read past the cap.
    #[error("{what}: answer larger than {cap} bytes")]
    TooLarge {
        /// The request.
        what: String,
        /// The cap.
        cap: u64,
    },
}

impl ClientError {
    /// The HTTP status, for [`ClientError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the same request may succeed later: transport failures,
    /// timeouts and overload or server-side statuses. A TLS failure is
    /// not: the certificate will be as wrong next time.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } | ClientError::Timeout { .. } => true,
            ClientError::Status { status, .. } => crate::retry::retryable_status(*status),
            _ => false,
        }
    }

    /// Classifies a reqwest failure of `what` (a request to `url`).
    pub(crate) fn from_reqwest(e: reqwest::Error, what: &str, timeout: Duration) -> Self {
        if let Some(detail) = tls_problem(&e) {
            let host = e
                .url()
                .map(|u| {
                    format!("{}:{}", u.host_str().unwrap_or("?"), u.port_or_known_default().unwrap_or(0))
                })
                .unwrap_or_else(|| "the server".to_owned());
            return ClientError::Tls { host, detail };
        }
        if e.is_timeout() {
            return ClientError::Timeout { what: what.to_owned(), timeout };
        }
        if e.is_builder() {
            return ClientError::Url { url: what.to_owned(), detail: chain(&e.without_url()) };
        }
        ClientError::Transport { what: what.to_owned(), detail: chain(&e.without_url()) }
    }
}

fn excerpt_suffix(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(&body[..body.len().min(EXCERPT)])
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .collect();
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim())
    }
}

/// The messages of `e` and its sources, joined with ": ", each left out
/// when the one before already says it (wrappers often repeat their cause).
pub fn chain(e: &dyn StdError) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&dyn StdError> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The rustls error in `e`'s source chain, described, if there is one.
/// `std::io::Error` hides its payload from `source()` (it returns the
/// payload's own source), so each I/O error's payload is searched too.
fn tls_problem(e: &(dyn StdError + 'static)) -> Option<String> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(describe(r));
        }
        // I/O errors nest (the connector wraps the TLS stream's error).
        if let Some(payload) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if let Some(found) = tls_problem(payload) {
                return Some(found);
            }
        }
        next = err.source();
    }
    None
}

/// rustls's text plus, for the common certificate problems, the plain
/// words an operator searches for.
fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let hint = match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            Some("certificate signed by unknown authority; give its CA with --ca-cert")
        }
        rustls::Error::InvalidCertificate(C::Expired) => Some("certificate has expired"),
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            Some("certificate is not valid for this host name")
        }
        rustls::Error::InvalidCertificate(C::BadSignature) => Some("certificate has a bad signature"),
        _ => None,
    };
    match hint {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rustls_errors_inside_io_errors() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        let io = std::io::Error::other(io);
        let msg = tls_problem(&io).expect("found");
        assert!(msg.contains("invalid peer certificate: UnknownIssuer"), "{msg}");
        assert!(msg.contains("certificate signed by unknown authority"), "{msg}");
        assert_eq!(tls_problem(&std::io::Error::other("reset")), None);
    }

    #[test]
    fn status_message_has_a_clean_excerpt() {
        let e = ClientError::Status { what: "GET x".into(), status: 503, body: b"busy\n\x07now".to_vec() };
        assert_eq!(e.to_string(), "GET x: HTTP 503: busynow");
        let e = ClientError::Status { what: "GET x".into(), status: 404, body: Vec::new() };
        assert_eq!(e.to_string(), "GET x: HTTP 404");
        assert!(!e.is_transient());
    }
}
