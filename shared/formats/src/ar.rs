//! The ar container of a `.deb`, read from a stream one member at a time.
//!
//! A `.deb` is `!<arch>\n` followed by members, each a 60-byte header (name,
//! mtime, uid, gid, mode, decimal size, the two bytes `` `\n ``), the member's
//! bytes, and one padding byte after a member of odd length. Its three members
//! have short names, so the long-name forms of GNU ar (`//` name table, `/N`
//! references) and BSD ar (`#1/N`, the name stored before the data) are
//! refused: they are the parts of the format where a reader allocates what
//! the input declares. Nothing here allocates more than a header.
//!
//! What it does not do: read member data for the caller (the caller reads
//! exactly [`MemberHeader::size`] bytes from [`ArReader::member`]), or write
//! archives.

use std::io::{self, Read};

use crate::quote::excerpt_bytes;

/// The global header of an ar archive.
pub const MAGIC: &[u8; 8] = b"!<arch>\n";
/// The size of a member header.
pub const HEADER_LEN: usize = 60;
/// The largest member size the header's ten decimal digits can state.
pub const MAX_MEMBER_SIZE: u64 = 9_999_999_999;

/// A member header, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHeader {
    /// The name, without the trailing spaces and the GNU trailing `/`.
    pub name: String,
    /// The size of the member's data, padding not included.
    pub size: u64,
}

/// What is wrong with an ar archive. `Io` means the reader failed.
#[derive(Debug, thiserror::Error)]
pub enum ArError {
    #[error("{0}")]
    Invalid(String),
    #[error("reading failed: {0}")]
    Io(#[source] io::Error),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ArError> {
    Err(ArError::Invalid(msg.into()))
}

/// Parses one member header. Pure: the 60 bytes are all it looks at.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<MemberHeader, ArError> {
    if &h[58..60] != b"`\n" {
        return invalid(format!(
            "a member header does not end with the ar magic (found {})",
            excerpt_bytes(&h[58..60])
        ));
    }
    let raw_name = &h[..16];
    if raw_name.starts_with(b"#1/") {
        return invalid(format!(
            "member name {} uses the BSD long-name form, which a .deb never needs",
            excerpt_bytes(trim_spaces(raw_name))
        ));
    }
    if raw_name.starts_with(b"/") {
        return invalid(format!(
            "member name {} uses the GNU long-name or symbol-table form, which a .deb never needs",
            excerpt_bytes(trim_spaces(raw_name))
        ));
    }
    let name = trim_spaces(raw_name);
    let name = name.strip_suffix(b"/").unwrap_or(name);
    if name.is_empty() || !name.iter().all(u8::is_ascii_graphic) || name.contains(&b'/') {
        return invalid(format!(
            "member name {} is not a printable file name",
            excerpt_bytes(raw_name)
        ));
    }
    let size_field = trim_spaces(&h[48..58]);
    if size_field.is_empty() || !size_field.iter().all(u8::is_ascii_digit) {
        return invalid(format!(
            "member {} has a malformed size field {}",
            excerpt_bytes(name),
            excerpt_bytes(&h[48..58])
        ));
    }
    // At most ten digits, so this cannot overflow.
    let size = size_field
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    Ok(MemberHeader {
        name: String::from_utf8_lossy(name).into_owned(),
        size,
    })
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    &b[..end]
}

/// Reads members in order from a stream.
#[derive(Debug)]
pub struct ArReader<R> {
    inner: R,
    /// Bytes of the current member not yet read, and its padding byte.
    left: u64,
    padding: bool,
    started: bool,
}

impl<R: Read> ArReader<R> {
    pub fn new(inner: R) -> Self {
        ArReader {
            inner,
            left: 0,
            padding: false,
            started: false,
        }
    }

    /// The next member's header, or `None` at a clean end of the archive.
    /// Whatever the caller left unread of the previous member is skipped.
    pub fn next_member(&mut self) -> Result<Option<MemberHeader>, ArError> {
        if !self.started {
            let mut magic = [0u8; 8];
            read_exact_or_eof(&mut self.inner, &mut magic).and_then(|n| {
                if n == 8 && &magic == MAGIC {
                    Ok(())
                } else {
                    invalid("not an ar archive (no !<arch> magic)")
                }
            })?;
            self.started = true;
        }
        self.skip_rest()?;
        let mut header = [0u8; HEADER_LEN];
        match read_exact_or_eof(&mut self.inner, &mut header)? {
            0 => return Ok(None),
            HEADER_LEN => {}
            n => {
                return invalid(format!(
                    "the archive ends inside a member header ({n} of 60 bytes)"
                ))
            }
        }
        let h = parse_header(&header)?;
        self.left = h.size;
        self.padding = h.size % 2 == 1;
        Ok(Some(h))
    }

