//! The frame of every page: head, skip link, navigation, the checkpoint
//! line, and the trust panel with the fingerprints of the keys the page
//! is verified with (the DOM contract in docs/dashboard.md).

use std::time::{Duration, SystemTime};

use super::html::Html;
use super::trust::{fingerprint, Trust};

/// What a page's frame shows besides its content.
pub struct Frame<'a> {
    /// `data-page`: `overview`, `model`, `witnesses` or `entries`.
    pub page: &'static str,
    /// The page title (also its `<h1>`).
    pub title: &'a str,
    /// The keys the log uses.
    pub trust: &'a Trust,
    /// Size of the latest published checkpoint and when it was published.
    pub published: Option<(u64, SystemTime)>,
}

const NAV: &[(&str, &str, &str)] = &[
    ("overview", "/ui/", "Overview"),
    ("entries", "/ui/entries", "Entries"),
    ("witnesses", "/ui/witnesses", "Witnesses"),
];

/// Writes everything up to and including the page's `<h1>` and checkpoint
/// line.
pub fn begin(h: &mut Html, f: &Frame<'_>) {
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<meta name=\"color-scheme\" content=\"light dark\">")
        .open("title", &[])
        .text(f.title)
        .text(" · Custody ")
        .text(f.trust.origin())
        .close("title")
        .raw("<link rel=\"stylesheet\" href=\"/ui/assets/dashboard.css\">")
        .raw("<link rel=\"icon\" href=\"/ui/assets/favicon.svg\" type=\"image/svg+xml\">")
        .raw("<script type=\"module\" src=\"/ui/assets/js/dashboard.js\"></script></head>")
        .open("body", &[("data-page", f.page), ("data-origin", f.trust.origin())])
        .raw("<a class=\"skip\" href=\"#main\">Skip to content</a>")
        .raw("<header class=\"site\"><p class=\"brand\">Custody</p>")
        .el("p", &[("class", "origin")], f.trust.origin())
        .raw("<nav aria-label=\"Dashboard\"><ul>");
    for (page, href, label) in NAV {
        h.raw("<li>");
        if *page == f.page {
            h.el("a", &[("href", href), ("aria-current", "page")], label);
        } else {
            h.el("a", &[("href", href)], label);
        }
        h.raw("</li>");
    }
    h.raw("</ul></nav></header><main id=\"main\" tabindex=\"-1\">").el("h1", &[], f.title);
    checkpoint_line(h, f.published);
}

fn checkpoint_line(h: &mut Html, published: Option<(u64, SystemTime)>) {
    match published {
        Some((size, at)) => {
            let size_text = size.to_string();
            h.open("p", &[("id", "checkpoint-status"), ("data-state", "pending"), ("data-size", &size_text)])
                .text("Latest published checkpoint: ")
                .num(size)
                .text(" entries, published ")
                .text(&age(at))
                .text(". Not yet verified in your browser.")
                .close("p");
        }
        None => {
            h.el(
                "p",
                &[("id", "checkpoint-status"), ("data-state", "pending")],
                "No checkpoint has been published yet: nothing can be verified.",
            );
        }
    }
}

/// Closes `<main>` and writes the trust panel and the footer.
pub fn end(h: &mut Html, f: &Frame<'_>) {
    h.raw("</main>");
    trust_panel(h, f.trust);
    h.raw("<footer class=\"site\"><p>Read-only view served by this log. Every row is checked in your ")
        .raw("browser against the log's signed checkpoint when JavaScript is on; ")
        .raw("<code>custody audit</code> checks everything.</p></footer></body></html>\n");
}

fn trust_panel(h: &mut Html, trust: &Trust) {
    h.raw("<section id=\"trust\" aria-live=\"polite\" aria-labelledby=\"trust-heading\">")
        .raw("<h2 id=\"trust-heading\">Keys this page is verified with</h2>")
        .raw("<p>Compare these fingerprints with the ones your organisation published. They are the ")
        .raw("SHA-256 of each public key.</p><dl class=\"keys\">")
        .raw("<dt>Log key</dt>")
        .open("dd", &[])
        .el("span", &[("class", "key-name")], trust.origin())
        .raw(" ")
        .el("code", &[("class", "fingerprint"), ("data-key", "log")], &fingerprint(&trust.log_key))
        .close("dd");
    match trust.policy() {
        Some(p) => {
            for w in p.witnesses() {
                h.raw("<dt>Witness key</dt>")
                    .open("dd", &[])
                    .el("span", &[("class", "key-name")], &w.name)
                    .raw(" ")
                    .el(
                        "code",
                        &[("class", "fingerprint"), ("data-witness-key", &w.name)],
                        &fingerprint(&w.key),
                    )
                    .close("dd");
            }
        }
        None => {
            h.raw("<dt>Witnesses</dt><dd>None: this log runs without a witness policy.</dd>");
        }
    }
    h.raw("</dl><p id=\"trust-status\" data-state=\"unverified\">Not verified: JavaScript is off.</p>")
        .raw("<details id=\"pin\" hidden><summary>Pin your own policy</summary>")
        .raw("<label for=\"pin-policy\">Your tlog-policy (kept in this browser only)</label>")
        .raw("<textarea id=\"pin-policy\" rows=\"6\" spellcheck=\"false\"></textarea>")
        .raw("<p class=\"buttons\"><button id=\"pin-save\" type=\"button\">Pin this policy</button> ")
        .raw("<button id=\"pin-clear\" type=\"button\">Forget the pinned policy</button></p></details></section>");
}

/// How long ago `at` was, in words ("in the future" for a clock skew).
pub fn age(at: SystemTime) -> String {
    match SystemTime::now().duration_since(at) {
        Ok(d) => format!("{} ago", duration(d)),
        Err(_) => "just now".to_owned(),
    }
}

/// A duration in the largest whole unit.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_secs(5)), "5 s");
        assert_eq!(duration(Duration::from_secs(600)), "10 min");
        assert_eq!(duration(Duration::from_secs(3 * 3600)), "3 h");
        assert_eq!(duration(Duration::from_secs(9 * 86_400)), "9 days");
    }
}
