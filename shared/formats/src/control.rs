//! deb822 control data: paragraphs of `Name: value` fields, parsed and written
//! in their original order.
//!
//! [`ControlParser`] is sans-I/O: feed it lines, it hands back paragraphs. The
//! convenience functions [`parse_one`] and [`parse_all`] drive it over a string.
//!
//! Two modes. [`Mode::Strict`] is for data that comes from packages (a `.deb`'s
//! `control` file, a `.dsc`, a `.changes`): it refuses anything that some deb822
//! reader could split differently from another, because that is how a second
//! stanza or a forged field gets smuggled into an index. [`Mode::Lenient`] is for
//! index files raptr wrote itself and accepts several paragraphs and comments.
//!
//! Values are kept as written: the first line without its leading blanks and
//! trailing whitespace, then each continuation line after a `\n`, with its own
//! leading blank. A field whose first line is empty (`Files:`) starts with `\n`.

use std::fmt;
use std::io::{BufRead, Read};

use crate::quote::excerpt;

/// One `Name: value` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// An ordered list of fields. Lookups ignore ASCII case, as deb822 requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    fields: Vec<Field>,
}

impl Paragraph {
    pub fn new() -> Self {
        Paragraph::default()
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of a field, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets a field, replacing its value in place or appending it at the end.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .fields
            .iter_mut()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        {
            Some(f) => f.value = value,
            None => self.fields.push(Field {
                name: name.to_string(),
                value,
            }),
        }
    }