    /// A reader of the current member's data: it ends where the member ends.
    pub fn member(&mut self) -> Member<'_, R> {
        Member { ar: self }
    }

    /// Skips what is left of the current member and its padding byte.
    fn skip_rest(&mut self) -> Result<(), ArError> {
        if self.left > 0 {
            let want = self.left;
            let skipped = io::copy(&mut (&mut self.inner).take(want), &mut io::sink())
                .map_err(ArError::Io)?;
            self.left -= skipped;
            if self.left > 0 {
                return invalid("the archive ends inside a member");
            }
        }
        if self.padding {
            // The padding byte is `\n` by convention; its value carries
            // nothing, so it is not checked. Some writers leave it out after
            // the last member: the end of the stream then simply comes first.
            let mut pad = [0u8; 1];
            read_exact_or_eof(&mut self.inner, &mut pad)?;
            self.padding = false;
        }
        Ok(())
    }

    /// The underlying reader, positioned after the last member read.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// The data of the current member. Reading past its end returns 0.
#[derive(Debug)]
pub struct Member<'a, R> {
    ar: &'a mut ArReader<R>,
}

impl<R: Read> Read for Member<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ar.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.ar.left).unwrap_or(usize::MAX));
        let n = self.ar.inner.read(&mut buf[..want])?;
        self.ar.left -= n as u64;
        Ok(n)
    }
}

/// Fills `buf` unless the stream ends first; returns how many bytes it
/// read. (Both container readers need a short read at the end of the stream
/// told apart from a failure, which `read_exact` does not do.)
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, ArError> {
    read_full(r, buf).map_err(ArError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: &str) -> [u8; HEADER_LEN] {
        let mut h = [b' '; HEADER_LEN];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[48..48 + size.len()].copy_from_slice(size.as_bytes());
        h[58..].copy_from_slice(b"`\n");
        h
    }

    #[test]
    fn short_names_with_or_without_gnu_slash() {
        for name in ["debian-binary", "debian-binary/"] {
            let h = parse_header(&header(name, "4")).expect("valid");
            assert_eq!(h.name, "debian-binary");
            assert_eq!(h.size, 4);
        }
        let h = parse_header(&header("data.tar.xz", "9999999999")).expect("valid");
        assert_eq!(h.size, MAX_MEMBER_SIZE);
    }

    #[test]
    fn long_name_forms_are_refused_before_anything_is_read() {
        for (name, want) in [
            ("#1/5555555555", "BSD long-name"),
            ("//", "GNU long-name"),
            ("/0180000", "GNU long-name"),
            ("/", "symbol-table"),
            ("a/b", "not a printable"),
            ("", "not a printable"),
        ] {
            let e = parse_header(&header(name, "10")).expect_err(name);
            assert!(e.to_string().contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn malformed_sizes_and_magic() {
        for size in ["", "-1", "0x10", "1 2", "12a"] {
            assert!(parse_header(&header("x", size)).is_err(), "{size:?}");
        }
        let mut h = header("x", "1");
        h[59] = b'x';
        assert!(parse_header(&h).is_err());
    }

    #[test]
    fn members_are_read_in_order_and_skipped_with_padding() {
        let mut a = MAGIC.to_vec();
        a.extend_from_slice(&header("one", "3"));
        a.extend_from_slice(b"abc\n");
        a.extend_from_slice(&header("two", "2"));
        a.extend_from_slice(b"de");
        let mut r = ArReader::new(&a[..]);
        let one = r.next_member().expect("ok").expect("one");
        assert_eq!((one.name.as_str(), one.size), ("one", 3));
        let mut first = [0u8; 1];
        r.member().read_exact(&mut first).expect("read");
        assert_eq!(&first, b"a");
        let two = r.next_member().expect("ok").expect("two");
        assert_eq!(two.name, "two");
        let mut data = Vec::new();
        r.member().read_to_end(&mut data).expect("read");
        assert_eq!(data, b"de");
        assert!(r.next_member().expect("ok").is_none());
    }

    #[test]
    fn truncation_is_an_error_not_an_end() {
        let mut a = MAGIC.to_vec();
        a.extend_from_slice(&header("one", "5"));
        a.extend_from_slice(b"ab");
        let mut r = ArReader::new(&a[..]);
        r.next_member().expect("ok").expect("one");
        assert!(r.next_member().is_err());
        let mut cut = MAGIC.to_vec();
        cut.extend_from_slice(&header("one", "5")[..30]);
        assert!(ArReader::new(&cut[..]).next_member().is_err());
        assert!(ArReader::new(&b"!<arch>"[..]).next_member().is_err());
    }
}
