//! The headers every dashboard answer carries (pages, assets, the JSON of
//! `/ui/api/`, error pages).
//!
//! The Content-Security-Policy lets a page load scripts, styles, images and
//! connections from this origin only, with no inline script or style: a
//! value that escaped its escaping could still not run. `frame-ancestors
//! 'none'` stops another site from framing the dashboard (clickjacking the
//! pin buttons), `base-uri 'none'` stops a `<base>` from redirecting the
//! relative module imports. `nosniff` makes the browser use the declared
//! types, and `no-referrer` keeps model names in URLs from leaking to
//! other sites.

use actix_web::HttpResponseBuilder;

/// The dashboard's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds the dashboard's security headers to `resp`.
pub fn apply(resp: &mut HttpResponseBuilder) {
    resp.insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"));
}
