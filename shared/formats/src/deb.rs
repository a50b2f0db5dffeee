//! The `.deb` reader: validates a binary package in one streaming pass and
//! returns its control paragraph and the digests of the whole file.
//!
//! What it checks, in the order the bytes arrive:
//! - the ar archive: magic, member headers, exactly the members `debian-binary`,
//!   `control.tar[.gz|.xz|.zst]` and `data.tar[.gz|.xz|.zst]` in that order, every
//!   member as long as its header says, nothing after the last one;
//! - `debian-binary` is `2.x`;
//! - `control.tar`: decompressed size capped, every entry's path relative and not
//!   climbing, `./control` a regular file of bounded size, read once;
//! - `data.tar`: decompressed to its end (so a corrupt or truncated stream is
//!   caught), size capped relative to its compressed size, no entry or hard link
//!   that climbs out;
//! - the control paragraph: strict deb822 (see [`crate::control`]), then
//!   [`crate::binary::BinaryControl::from_paragraph`].
//!
//! Memory stays bounded whatever the package's size: nothing is buffered but the
//! `control` file, and decoders get explicit memory limits. The reader never
//! touches the filesystem: it reads from any `impl Read`.
//!
//! Errors say whether the package is at fault ([`DebError::Invalid`], final) or
//! the reader failed ([`DebError::Io`], may succeed if tried again).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use crate::ar::{ArError, ArReader, MemberHeader};
use crate::binary::BinaryControl;
use crate::control::{self, Mode, Paragraph};
use crate::hash::{Digests, HashingReader};
use crate::quote::{excerpt, excerpt_bytes};
use crate::ustar::{self, Kind, TarError, TarReader};

/// Caps that bound time and memory on hostile input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Decompressed size of `control.tar`.
    pub control_tar: u64,
    /// Size of the `./control` file itself.
    pub control_file: u64,
    /// Decompressed size of `data.tar` is capped at
    /// `max(data_floor, data_ratio × compressed size)`, and never above `data_max`.
    pub data_floor: u64,
    pub data_ratio: u64,
    pub data_max: u64,
    /// Memory a decoder may use (xz dictionary, zstd window).
    pub decoder_memory: u64,
    /// Long names and extended headers inside the tar members.
    pub tar: ustar::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            control_tar: 64 << 20,
            control_file: 1 << 20,
            data_floor: 256 << 20,
            data_ratio: 200,
            data_max: 32 << 30,
            // xz -9 needs a 64 MiB dictionary, zstd --ultra -22 a 128 MiB
            // window: the largest either makes. More would not fit beside
            // the rest of an ingest run in a 256 MB address space.
            decoder_memory: 128 << 20,
            tar: ustar::Limits::default(),
        }
    }
}

/// Compression of a `control.tar` or `data.tar` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    fn from_member(name: &str, stem: &str) -> Option<Compression> {
        match name.strip_prefix(stem)? {
            "" => Some(Compression::None),
            ".gz" => Some(Compression::Gzip),
            ".xz" => Some(Compression::Xz),
            ".zst" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// A validated binary package.
#[derive(Debug, Clone)]
pub struct Deb {
    /// The control paragraph as the package ships it (validated, unmodified).
    pub control: Paragraph,
    /// The fields raptr relies on, parsed from `control`.
    pub binary: BinaryControl,
    /// Size and hashes of the whole `.deb`.
    pub digests: Digests,
    pub control_compression: Compression,
    pub data_compression: Compression,
}

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// The bytes are not an acceptable package. Final: retrying cannot help.
    #[error("{0}")]
    Invalid(String),
    /// Reading the input failed. May succeed if tried again.
    #[error("reading failed: {0}")]
    Io(#[source] io::Error),
}

impl DebError {
    pub fn is_invalid(&self) -> bool {
        matches!(self, DebError::Invalid(_))
    }
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, DebError> {
    Err(DebError::Invalid(msg.into()))
}

/// Remembers whether the caller's reader failed, so that an `io::Error` that
/// surfaces through a decoder can be told apart from corrupt data.
struct Tracked<R> {
    inner: R,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed.set(true))
    }
}

/// Turns an `io::Error` from somewhere inside the archive into the right kind.
struct Classifier {
    failed: Rc<Cell<bool>>,
}

impl Classifier {
    fn err(&self, what: &str, e: io::Error) -> DebError {
        if self.failed.get() {
            DebError::Io(e)
        } else {
            DebError::Invalid(format!("{what}: {e}"))
        }
    }
}

/// Counts bytes and fails once more than `limit` have been read.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
    what: &'static str,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} decompresses to more than {} bytes (limit)",
                    self.what, self.limit
                ),
            ));
        }
        Ok(n)
    }
}

