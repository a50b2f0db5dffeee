//! The tar archives inside a `.deb` (`control.tar`, `data.tar`), walked from a
//! stream one entry at a time.
//!
//! It reads what dpkg's own tar reader does: ustar and GNU headers (checksum
//! checked, octal or base-256 numbers), GNU long names and long link names,
//! and POSIX extended headers (`path`, `linkpath` and `size` are honoured, the
//! rest skipped; global headers are skipped). Every length the input declares
//! for something this reader keeps (a long name, an extended header) is
//! checked against [`Limits`] before a byte of it is read, so a header that
//! claims a 5 GB name costs nothing. Entry data is never buffered: the caller
//! reads it from [`TarReader::data`] or leaves it to be skipped.
//!
//! What it does not do: extract anything, follow links, or decide which paths
//! are acceptable (the `.deb` reader does that with [`Entry::path`]).

use std::io::{self, Read};

use crate::quote::excerpt_bytes;

const BLOCK: usize = 512;

/// Caps on what the reader keeps in memory.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A GNU long name or long link name (`L`/`K` entries).
    pub long_name: u64,
    /// A POSIX extended header (`x`/`g` entries).
    pub extended_header: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // PATH_MAX is 4096; an extended header carries a few such values.
        Limits {
            long_name: 4096,
            extended_header: 64 << 10,
        }
    }
}

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

/// One entry's header, after long names and extended headers are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    /// The link target of a hard or symbolic link; empty otherwise.
    pub link: Vec<u8>,
    pub kind: Kind,
    /// The size of the entry's data.
    pub size: u64,
}

/// `Invalid`: the archive is malformed. `Io`: reading failed (the caller
/// decides whether the source or a decoder was at fault).
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[source] io::Error),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, TarError> {
    Err(TarError::Invalid(msg.into()))
}

/// Reads entries in order.
#[derive(Debug)]
pub struct TarReader<R> {
    inner: R,
    limits: Limits,
    /// Data of the current entry not yet read, then its padding to a block.
    left: u64,
    padding: u64,
    ended: bool,
}

/// Values an extended header or GNU long-name entry sets for the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R, limits: Limits) -> Self {
        TarReader {
            inner,
            limits,
            left: 0,
            padding: 0,
            ended: false,
        }
    }

    /// The next entry, or `None` at the end-of-archive block (or at the end
    /// of the stream, where some writers stop). Skips what the caller did not
    /// read of the previous entry.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        if self.ended {
            return Ok(None);
        }
        let mut pending = Pending::default();
        loop {
            self.skip_rest()?;
            let mut block = [0u8; BLOCK];
            match read_full(&mut self.inner, &mut block)? {
                0 => {
                    self.ended = true;
                    return if pending_is_empty(&pending) {
                        Ok(None)
                    } else {
                        invalid("the archive ends after a long name or extended header")
                    };
                }
                BLOCK => {}
                n => {
                    return invalid(format!(
                        "the archive ends inside a header ({n} of 512 bytes)"
                    ))
                }
            }
            if block.iter().all(|&b| b == 0) {
                self.ended = true;
                return if pending_is_empty(&pending) {
                    Ok(None)
                } else {
                    invalid("the archive ends after a long name or extended header")
                };
            }
            check_checksum(&block)?;
            let size = number(&block[124..136], "size")?;
            let typeflag = block[156];
            match typeflag {
                b'L' | b'K' => {
                    let what = if typeflag == b'L' {
                        "long name"
                    } else {
                        "long link name"
                    };
                    let value = self.read_meta(size, self.limits.long_name, what)?;
                    let value = until_nul(&value).to_vec();
                    if typeflag == b'L' {
                        pending.path = Some(value);
                    } else {
                        pending.link = Some(value);
                    }
                }
                b'x' => {
                    let body =
                        self.read_meta(size, self.limits.extended_header, "an extended header")?;
                    apply_pax(&body, &mut pending)?;
                }
                b'g' => {
                    // Global headers set defaults for later entries; dpkg
                    // ignores them, and so does this reader, once bounded.
                    self.read_meta(
                        size,
                        self.limits.extended_header,
                        "a global extended header",
                    )?;
                }
                _ => {
                    let kind = match typeflag {
                        b'0' | 0 | b'7' => Kind::File,
                        b'1' => Kind::HardLink,
                        b'2' => Kind::Symlink,
                        b'3' => Kind::CharDevice,
                        b'4' => Kind::BlockDevice,
                        b'5' => Kind::Directory,
                        b'6' => Kind::Fifo,
                        other => {
                            return invalid(format!(
                                "entry {} has type {}, which dpkg cannot unpack",
                                excerpt_bytes(until_nul(&block[..100])),
                                excerpt_bytes(&[other])
                            ))
                        }
                    };
                    let path = match pending.path.take() {
                        Some(p) => p,
                        None => header_path(&block),
                    };
                    if path.is_empty() {
                        return invalid("an entry has an empty name");
                    }
                    let link = match pending.link.take() {
                        Some(l) => l,
                        None => until_nul(&block[157..257]).to_vec(),
                    };
                    let size = pending.size.take().unwrap_or(size);
                    self.start_data(size);
                    return Ok(Some(Entry {
                        path,
                        link,
                        kind,
                        size,
                    }));
                }
            }
        }
    }

    /// A reader of the current entry's data; it ends where the entry ends.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { tar: self }
    }

    /// The underlying reader, after the last block read.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn start_data(&mut self, size: u64) {
        self.left = size;
        self.padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
    }

    /// Reads a metadata entry's data after checking its declared size.
    fn read_meta(&mut self, size: u64, limit: u64, what: &str) -> Result<Vec<u8>, TarError> {
        if size > limit {
            return invalid(format!(
                "{what} of {size} bytes, more than the {limit} allowed"
            ));
        }
        self.start_data(size);
        // `size` is at most `limit`, which the caller keeps small.
        let mut body = vec![0u8; usize::try_from(size).unwrap_or(0)];
        if read_full(&mut self.inner, &mut body)? != body.len() {
            return invalid(format!("the archive ends inside {what}"));
        }
        self.left = 0;
        Ok(body)
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let want = self.left + self.padding;
        if want > 0 {
            let skipped = io::copy(&mut (&mut self.inner).take(want), &mut io::sink())
                .map_err(TarError::Io)?;
            if skipped < want {
                return invalid("the archive ends inside an entry's data");
            }
        }
        self.left = 0;
        self.padding = 0;
        Ok(())
    }
}

