//! The report as Markdown, for people and for tickets.

use super::{basis_words, Report, ReportRow};

/// A value in a Markdown table cell: pipes escaped, line breaks and markup
/// neutralised (Markdown viewers render inline HTML).
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            '`' => out.push('\''),
            c => out.push(c),
        }
    }
    out
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "-".to_owned(), cell)
}

fn row_line(e: &ReportRow) -> String {
    let r = &e.row;
    let event = if e.break_glass { format!("**BREAK-GLASS** {}", r.event) } else { r.event.clone() };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        r.index,
        r.time,
        e.received,
        cell(&r.actor),
        event,
        opt(&r.name),
        opt(&r.version),
        opt(&e.environment),
        opt(&e.pipeline),
        cell(&r.detail),
        cell(&r.reason),
        e.verdict.as_str(),
    )
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut m = format!(
        "# Compliance report: {}\n\nPeriod: {} to {} (inclusive, by {}, UTC)\n\n",
        cell(&r.subject),
        r.from,
        r.to,
        basis_words(r.time_basis)
    );
    if !r.break_glass.is_empty() {
        let list: Vec<String> = r.break_glass.iter().map(u64::to_string).collect();
        m.push_str(&format!(
            "> **BREAK-GLASS: {} emergency action(s) bypassed a rule in this period** (entries {}). Each is listed below with its reason.\n\n",
            r.break_glass.len(),
            list.join(", ")
        ));
    }
    if !r.integrity_violations.is_empty() {
        let list: Vec<String> = r.integrity_violations.iter().map(u64::to_string).collect();
        m.push_str(&format!(
            "> **INTEGRITY VIOLATIONS: the log recorded {} in this period** (entries {}).\n\n",
            r.integrity_violations.len(),
            list.join(", ")
        ));
    }
    m.push_str(&format!(
        "Log: `{}` at size {}, root `{}`; checkpoint satisfied the trust policy{} and was verified consistent with the previously seen one. Every event below is an entry whose inclusion under this checkpoint was verified.\n\n",
        cell(&r.log.origin),
        r.log.size,
        r.log.root,
        if r.log.cosigners.is_empty() {
            String::new()
        } else {
            format!(" (cosigned by {})", cell(&r.log.cosigners.join(", ")))
        }
    ));
    m.push_str(&format!("## Completeness\n\n{}\n\n", cell(&r.completeness.explanation)));
    m.push_str(&match r.audit.audited_size {
        Some(s) => format!(
            "Audit verdict: every entry below {s} was replayed without a finding by a full audit (rows `audited`); later rows are `included` only.\n\n"
        ),
        None => "Audit verdict: no full audit by this client; rows are `included` (run with `--audit` to replay every rule).\n\n".to_owned(),
    });
    m.push_str("## Events by type\n\n| event | count |\n|---|---|\n");
    for (k, v) in &r.events_by_type {
        m.push_str(&format!("| {} | {v} |\n", cell(k)));
    }
    m.push_str("\n## Actors\n\n| actor | events |\n|---|---|\n");
    for (k, v) in &r.actors {
        m.push_str(&format!("| {} | {v} |\n", cell(k)));
    }
    let versions: Vec<String> = r.versions_affected.iter().map(|v| cell(v)).collect();
    m.push_str(&format!(
        "\n## Versions affected\n\n{}\n",
        if versions.is_empty() { "none".to_owned() } else { versions.join(", ") }
    ));
    m.push_str("\n## Events\n\n| index | time | received | actor | event | name | version | environment | pipeline | detail | reason | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for e in &r.events {
        m.push_str(&row_line(e));
    }
    if r.accesses_omitted > 0 {
        m.push_str(&format!(
            "\n{} more access entries were proven and counted but are not listed (`--max-accesses`).\n",
            r.accesses_omitted
        ));
    }
    m
}