fn decoder<'a, R: Read + 'a>(
    c: Compression,
    r: R,
    limits: &Limits,
) -> Result<Box<dyn Read + 'a>, DebError> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                limits.decoder_memory,
                liblzma::stream::CONCATENATED,
            )
            .map_err(|e| DebError::Invalid(format!("xz decoder: {e}")))?;
            Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
        }
        Compression::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(r)
                .map_err(|e| DebError::Invalid(format!("zstd decoder: {e}")))?;
            let log = 63 - limits.decoder_memory.max(1 << 10).leading_zeros();
            d.window_log_max(log.min(31))
                .map_err(|e| DebError::Invalid(format!("zstd decoder: {e}")))?;
            Box::new(d)
        }
    })
}

impl Classifier {
    fn tar(&self, member: &str, e: TarError) -> DebError {
        match e {
            TarError::Invalid(msg) => DebError::Invalid(format!("{member}: {msg}")),
            TarError::Io(e) => self.err(member, e),
        }
    }
}

/// A tar path that stays inside the archive root: no absolute path, no `..`.
fn check_tar_path(member: &str, what: &str, path: &[u8]) -> Result<(), DebError> {
    if path.starts_with(b"/") {
        return invalid(format!(
            "{member}: {what} {} has an absolute path",
            excerpt_bytes(path)
        ));
    }
    if path.split(|&b| b == b'/').any(|c| c == b"..") {
        return invalid(format!(
            "{member}: {what} {} climbs out of the archive",
            excerpt_bytes(path)
        ));
    }
    Ok(())
}

fn is_control_path(path: &[u8]) -> bool {
    let mut normal = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".");
    matches!((normal.next(), normal.next()), (Some(n), None) if n == b"control")
}

/// Reads `control.tar`; returns the text of `./control`.
fn read_control_tar(
    member: &str,
    r: impl Read,
    limits: &Limits,
    cls: &Classifier,
) -> Result<String, DebError> {
    let mut archive = TarReader::new(r, limits.tar.clone());
    let mut control: Option<String> = None;
    while let Some(entry) = archive.next_entry().map_err(|e| cls.tar(member, e))? {
        check_tar_path(member, "entry", &entry.path)?;
        if !is_control_path(&entry.path) {
            continue;
        }
        if entry.kind != Kind::File {
            return invalid(format!(
                "{member}: ./control is not a regular file ({:?})",
                entry.kind
            ));
        }
        if control.is_some() {
            return invalid(format!("{member}: ./control appears twice"));
        }
        let size = entry.size;
        if size > limits.control_file {
            return invalid(format!(
                "{member}: ./control is {size} bytes, more than the {} allowed",
                limits.control_file
            ));
        }
        // `size` is at most the control-file limit.
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        archive
            .data()
            .read_to_end(&mut bytes)
            .map_err(|e| cls.err(member, e))?;
        if bytes.len() as u64 != size {
            return invalid(format!("{member}: ./control is truncated"));
        }
        let text = String::from_utf8(bytes)
            .or_else(|_| invalid(format!("{member}: ./control is not UTF-8")))?;
        control = Some(text);
    }
    control.map_or_else(|| invalid(format!("{member} has no ./control file")), Ok)
}

/// Reads `data.tar` to its end, checking entry paths and hard links.
fn read_data_tar(
    member: &str,
    r: impl Read,
    limits: &Limits,
    cls: &Classifier,
) -> Result<u64, DebError> {
    let mut archive = TarReader::new(r, limits.tar.clone());
    let mut count = 0u64;
    while let Some(entry) = archive.next_entry().map_err(|e| cls.tar(member, e))? {
        check_tar_path(member, "entry", &entry.path)?;
        if entry.kind == Kind::HardLink {
            check_tar_path(member, "hard link target", &entry.link)?;
        }
        io::copy(&mut archive.data(), &mut io::sink()).map_err(|e| cls.err(member, e))?;
        count += 1;
    }
    // Whatever follows the end-of-archive blocks must still decompress cleanly,
    // so a corrupt or cut stream is caught by the decoder's own checks.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| cls.err(member, e))?;
    Ok(count)
}

/// Counts the bytes read from a member, to compare with its header.
struct CountingRead<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn check_length(name: &str, header: u64, actual: u64) -> Result<(), DebError> {
    if actual != header {
        return invalid(format!(
            "member {name} is truncated: its header says {header} bytes, the file has {actual}"
        ));
    }
    Ok(())
}

/// Reads the rest of a member and checks its length. A member cut short is
/// reported as truncated even when its decoder noticed first, because that is
/// the actual problem.
fn finish_member<T, R: Read>(
    name: &str,
    size: u64,
    counting: &mut CountingRead<R>,
    cls: &Classifier,
    result: Result<T, DebError>,
) -> Result<T, DebError> {
    if let Err(DebError::Invalid(_)) = &result {
        if io::copy(counting, &mut io::sink()).is_ok() && counting.n < size {
            check_length(name, size, counting.n)?;
        }
        return result;
    }
    let value = result?;
    io::copy(counting, &mut io::sink()).map_err(|e| cls.err(name, e))?;
    check_length(name, size, counting.n)?;
    Ok(value)
}