fn pending_is_empty(p: &Pending) -> bool {
    p.path.is_none() && p.link.is_none() && p.size.is_none()
}

/// The data of the current entry.
#[derive(Debug)]
pub struct EntryData<'a, R> {
    tar: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tar.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.tar.left).unwrap_or(usize::MAX));
        let n = self.tar.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside an entry's data",
            ));
        }
        self.tar.left -= n as u64;
        Ok(n)
    }
}

fn until_nul(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

/// The path a header states itself: POSIX ustar joins `prefix` and `name`;
/// GNU headers use those bytes for other things.
fn header_path(block: &[u8; BLOCK]) -> Vec<u8> {
    let name = until_nul(&block[..100]);
    let posix = &block[257..263] == b"ustar\0";
    let prefix = if posix {
        until_nul(&block[345..500])
    } else {
        &[]
    };
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut path = prefix.to_vec();
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

fn check_checksum(block: &[u8; BLOCK]) -> Result<(), TarError> {
    let stated = number(&block[148..156], "checksum")?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stated == unsigned || i64::try_from(stated).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        invalid(format!(
            "a header checksum does not match (entry {})",
            excerpt_bytes(until_nul(&block[..100]))
        ))
    }
}

/// A numeric header field: octal digits between optional spaces and NULs, or
/// GNU base-256 when the top bit of the first byte is set.
fn number(field: &[u8], what: &str) -> Result<u64, TarError> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] == 0xff {
            return invalid(format!("a negative {what} in a header"));
        }
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| TarError::Invalid(format!("a header's {what} overflows")))?;
        }
        return Ok(value);
    }
    let trimmed: &[u8] = {
        let start = field
            .iter()
            .position(|&b| b != b' ' && b != 0)
            .unwrap_or(field.len());
        let rest = &field[start..];
        let end = rest
            .iter()
            .position(|&b| b == b' ' || b == 0)
            .unwrap_or(rest.len());
        if rest[end..].iter().any(|&b| b != b' ' && b != 0) {
            return invalid(format!(
                "a header's {what} field {} is not a number",
                excerpt_bytes(field)
            ));
        }
        &rest[..end]
    };
    let mut value: u64 = 0;
    for &b in trimmed {
        if !(b'0'..=b'7').contains(&b) {
            return invalid(format!(
                "a header's {what} field {} is not an octal number",
                excerpt_bytes(field)
            ));
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(|| TarError::Invalid(format!("a header's {what} overflows")))?;
    }
    Ok(value)
}

