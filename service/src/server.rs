//! Binding the HTTP server: the connection deadlines and, with
//! `--tls-cert`, HTTPS, the same way for both servers.

use std::any::Any;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory};
use actix_web::rt::net::TcpStream;
use actix_web::HttpServer;

use crate::connection::ConnectionArgs;
use crate::tls::{CertReloader, TlsError};

/// Why the server could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener could not be used.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS configuration was refused.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// `server` with the deadlines of `conn`, our own signal handling
/// ([`crate::shutdown`]), listening on `listener` over HTTPS when `tls` is
/// given (the TLS handshake shares the request-head deadline), else plain
/// HTTP. The connection count cap is left to the caller.
pub fn listen<F, I, S, B>(
    server: HttpServer<F, I, S, B>,
    listener: TcpListener,
    conn: &ConnectionArgs,
    tls: Option<&Arc<CertReloader>>,
) -> Result<HttpServer<F, I, S, B>, ServeError>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: actix_service::IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<actix_http::Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<actix_http::Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let server = server
        .client_request_timeout(conn.head_timeout())
        .keep_alive(conn.keep_alive())
        .shutdown_timeout(conn.shutdown_timeout_secs)
        .disable_signals();
    Ok(match tls {
        Some(reloader) => server
            .tls_handshake_timeout(conn.head_timeout())
            .listen_rustls_0_23(listener, reloader.server_config()?)?,
        None => server.listen(listener)?,
    })
}

/// `http` or `https`, for the listening line.
pub fn scheme(tls: Option<&Arc<CertReloader>>) -> &'static str {
    if tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// The TCP socket under an `on_connect` connection, plain or TLS.
pub fn tcp_stream(conn: &dyn Any) -> Option<&TcpStream> {
    if let Some(tcp) = conn.downcast_ref::<TcpStream>() {
        return Some(tcp);
    }
    conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>().map(|tls| tls.get_ref().0)
}
