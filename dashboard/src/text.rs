//! Bounded text: the one truncation helper every page, listing and CLI line
//! uses for stored strings ([`clip`]), and a JSON pretty-printer that works
//! on the text ([`pretty_json`]) so stored args are never parsed into a
//! recursive `serde_json::Value` (any producer may have written
//! `[[[[…]]]]` five thousand deep).

/// Bytes of args shown in a list row.
pub(crate) const ARGS_PREVIEW_BYTES: usize = 120;
/// Bytes of an error shown in a list row.
pub(crate) const ERROR_PREVIEW_BYTES: usize = 160;
/// Bytes of a short stored string (type, queue, idempotency key, host, cron
/// fields) shown anywhere.
pub(crate) const FIELD_BYTES: usize = 200;
/// Bytes of one error shown on the job page (the raw record has it whole).
pub(crate) const ERROR_PAGE_BYTES: usize = 16 * 1024;
/// Bytes of args pretty-printed on the job page; longer args are cut, with a
/// link to the full JSON.
pub(crate) const ARGS_PAGE_BYTES: usize = 64 * 1024;

/// `s` if it is at most `max` bytes; otherwise its longest prefix of at most
/// `max` bytes that ends on a character boundary, followed by a visible
/// marker `… (N bytes, truncated)` giving the full length.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    format!("{}… ({} bytes, truncated)", prefix(s, max), s.len())
}

/// Like [`clip`], also flattening line breaks (for one-line table cells).
pub(crate) fn clip_line(s: &str, max: usize) -> String {
    clip(s, max).replace(['\n', '\r'], " ")
}

/// The longest prefix of `s` of at most `max` bytes on a character boundary.
pub(crate) fn prefix(s: &str, max: usize) -> &str {
    let mut cut = max.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// Deepest nesting [`pretty_json`] indents; deeper text is shown as stored
/// (indenting 5,000 levels would make the page quadratic in the depth).
const PRETTY_DEPTH_MAX: usize = 32;

/// Pretty-prints JSON text with two-space indents by walking its
/// characters (strings are copied verbatim), so no recursion happens
/// whatever the nesting. Nested deeper than [`PRETTY_DEPTH_MAX`], the text
/// comes back as stored. Input that is not JSON comes out re-indented but
/// otherwise unchanged.
pub(crate) fn pretty_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + raw.len() / 4);
    let mut depth = 0usize;
    let (mut in_str, mut escaped) = (false, false);
    let mut chars = raw.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                // Keep `{}` and `[]` on one line.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    if depth > PRETTY_DEPTH_MAX {
                        return raw.to_owned();
                    }
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_marks_the_cut_on_a_character_boundary() {
        assert_eq!(clip("hi", 2), "hi");
        assert_eq!(clip("héllo", 2), "h… (6 bytes, truncated)");
        assert_eq!(clip_line("a\nb", 10), "a b");
    }

    #[test]
    fn pretty_printing_matches_serde_and_survives_any_depth() {
        let raw = r#"{"a":[1,{"b":"x,:{\"y"}],"c":{},"d":[ ]}"#;
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(pretty_json(raw), serde_json::to_string_pretty(&v).unwrap());
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(pretty_json(&deep), deep);
    }
}