    /// Removes a field and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self
            .fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))?;
        Some(self.fields.remove(i).value)
    }

    /// The lines of a multi-line value (`Files`, `Checksums-*`), without the
    /// empty first line and without leading blanks.
    pub fn lines(&self, name: &str) -> Vec<&str> {
        self.get(name)
            .map(|v| {
                v.split('\n')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl FromIterator<Field> for Paragraph {
    fn from_iter<T: IntoIterator<Item = Field>>(iter: T) -> Self {
        Paragraph {
            fields: iter.into_iter().collect(),
        }
    }
}

/// Writes the paragraph in deb822 form, one field per line, without the blank
/// line that separates paragraphs.
impl fmt::Display for Paragraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for field in &self.fields {
            if field.value.starts_with('\n') || field.value.is_empty() {
                writeln!(f, "{}:{}", field.name, field.value)?;
            } else {
                writeln!(f, "{}: {}", field.name, field.value)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Package-supplied data: one paragraph, no control characters, no blank or
    /// whitespace-only line inside it, no duplicate field, no comment.
    Strict,
    /// Archive-generated data: several paragraphs, `#` comments skipped.
    Lenient,
}

/// What is wrong with control data, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ControlError {
    pub line: usize,
    pub problem: String,
}

/// Sans-I/O deb822 parser: call [`feed`](ControlParser::feed) with each line
/// (without its `\n`), then [`finish`](ControlParser::finish).
#[derive(Debug)]
pub struct ControlParser {
    mode: Mode,
    line: usize,
    current: Vec<Field>,
    /// The current paragraph's field names, lowercased: a duplicate is found
    /// in constant time, so a megabyte of one-letter fields costs linear time.
    names: std::collections::HashSet<String>,
    /// A paragraph has ended; strict mode allows nothing but blank lines after it.
    blank_after_paragraph: bool,
}

fn err(line: usize, problem: impl Into<String>) -> ControlError {
    ControlError {
        line,
        problem: problem.into(),
    }
}

/// A field name as Debian Policy 5.1 defines it: printable US-ASCII without
/// space or colon, not starting with `#` or `-`.
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('#')
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| (b'!'..=b'~').contains(&b) && b != b':')
}

impl ControlParser {
    pub fn new(mode: Mode) -> Self {
        ControlParser {
            mode,
            line: 0,
            current: Vec::new(),
            names: std::collections::HashSet::new(),
            blank_after_paragraph: false,
        }
    }

    /// Feeds one line, without its line feed. Returns a paragraph when this line
    /// ended one.
    pub fn feed(&mut self, line: &str) -> Result<Option<Paragraph>, ControlError> {
        self.line += 1;
        let n = self.line;
        if let Some(c) = line
            .chars()
            .find(|&c| (c.is_control() && c != '\t') || c == '\u{7f}')
        {
            if self.mode == Mode::Strict || c != '\r' || !line.ends_with('\r') {
                return Err(err(n, format!("control character U+{:04X}", c as u32)));
            }
        }
        let line = line.strip_suffix('\r').unwrap_or(line);

        if line.trim().is_empty() {
            if line.is_empty() || self.mode == Mode::Lenient || self.current.is_empty() {
                return Ok(self.end_paragraph());
            }
            return Err(err(n, "whitespace-only line inside a paragraph"));
        }
        if self.mode == Mode::Strict && self.blank_after_paragraph {
            return Err(err(
                n,
                "more than one paragraph (a blank line ends the control data)",
            ));
        }
        if line.starts_with('#') {
            if self.mode == Mode::Lenient {
                return Ok(None);
            }
            return Err(err(n, "comment line in package control data"));
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            let Some(last) = self.current.last_mut() else {
                return Err(err(n, "continuation line before any field"));
            };
            last.value.push('\n');
            last.value.push_str(line.trim_end());
            return Ok(None);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(err(n, format!("not a field: {}", excerpt(line))));
        };
        if !valid_field_name(name) {
            return Err(err(n, format!("malformed field name {}", excerpt(name))));
        }
        if !self.names.insert(name.to_ascii_lowercase()) {
            return Err(err(n, format!("duplicate field {}", excerpt(name))));
        }
        self.current.push(Field {
            name: name.to_string(),
            value: value.trim().to_string(),
        });
        Ok(None)
    }

    fn end_paragraph(&mut self) -> Option<Paragraph> {
        if self.current.is_empty() {
            return None;
        }
        self.blank_after_paragraph = true;
        self.names.clear();
        Some(Paragraph {
            fields: std::mem::take(&mut self.current),
        })
    }

    /// Ends the input; returns the last paragraph if it was not followed by a
    /// blank line.
    pub fn finish(mut self) -> Option<Paragraph> {
        self.end_paragraph()
    }
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    // A final line feed ends the last line rather than starting an empty one.
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.split('\n')
}

/// Parses exactly one paragraph (strict mode unless told otherwise).
pub fn parse_one(text: &str, mode: Mode) -> Result<Paragraph, ControlError> {
    let mut all = parse_all(text, mode)?;
    match all.len() {
        0 => Err(err(1, "no fields")),
        1 => Ok(all.remove(0)),
        _ => Err(err(1, "more than one paragraph")),
    }
}

/// Parses every paragraph of a text.
pub fn parse_all(text: &str, mode: Mode) -> Result<Vec<Paragraph>, ControlError> {
    let mut parser = ControlParser::new(mode);
    let mut out = Vec::new();
    if text.is_empty() {
        return Ok(out);
    }
    for line in lines(text) {
        if let Some(p) = parser.feed(line)? {
            out.push(p);
        }
    }
    out.extend(parser.finish());
    Ok(out)
}

/// The longest line [`Paragraphs`] reads; a longer one is an error, not an
/// allocation the input decides.
pub const MAX_LINE: u64 = 1 << 20;

/// An iterator over the paragraphs of a buffered reader.
#[derive(Debug)]
pub struct Paragraphs<R> {
    reader: R,
    parser: Option<ControlParser>,
    buf: String,
}

impl<R: BufRead> Paragraphs<R> {
    pub fn new(reader: R, mode: Mode) -> Self {
        Paragraphs {
            reader,
            parser: Some(ControlParser::new(mode)),
            buf: String::new(),
        }
    }
}

/// An error from [`Paragraphs`]: the reader failed, or the data is malformed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl<R: BufRead> Iterator for Paragraphs<R> {
    type Item = Result<Paragraph, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let parser = self.parser.as_mut()?;
            self.buf.clear();
            match (&mut self.reader)
                .take(MAX_LINE + 1)
                .read_line(&mut self.buf)
            {
                Ok(n) if n as u64 > MAX_LINE => {
                    self.parser = None;
                    return Some(Err(ReadError::Io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a line longer than {MAX_LINE} bytes"),
                    ))));
                }
                Err(e) => {
                    self.parser = None;
                    return Some(Err(e.into()));
                }
                Ok(0) => return self.parser.take()?.finish().map(Ok),
                Ok(_) => {
                    let line = self.buf.strip_suffix('\n').unwrap_or(&self.buf);
                    match parser.feed(line) {
                        Ok(Some(p)) => return Some(Ok(p)),
                        Ok(None) => {}
                        Err(e) => {
                            self.parser = None;
                            return Some(Err(e.into()));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "Package: hello\nVersion: 1.0\nDescription: greets\n a friendly\n .\n program\nFiles:\n abc 1 x\n";

    #[test]
    fn round_trip_keeps_order_and_values() {
        let p = parse_one(HELLO, Mode::Strict).expect("valid");
        assert_eq!(p.get("package"), Some("hello"));
        assert_eq!(
            p.get("Description"),
            Some("greets\n a friendly\n .\n program")
        );
        assert_eq!(p.lines("Files"), vec!["abc 1 x"]);
        assert_eq!(p.to_string(), HELLO);
    }

    #[test]
    fn strict_rejects_smuggling() {
        let cases = [
            (
                "Package: a\nDescription: x\n \nPackage: evil\n",
                "whitespace-only",
            ),
            (
                "Package: a\nDescription: x\n\nPackage: evil\n",
                "more than one paragraph",
            ),
            ("Package: a\nDescription: x\rPackage: evil\n", "U+000D"),
            ("Package: a\r\nVersion: 1\r\n", "U+000D"),
            ("Package: a\nPackage: b\n", "duplicate field"),
            ("Package: a\npackage: b\n", "duplicate field"),
            ("Pack age: a\n", "malformed field name"),
            ("-Package: a\n", "malformed field name"),
            (" x\nPackage: a\n", "continuation line before any field"),
            ("Package: a\n# comment\n", "comment"),
            ("Package: a\nnot a field\n", "not a field"),
            ("Package: a\u{1b}[31m\n", "U+001B"),
        ];
        for (text, want) in cases {
            let e = parse_one(text, Mode::Strict).expect_err(text);
            assert!(e.problem.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn trailing_blank_lines_are_fine() {
        let p = parse_one("Package: a\n\n\n", Mode::Strict).expect("valid");
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn lenient_reads_many_paragraphs() {
        let all = parse_all("# c\nA: 1\n\nA: 2\nB: 3\n", Mode::Lenient).expect("valid");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].get("b"), Some("3"));
        let it: Vec<_> = Paragraphs::new("A: 1\n\nA: 2\n".as_bytes(), Mode::Lenient)
            .collect::<Result<_, _>>()
            .expect("valid");
        assert_eq!(it.len(), 2);
    }
}