/// Applies the records of a POSIX extended header (`LEN KEY=VALUE\n`).
fn apply_pax(mut body: &[u8], pending: &mut Pending) -> Result<(), TarError> {
    // Some writers pad the header with NULs.
    while !body.is_empty() && body.iter().any(|&b| b != 0) {
        let space = body
            .iter()
            .position(|&b| b == b' ')
            .filter(|&i| i > 0 && i <= 20)
            .ok_or_else(|| TarError::Invalid("malformed extended header record".into()))?;
        let len: usize = std::str::from_utf8(&body[..space])
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .filter(|&n| n > space + 1 && n <= body.len())
            .ok_or_else(|| {
                TarError::Invalid(format!(
                    "extended header record length {} is malformed",
                    excerpt_bytes(&body[..space])
                ))
            })?;
        let record = &body[space + 1..len];
        let Some(record) = record.strip_suffix(b"\n") else {
            return invalid("an extended header record does not end with a line feed");
        };
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| TarError::Invalid("an extended header record has no '='".into()))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        match key {
            b"path" | b"linkpath" => {
                if value.contains(&0) {
                    return invalid("an extended header path contains a NUL byte");
                }
                if key == b"path" {
                    pending.path = Some(value.to_vec());
                } else {
                    pending.link = Some(value.to_vec());
                }
            }
            b"size" => {
                let size = std::str::from_utf8(value)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        TarError::Invalid(format!(
                            "extended header size {} is not a number",
                            excerpt_bytes(value)
                        ))
                    })?;
                pending.size = Some(size);
            }
            _ => {}
        }
        body = &body[len..];
    }
    Ok(())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, TarError> {
    crate::ar::read_full(r, buf).map_err(TarError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Archives written by the `tar` crate, an independent writer.
    fn build(entries: &[(&str, &[u8])], gnu: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = if gnu {
                tar::Header::new_gnu()
            } else {
                tar::Header::new_ustar()
            };
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).expect("append");
        }
        b.into_inner().expect("finish")
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>, TarError> {
        let mut r = TarReader::new(bytes, Limits::default());
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            let mut data = Vec::new();
            r.data().read_to_end(&mut data).map_err(TarError::Io)?;
            out.push((e, data));
        }
        Ok(out)
    }

    #[test]
    fn reads_what_an_independent_writer_wrote() {
        for (gnu, long) in [
            (true, format!("./usr/share/{}/file", "d".repeat(300))),
            (false, format!("./usr/share/{}/file", "d".repeat(130))),
        ] {
            let a = build(&[("./control", b"Package: a\n"), (&long, b"x")], gnu);
            let got = read_all(&a).expect("valid");
            assert_eq!(got.len(), 2);
            // The writer drops the leading `./`.
            assert_eq!(got[0].0.path, b"control");
            assert_eq!(got[0].1, b"Package: a\n");
            let path = got[1].0.path.strip_prefix(b"./").unwrap_or(&got[1].0.path);
            assert_eq!(path, &long.as_bytes()[2..], "gnu: {gnu}");
            assert_eq!(got[1].0.kind, Kind::File);
        }
    }

    fn raw_header(name: &[u8], typeflag: u8, size: u64) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    #[test]
    fn declared_lengths_are_checked_before_reading() {
        // A 5 GB long name, an extended header of 1 GB: refused from the
        // header alone, with a few hundred bytes of input.
        for (flag, size, want) in [
            (b'L', 5_555_555_555u64, "long name of 5555555555 bytes"),
            (b'K', 4097, "long link name"),
            (b'x', 1 << 30, "extended header of 1073741824 bytes"),
            (b'g', 1 << 30, "global extended header"),
        ] {
            let a = raw_header(b"././@LongLink", flag, size);
            let e = read_all(&a).expect_err("refused");
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn extended_headers_set_path_and_size() {
        let record = |k: &str, v: &str| {
            let n = k.len() + v.len() + 3;
            let n = n + (n + 1).to_string().len();
            format!("{n} {k}={v}\n")
        };
        let body = record("path", "./usr/bin/from-pax") + &record("size", "3");
        assert!(
            body.starts_with("27 path") && body.ends_with("\n9 size=3\n"),
            "{body}"
        );
        let body = body.as_bytes();
        let mut a = raw_header(b"./PaxHeaders/x", b'x', body.len() as u64).to_vec();
        a.extend_from_slice(body);
        a.resize(a.len().div_ceil(BLOCK) * BLOCK, 0);
        a.extend_from_slice(&raw_header(b"./short", b'0', 100));
        a.extend_from_slice(b"abc");
        a.resize(a.len().div_ceil(BLOCK) * BLOCK, 0);
        a.extend_from_slice(&[0u8; 1024]);
        let got = read_all(&a).expect("valid");
        assert_eq!(got[0].0.path, b"./usr/bin/from-pax");
        assert_eq!(got[0].1, b"abc");
    }

    #[test]
    fn malformed_headers_are_refused() {
        let mut bad_sum = raw_header(b"./a", b'0', 0);
        bad_sum[0] = b'b';
        assert!(read_all(&bad_sum).is_err());
        let sparse = raw_header(b"./a", b'S', 0);
        let e = read_all(&sparse).expect_err("sparse");
        assert!(e.to_string().contains("cannot unpack"), "{e}");
        for body in [
            &b"99 path=x\n"[..],
            b"x path=y\n",
            b"9 pathx\n",
            b"8 path=y",
        ] {
            let mut a = raw_header(b"./x", b'x', body.len() as u64).to_vec();
            a.extend_from_slice(body);
            a.resize(2048, 0);
            assert!(read_all(&a).is_err(), "{:?}", String::from_utf8_lossy(body));
        }
        let cut = &raw_header(b"./a", b'0', 10)[..];
        assert!(read_all(cut).is_err(), "entry data missing");
    }

    #[test]
    fn base256_sizes() {
        let mut h = [0u8; 12];
        h[0] = 0x80;
        h[11] = 7;
        assert_eq!(number(&h, "size").expect("valid"), 7);
        h[0] = 0xff;
        assert!(number(&h, "size").is_err());
        let mut huge = [0xffu8; 12];
        huge[0] = 0x80;
        assert!(number(&huge, "size").is_err());
    }
}
