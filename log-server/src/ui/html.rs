//! An HTML writer in which unescaped output cannot be written.
//!
//! Markup only ever comes from `&'static str` literals of this crate (tag
//! names, attribute names, fixed fragments); every string known only at
//! run time (names, reasons, environments, digests, numbers) goes through
//! [`Html::text`] or an attribute value, both escaped. There is no method
//! taking a runtime `&str` as markup, so a page cannot forget to escape.
//!
//! Characters that would show something other than what was signed
//! (control characters, line and paragraph separators, bidi overrides and
//! isolates, zero-width characters: the ones
//! [`custody_registry::statement::text::is_refused_char`] refuses in
//! statements) are written as a visible `[U+XXXX]` marker instead of
//! themselves. The log refuses such text, so a marker on a page means a
//! value that never went through the statement rules.

use std::fmt::Write as _;

use custody_registry::statement::text::is_refused_char;

/// A page being written.
#[derive(Debug, Default)]
pub struct Html {
    buf: String,
}

impl Html {
    /// An empty page with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        Html { buf: String::with_capacity(bytes) }
    }

    /// Fixed markup written in this crate.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.buf.push_str(markup);
        self
    }

    /// Text content, escaped.
    pub fn text(&mut self, s: &str) -> &mut Self {
        escape_into(&mut self.buf, s);
        self
    }

    /// A number as text.
    pub fn num(&mut self, n: u64) -> &mut Self {
        let _ = write!(self.buf, "{n}");
        self
    }

    /// `<tag a="v" ...>` with every value escaped.
    pub fn open(&mut self, tag: &'static str, attrs: &[(&'static str, &str)]) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        for (name, value) in attrs {
            self.buf.push(' ');
            self.buf.push_str(name);
            self.buf.push_str("=\"");
            escape_into(&mut self.buf, value);
            self.buf.push('"');
        }
        self.buf.push('>');
        self
    }

    /// `</tag>`.
    pub fn close(&mut self, tag: &'static str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag attrs>text</tag>`.
    pub fn el(&mut self, tag: &'static str, attrs: &[(&'static str, &str)], text: &str) -> &mut Self {
        self.open(tag, attrs).text(text).close(tag)
    }

    /// A link to a dashboard path: `prefix` is a fixed path of this crate
    /// (starting with `/ui/`), `tail` a runtime part percent-encoded into
    /// it, so a link can never leave the dashboard or carry a scheme.
    pub fn link(&mut self, prefix: &'static str, tail: &str, text: &str) -> &mut Self {
        let href = format!("{prefix}{}", percent_encode_path(tail));
        self.el("a", &[("href", &href)], text)
    }

    /// `<a href="#entry-I">entry I</a>`: a link to the row of entry I on
    /// the same page.
    pub fn entry_link(&mut self, index: u64) -> &mut Self {
        let _ = write!(self.buf, "<a href=\"#entry-{index}\">entry {index}</a>");
        self
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The page.
    pub fn finish(self) -> String {
        self.buf
    }
}

/// Escapes `s` for element content and double- or single-quoted attribute
/// values, writing refused characters as visible markers.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_refused_char(c) => {
                let _ = write!(out, "[U+{:04X}]", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
fn percent_encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let mut h = Html::default();
        h.open("td", &[("title", "\"><script>alert(1)</script>")]).text("<b>&'x'</b>").close("td");
        let out = h.finish();
        assert_eq!(
            out,
            "<td title=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">&lt;b&gt;&amp;&#39;x&#39;&lt;/b&gt;</td>"
        );
    }

    #[test]
    fn reordering_and_invisible_characters_are_shown_as_markers() {
        let mut h = Html::default();
        h.text("approved by \u{202E}lortnoc\u{2069} a\u{200B}b\u{7}\n");
        assert_eq!(h.finish(), "approved by [U+202E]lortnoc[U+2069] a[U+200B]b[U+0007][U+000A]");
        // Right-to-left letters are text, not controls: kept as written.
        let mut h = Html::default();
        h.text("שלום naïve");
        assert_eq!(h.finish(), "שלום naïve");
    }

    #[test]
    fn links_stay_on_the_dashboard() {
        let mut h = Html::default();
        h.link("/ui/models/", "javascript:alert(1) \"x", "m");
        assert_eq!(h.finish(), "<a href=\"/ui/models/javascript%3Aalert%281%29%20%22x\">m</a>");
    }
}
