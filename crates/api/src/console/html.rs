//! A small HTML writer: markup comes only from string literals, every value goes through
//! [`escape`], so nothing a user named (an instance, a key) can become markup.

/// `s` with `& < > " '` replaced by character references: safe as element text and as a
/// quoted attribute value.
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

/// An HTML document being written.
#[derive(Default)]
pub struct Html(String);

impl Html {
    /// Markup, from a literal only.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// Text, escaped.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.0.push_str(&escape(value));
        self
    }

    /// `<tag class="class">text</tag>`, the text escaped.
    pub fn elem(&mut self, tag: &'static str, class: Option<&str>, value: &str) -> &mut Self {
        self.0.push('<');
        self.0.push_str(tag);
        if let Some(class) = class {
            self.0.push_str(" class=\"");
            self.0.push_str(&escape(class));
            self.0.push('"');
        }
        self.0.push('>');
        self.0.push_str(&escape(value));
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    /// The document.
    pub fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_become_markup() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        let mut h = Html::default();
        h.elem("td", Some("a\"b"), "<b>").text("&");
        assert_eq!(h.finish(), "<td class=\"a&quot;b\">&lt;b&gt;</td>&amp;");
    }
}
