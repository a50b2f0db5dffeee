//! Short, escaped excerpts of untrusted text for messages.
//!
//! Every reason, report and log line that mentions something from the input
//! (a member name, a field, a file name) goes through [`excerpt`] or
//! [`excerpt_bytes`]: the result is quoted, has no control character or line
//! break, and is at most [`MAX_EXCERPT`] characters of the original plus a note
//! of its full length. A 300 MB member name becomes a line, not a 300 MB
//! report.

use std::fmt::Write as _;

/// How many characters of escaped text an excerpt keeps.
pub const MAX_EXCERPT: usize = 80;

/// `"text"` with control characters and non-ASCII escaped; cut to
/// [`MAX_EXCERPT`] escaped characters with `…` and the full length in bytes
/// when longer.
pub fn excerpt(s: &str) -> String {
    quoted(s, s.len())
}

/// The longest message [`line`] lets through.
pub const MAX_LINE: usize = 1000;

/// A whole message made safe to print as one line: control characters
/// escaped, and cut at [`MAX_LINE`] bytes with the full length named. Reasons
/// and reports pass through this last, whatever their parts did.
pub fn line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_LINE && !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(MAX_LINE + 24);
    for c in s.chars() {
        let piece = if c.is_control() {
            c.escape_default().to_string()
        } else {
            c.to_string()
        };
        if out.len() + piece.len() > MAX_LINE {
            let _ = write!(out, "… ({} bytes)", s.len());
            break;
        }
        out.push_str(&piece);
    }
    std::borrow::Cow::Owned(out)
}

/// A name as messages show it: as it is when it is short printable ASCII
/// (every name raptr accepts), an [`excerpt`] otherwise.
pub fn name(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_EXCERPT && !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic()) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(excerpt(s))
    }
}

/// [`excerpt`] of bytes that may not be UTF-8 (invalid sequences become
/// U+FFFD, shown escaped).
pub fn excerpt_bytes(b: &[u8]) -> String {
    // Only the head can appear in the excerpt; decoding more would cost time
    // proportional to the input for nothing.
    let head = &b[..b.len().min(MAX_EXCERPT * 4)];
    quoted(&String::from_utf8_lossy(head), b.len())
}

fn quoted(s: &str, total: usize) -> String {
    let mut out = String::with_capacity(MAX_EXCERPT + 24);
    out.push('"');
    let mut kept = 0usize;
    let mut whole = true;
    let mut seen = 0usize;
    for c in s.chars() {
        let escaped: String = match c {
            '"' => "\\\"".into(),
            '\\' => "\\\\".into(),
            c if c.is_ascii_graphic() || c == ' ' => c.to_string(),
            c => c.escape_default().to_string(),
        };
        if kept + escaped.len() > MAX_EXCERPT {
            whole = false;
            break;
        }
        seen += c.len_utf8();
        kept += escaped.len();
        out.push_str(&escaped);
    }
    out.push('"');
    if !whole || total > seen {
        let _ = write!(out, "… ({total} bytes)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(excerpt("hello_1.0"), "\"hello_1.0\"");
        assert_eq!(excerpt("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn control_characters_never_reach_the_message() {
        let e = excerpt("a\nb\rc\u{1b}[31m\u{0}");
        assert!(!e.chars().any(char::is_control), "{e}");
        assert!(e.contains("\\n"), "{e}");
    }

    #[test]
    fn long_text_is_cut_and_its_length_named() {
        let long = "x".repeat(300_000_000 / 1000);
        let e = excerpt(&long);
        assert!(e.len() < MAX_EXCERPT + 30, "{e}");
        assert!(e.ends_with("… (300000 bytes)"), "{e}");
        let escaped = "\u{1}".repeat(1000);
        assert!(excerpt(&escaped).len() < MAX_EXCERPT + 30);
    }

    #[test]
    fn lines_are_one_line_and_bounded() {
        assert_eq!(line("fine: reason"), "fine: reason");
        let l = line("a\nb");
        assert_eq!(l, "a\\nb");
        let input = "é".repeat(10_000);
        let long = line(&input);
        assert!(
            long.len() <= MAX_LINE + 24 && long.ends_with("(20000 bytes)"),
            "{long}"
        );
    }

    #[test]
    fn names_are_plain_unless_odd() {
        assert_eq!(name("hello_1.0-1_amd64.deb"), "hello_1.0-1_amd64.deb");
        assert_eq!(name("a b"), "\"a b\"");
        assert_eq!(name(""), "\"\"");
        assert!(name(&"n".repeat(1000)).ends_with("(1000 bytes)"));
    }

    #[test]
    fn bytes_are_escaped_and_cut() {
        assert_eq!(excerpt_bytes(b"ab\xffc"), "\"ab\\u{fffd}c\"");
        let e = excerpt_bytes(&vec![b'#'; 1 << 20]);
        assert!(e.len() < MAX_EXCERPT + 30, "{e}");
        assert!(e.ends_with("… (1048576 bytes)"), "{e}");
    }
}
