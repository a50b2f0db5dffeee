//! Digests of whole files: size, MD5, SHA-1, SHA-256 and SHA-512 in one pass.
//!
//! APT indices list all four hashes for every file, so every byte that enters the
//! archive is hashed four times. [`MultiHasher`] does it in a single pass over the
//! data; once a stream is larger than [`PARALLEL_THRESHOLD`] it moves MD5 and SHA-1
//! to a helper thread so that the four hashes together run about as fast as SHA-512
//! alone. Memory is bounded by a few fixed buffers whatever the stream's size.
//!
//! This module does no I/O of its own: [`HashingReader`] hashes whatever passes
//! through a caller's reader.

use std::fmt;
use std::io::{self, Read};
use std::sync::mpsc;
use std::thread;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// Bytes fed before the helper thread starts. Small files (most control data,
/// small packages) never pay for a thread.
pub const PARALLEL_THRESHOLD: u64 = 4 << 20;
const CHUNK: usize = 1 << 20;

/// Size and the four hashes APT knows, as lowercase hex.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Digests {
    pub size: u64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    pub sha512: String,
}

impl fmt::Debug for Digests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digests({} bytes, sha256 {})", self.size, self.sha256)
    }
}

impl Digests {
    /// Digests of an in-memory buffer.
    pub fn of(data: &[u8]) -> Digests {
        let mut h = MultiHasher::new();
        h.update(data);
        h.finish()
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

struct Weak {
    md5: Md5,
    sha1: Sha1,
}

impl Weak {
    fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.sha1.update(data);
    }
}

enum Helper {
    Inline(Weak),
    Thread {
        work: mpsc::SyncSender<Vec<u8>>,
        spare: mpsc::Receiver<Vec<u8>>,
        done: thread::JoinHandle<Option<Weak>>,
    },
}

/// Feeds the same bytes to MD5, SHA-1, SHA-256 and SHA-512 and counts them.
pub struct MultiHasher {
    size: u64,
    sha256: Sha256,
    sha512: Sha512,
    helper: Option<Helper>,
    pending: Vec<u8>,
}

impl fmt::Debug for MultiHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiHasher")
            .field("size", &self.size)
            .finish()
    }
}

impl Default for MultiHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl MultiHasher {
    pub fn new() -> Self {
        MultiHasher {
            size: 0,
            sha256: Sha256::new(),
            sha512: Sha512::new(),
            helper: Some(Helper::Inline(Weak {
                md5: Md5::new(),
                sha1: Sha1::new(),
            })),
            pending: Vec::new(),
        }
    }

    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        self.sha256.update(data);
        self.sha512.update(data);
        match self.helper.as_mut() {
            Some(Helper::Inline(weak)) => {
                weak.update(data);
                if self.size >= PARALLEL_THRESHOLD {
                    self.start_thread();
                }
            }
            Some(Helper::Thread { .. }) => {
                self.pending.extend_from_slice(data);
                if self.pending.len() >= CHUNK {
                    self.flush_pending();
                }
            }
            None => unreachable!("helper is only taken in finish"),
        }
    }

    fn start_thread(&mut self) {
        let (work_tx, work_rx) = mpsc::sync_channel::<Vec<u8>>(2);
        let (spare_tx, spare_rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let (state_tx, state_rx) = mpsc::sync_channel::<Weak>(1);
        let spawned = thread::Builder::new()
            .name("raptr-hash".into())
            .spawn(move || {
                let mut weak = state_rx.recv().ok()?;
                for buf in work_rx {
                    weak.update(&buf);
                    // The owner may already be gone; a lost spare buffer is harmless.
                    let _ = spare_tx.try_send(buf);
                }
                Some(weak)
            });
        // Without a thread, hashing simply stays inline.
        let Ok(done) = spawned else { return };
        let Some(Helper::Inline(weak)) = self.helper.take() else {
            return;
        };
        // The thread holds the receiver until it has this state, so this cannot fail.
        let _ = state_tx.send(weak);
        self.helper = Some(Helper::Thread {
            work: work_tx,
            spare: spare_rx,
            done,
        });
        self.pending = Vec::with_capacity(CHUNK);
    }

    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(Helper::Thread { work, spare, .. }) = self.helper.as_ref() {
            let mut next = spare
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
            next.clear();
            let full = std::mem::replace(&mut self.pending, next);
            // A send fails only if the helper panicked; finish re-raises that panic.
            let _ = work.send(full);
        }
    }

    pub fn finish(mut self) -> Digests {
        self.flush_pending();
        let weak = match self.helper.take() {
            Some(Helper::Inline(weak)) => weak,
            Some(Helper::Thread { work, done, .. }) => {
                drop(work);
                match done.join() {
                    Ok(Some(weak)) => weak,
                    Ok(None) => unreachable!("the helper always receives its state"),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            None => unreachable!("finish runs once"),
        };
        Digests {
            size: self.size,
            md5: hex(&weak.md5.finalize()),
            sha1: hex(&weak.sha1.finalize()),
            sha256: hex(&self.sha256.finalize()),
            sha512: hex(&self.sha512.finalize()),
        }
    }
}

/// A reader that hashes every byte read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: MultiHasher,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: MultiHasher::new(),
        }
    }

    pub fn finish(self) -> (R, Digests) {
        (self.inner, self.hasher.finish())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Hashes a whole stream.
pub fn digest_reader<R: Read>(reader: R) -> io::Result<Digests> {
    let mut r = HashingReader::new(reader);
    io::copy(&mut r, &mut io::sink())?;
    Ok(r.finish().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        let d = Digests::of(b"abc");
        assert_eq!(d.size, 3);
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(d.sha512.starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn threaded_path_matches_inline() {
        // Larger than the threshold, fed in odd-sized pieces.
        let data: Vec<u8> = (0..(PARALLEL_THRESHOLD as usize * 2 + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut h = MultiHasher::new();
        for piece in data.chunks(777_777) {
            h.update(piece);
        }
        let threaded = h.finish();
        let mut md5 = Md5::new();
        md5.update(&data);
        let mut sha1 = Sha1::new();
        sha1.update(&data);
        assert_eq!(threaded.size, data.len() as u64);
        assert_eq!(threaded.md5, hex(&md5.finalize()));
        assert_eq!(threaded.sha1, hex(&sha1.finalize()));
        assert_eq!(threaded.sha256, hex(&Sha256::digest(&data)));
        assert_eq!(threaded.sha512, hex(&Sha512::digest(&data)));
    }
}