fn next_member<R: Read>(
    archive: &mut ArReader<R>,
    expected: &str,
    cls: &Classifier,
) -> Result<MemberHeader, DebError> {
    match archive.next_member() {
        Ok(None) => invalid(format!("the archive ends before its {expected} member")),
        Err(ArError::Io(e)) => Err(cls.err("ar archive", e)),
        Err(ArError::Invalid(e)) => invalid(format!(
            "not a valid ar archive where {expected} was expected: {e}"
        )),
        Ok(Some(h)) => Ok(h),
    }
}

/// Validates a `.deb` read from `input` and returns what the archive needs.
pub fn read_deb<R: Read>(input: R, limits: &Limits) -> Result<Deb, DebError> {
    let failed = Rc::new(Cell::new(false));
    let cls = Classifier {
        failed: failed.clone(),
    };
    let tracked = Tracked {
        inner: input,
        failed,
    };
    let mut counted = HashingReader::new(tracked);
    let mut archive = ArReader::new(&mut counted);

    // Member 1: debian-binary.
    let header = next_member(&mut archive, "debian-binary", &cls)?;
    if header.name != "debian-binary" {
        return invalid(format!(
            "first member is {}, expected debian-binary",
            excerpt(&header.name)
        ));
    }
    let size = header.size;
    if size > 64 {
        return invalid(format!("debian-binary is {size} bytes long"));
    }
    let mut version = Vec::new();
    archive
        .member()
        .read_to_end(&mut version)
        .map_err(|e| cls.err("debian-binary", e))?;
    check_length("debian-binary", size, version.len() as u64)?;
    let version = String::from_utf8_lossy(&version);
    let format = version.lines().next().unwrap_or("").trim();
    match format.split_once('.') {
        Some(("2", minor)) if !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => {
            return invalid(format!(
                "unsupported package format {} in debian-binary (expected 2.x)",
                excerpt(format)
            ))
        }
    }

    // Member 2: control.tar.*
    let header = next_member(&mut archive, "control.tar", &cls)?;
    let name = header.name;
    let Some(control_compression) = Compression::from_member(&name, "control.tar") else {
        return invalid(format!(
            "second member is {}, expected control.tar, control.tar.gz, control.tar.xz or control.tar.zst",
            excerpt(&name)
        ));
    };
    let size = header.size;
    let mut counting = CountingRead {
        inner: archive.member(),
        n: 0,
    };
    let text = (|| {
        let dec = decoder(control_compression, &mut counting, limits)?;
        let capped = Capped {
            inner: dec,
            read: 0,
            limit: limits.control_tar,
            what: "control.tar",
        };
        read_control_tar(&name, capped, limits, &cls)
    })();
    let text = finish_member(&name, size, &mut counting, &cls, text)?;

    let control = control::parse_one(&text, Mode::Strict)
        .map_err(|e| DebError::Invalid(format!("control file, {e}")))?;
    let binary = BinaryControl::from_paragraph(&control).map_err(DebError::Invalid)?;

    // Member 3: data.tar.*
    let header = next_member(&mut archive, "data.tar", &cls)?;
    let name = header.name;
    let Some(data_compression) = Compression::from_member(&name, "data.tar") else {
        return invalid(format!(
            "third member is {}, expected data.tar, data.tar.gz, data.tar.xz or data.tar.zst",
            excerpt(&name)
        ));
    };
    let size = header.size;
    let cap = (size.saturating_mul(limits.data_ratio))
        .max(limits.data_floor)
        .min(limits.data_max);
    let mut counting = CountingRead {
        inner: archive.member(),
        n: 0,
    };
    let data = (|| {
        let dec = decoder(data_compression, &mut counting, limits)?;
        let capped = Capped {
            inner: dec,
            read: 0,
            limit: cap,
            what: "data.tar",
        };
        read_data_tar(&name, capped, limits, &cls)
    })();
    finish_member(&name, size, &mut counting, &cls, data)?;

    // Nothing may follow: not another member, not a partial header.
    match archive.next_member() {
        Ok(None) => {}
        Ok(Some(extra)) => {
            return invalid(format!(
                "unexpected member {} after the data member",
                excerpt(&extra.name)
            ))
        }
        Err(ArError::Io(e)) => return Err(cls.err("end of file", e)),
        Err(ArError::Invalid(_)) => return invalid("data after the last ar member"),
    }
    let (_, digests) = counted.finish();
    Ok(Deb {
        control,
        binary,
        digests,
        control_compression,
        data_compression,
    })
}
