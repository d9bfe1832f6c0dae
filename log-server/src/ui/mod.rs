//! The read-only web dashboard under `/ui/` (docs/dashboard.md).
//!
//! Every page is complete HTML without JavaScript, rendered on the server
//! from what the log already holds: the registry's in-memory state (copied
//! out under its read lock, which is released before anything is read
//! from disk or written), the `registry_index` rows and the entries
//! themselves, decoded as the query endpoints decode them. The JavaScript
//! modules (`/ui/assets/js/`) then verify every row in the browser against
//! the log's signed checkpoint, using the two JSON endpoints of
//! [`api`]; docs/dashboard-verification.md says how.
//!
//! Output goes through [`html::Html`], which cannot write a runtime string
//! unescaped. Every answer carries the headers of [`headers`].

pub mod api;
pub mod assets;
mod entries;
pub mod headers;
pub mod html;
pub mod layout;
pub mod leaves;
mod model;
mod overview;
pub mod rows;
pub mod trust;
mod witnesses;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::api::{ApiError, AppState};
pub use trust::Trust;

/// Registers the dashboard's routes under `/ui` (GET only); any other
/// path under `/ui/` is an HTML 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/ui").route(web::get().to(to_index))).service(
        web::scope("/ui")
            .service(web::resource("/").route(web::get().to(overview::page)))
            .service(web::resource("/entries").route(web::get().to(entries::page)))
            .service(web::resource("/witnesses").route(web::get().to(witnesses::page)))
            .service(web::resource("/api/trust").route(web::get().to(api::trust)))
            .service(web::resource("/api/proofs").route(web::get().to(api::proofs)))
            .service(web::resource("/assets/{path:.*}").route(web::get().to(asset)))
            .service(web::resource("/models/{org}/{model}").route(web::get().to(model::page)))
            .default_service(web::to(not_found)),
    );
}

/// `/ui` without the slash: the overview is at `/ui/`, so that the
/// pages' relative positions are the same whatever was typed.
async fn to_index() -> HttpResponse {
    let mut resp = HttpResponse::PermanentRedirect();
    resp.insert_header(("Location", "/ui/"));
    headers::apply(&mut resp);
    resp.finish()
}

async fn asset(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let (asset, etag) = assets::find(&path)
        .ok_or_else(|| PageError(ApiError::NotFound(format!("no dashboard asset {}", path.as_str()))))?;
    Ok(assets::response(&req, asset, etag))
}

async fn not_found() -> Result<HttpResponse, PageError> {
    Err(PageError(ApiError::NotFound("there is no such dashboard page".into())))
}

/// A 200 HTML page with the dashboard's headers.
pub fn page_response(body: String) -> HttpResponse {
    let mut resp = HttpResponse::Ok();
    resp.content_type("text/html; charset=utf-8").insert_header(("Cache-Control", "no-store"));
    headers::apply(&mut resp);
    resp.body(body)
}

/// A failure of a page: the status is the API's ([`ApiError`] is the one
/// map from failure to status), the body a small HTML page instead of
/// JSON. A server error shows only a reference to the server's log, like
/// the API's.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PageError(#[from] pub ApiError);

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let detail = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            let reference = custody_service::internal_error::reference();
            tracing::error!(reference = reference.as_str(), error = %self.0, "dashboard page failed");
            format!("Internal error; the server's log has the detail under reference {reference}.")
        } else {
            self.0.to_string()
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let mut h = html::Html::with_capacity(1024);
        h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
            .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
            .open("title", &[])
            .text(title)
            .close("title")
            .raw("<link rel=\"stylesheet\" href=\"/ui/assets/dashboard.css\"></head><body data-page=\"error\">")
            .raw("<main id=\"main\">")
            .open("h1", &[])
            .num(u64::from(status.as_u16()))
            .text(" ")
            .text(title)
            .close("h1")
            .el("p", &[], &detail)
            .raw("<p><a href=\"/ui/\">Back to the overview</a></p></main></body></html>\n");
        let mut resp = HttpResponse::build(status);
        resp.content_type("text/html; charset=utf-8").insert_header(("Cache-Control", "no-store"));
        headers::apply(&mut resp);
        resp.body(h.finish())
    }
}

/// The registry, or a 404 page on a generic log (which has no models).
pub(crate) fn registry(state: &AppState) -> Result<&crate::api::RegistryApi, PageError> {
    Ok(state.registry()?)
}

/// The latest published checkpoint's size and time, if any.
pub(crate) fn published(state: &AppState) -> Option<(u64, std::time::SystemTime)> {
    state.publisher.latest().map(|p| (p.size, p.published_at))
}

/// Runs blocking store work for a page.
pub(crate) async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, PageError>
where
    F: FnOnce(&dyn crate::store::Store) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    Ok(state.blocking(f).await?)
}
