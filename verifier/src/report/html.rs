//! The report as one self-contained HTML page: inline CSS, no script, no
//! external resource, every value escaped, so the file can be archived,
//! mailed and opened offline, and a hostile reason or name in a statement
//! cannot inject markup into an auditor's browser.

use std::fmt::Write as _;

use super::{basis_words, Report, ReportRow};

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#111}\
table{border-collapse:collapse;margin:1em 0}\
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top;font-size:.9em}\
th{background:#eee}\
code{font-size:.9em}\
.alert{border:3px solid #b00;background:#fee;color:#700;padding:.75em;font-weight:bold}\
tr.break-glass td{background:#fdd;font-weight:bold}\
.verdict-audited{color:#060}\
.verdict-included{color:#850}";

fn opt(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "-".to_owned(), escape)
}

fn row(out: &mut String, e: &ReportRow) {
    let r = &e.row;
    let class = if e.break_glass { " class=\"break-glass\"" } else { "" };
    let event = if e.break_glass { format!("BREAK-GLASS {}", escape(&r.event)) } else { escape(&r.event) };
    let _ = writeln!(
        out,
        "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{event}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"verdict-{v}\">{v}</td></tr>",
        r.index,
        escape(&r.time),
        escape(&e.received),
        escape(&r.actor),
        opt(&r.name),
        opt(&r.version),
        opt(&e.environment),
        opt(&e.pipeline),
        escape(&r.detail),
        escape(&r.reason),
        v = e.verdict.as_str(),
    );
}

fn counts<'a>(out: &mut String, head: &str, items: impl Iterator<Item = (&'a String, &'a usize)>) {
    let _ = writeln!(out, "<table><thead><tr><th>{head}</th><th>count</th></tr></thead><tbody>");
    for (k, v) in items {
        let _ = writeln!(out, "<tr><td>{}</td><td>{v}</td></tr>", escape(k));
    }
    out.push_str("</tbody></table>\n");
}

/// The report as a self-contained HTML page.
pub fn html(r: &Report) -> String {
    let title = format!("Compliance report: {}", escape(&r.subject));
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    let _ = writeln!(
        h,
        "<p>Period: <time>{}</time> to <time>{}</time> (inclusive, by {}, UTC)</p>",
        escape(&r.from),
        escape(&r.to),
        basis_words(r.time_basis)
    );
    if !r.break_glass.is_empty() {
        let list: Vec<String> = r.break_glass.iter().map(u64::to_string).collect();
        let _ = writeln!(
            h,
            "<div class=\"alert\" id=\"break-glass\">BREAK-GLASS: {} emergency action(s) bypassed a rule in this period (entries {}). Each is highlighted below with its reason.</div>",
            r.break_glass.len(),
            list.join(", ")
        );
    }
    if !r.integrity_violations.is_empty() {
        let list: Vec<String> = r.integrity_violations.iter().map(u64::to_string).collect();
        let _ = writeln!(
            h,
            "<div class=\"alert\" id=\"integrity-violations\">INTEGRITY VIOLATIONS: the log recorded {} in this period (entries {}).</div>",
            r.integrity_violations.len(),
            list.join(", ")
        );
    }
    let cosigned = if r.log.cosigners.is_empty() {
        String::new()
    } else {
        format!(" (cosigned by {})", escape(&r.log.cosigners.join(", ")))
    };
    let _ = writeln!(
        h,
        "<h2>Checkpoint</h2>\n<p id=\"checkpoint\">Log <code>{}</code> at size {}, root <code>{}</code>; the checkpoint satisfied the trust policy{cosigned} and was verified consistent with the previously seen one. Every event below is an entry whose inclusion under this checkpoint was verified.</p>",
        escape(&r.log.origin),
        r.log.size,
        escape(&r.log.root)
    );
    let _ = writeln!(
        h,
        "<h2>Completeness</h2>\n<p id=\"completeness\">{}</p>",
        escape(&r.completeness.explanation)
    );
    let verdict = match r.audit.audited_size {
        Some(s) => format!("Every entry below {s} was replayed without a finding by a full audit (rows <em>audited</em>); later rows are <em>included</em> only."),
        None => "No full audit by this client: rows are <em>included</em> (run with <code>--audit</code> to replay every rule).".to_owned(),
    };
    let _ = writeln!(h, "<h2>Audit verdict</h2>\n<p id=\"verdict\">{verdict}</p>");
    h.push_str("<h2>Events by type</h2>\n");
    counts(&mut h, "event", r.events_by_type.iter());
    h.push_str("<h2>Actors</h2>\n");
    counts(&mut h, "actor", r.actors.iter());
    let versions: Vec<String> = r.versions_affected.iter().map(|v| escape(v)).collect();
    let _ = writeln!(
        h,
        "<h2>Versions affected</h2>\n<p>{}</p>",
        if versions.is_empty() { "none".to_owned() } else { versions.join(", ") }
    );
    h.push_str("<h2>Events</h2>\n<table id=\"events\"><thead><tr><th>index</th><th>time</th><th>received</th><th>actor</th><th>event</th><th>name</th><th>version</th><th>environment</th><th>pipeline</th><th>detail</th><th>reason</th><th>verdict</th></tr></thead><tbody>\n");
    for e in &r.events {
        row(&mut h, e);
    }
    h.push_str("</tbody></table>\n");
    if r.accesses_omitted > 0 {
        let _ = writeln!(
            h,
            "<p>{} more access entries were proven and counted but are not listed (<code>--max-accesses</code>).</p>",
            r.accesses_omitted
        );
    }
    h.push_str("</body>\n</html>\n");
    h
}
