//! Objects composed of ranges of an existing object and new bytes: how a
//! writer that changes a little of a large object (an index gaining one
//! package) says which bytes stay, so that a store able to copy them without
//! streaming them through this process ([`crate::fs::FsStore`]: read once
//! from the base file, written once, hashed on a second thread) does, and
//! the others stream them.
//!
//! The writer holds a [`Composer`] and sends [`Part`]s; the store receives
//! them from [`Parts`] in [`ObjectStore::put_composed`]. The channel is
//! bounded, so memory holds a few parts, never the object. Nothing is stored
//! unless the writer calls [`Composer::finish`]: a writer that fails and
//! drops its composer leaves the key as it was.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use crate::{ByteReader, ObjectMeta, ObjectStore, PutOptions, Result, StoreError};

/// One piece of a composed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// `len` bytes of the base object from byte `start`. Ranges come in
    /// increasing order and do not overlap, so the base is read once.
    Base { start: u64, len: u64 },
    /// New bytes.
    Bytes(Bytes),
    /// The object is complete (sent by [`Composer::finish`]).
    End,
}

/// What the store receives.
pub type Parts = mpsc::Receiver<Part>;

/// How many parts may wait between the writer and the store.
const QUEUE: usize = 8;

/// The writer's end.
#[derive(Debug)]
pub struct Composer {
    tx: mpsc::Sender<Part>,
}

/// The store stopped receiving parts; its own error says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl Composer {
    /// A composer and the parts to hand to [`ObjectStore::put_composed`].
    pub fn new() -> (Composer, Parts) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Composer { tx }, rx)
    }

    /// Appends `len` bytes of the base object from `start`.
    pub async fn base(&mut self, start: u64, len: u64) -> Result<(), Closed> {
        if len == 0 {
            return Ok(());
        }
        self.tx
            .send(Part::Base { start, len })
            .await
            .map_err(|_| Closed)
    }

    /// Appends new bytes.
    pub async fn bytes(&mut self, bytes: Bytes) -> Result<(), Closed> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.tx.send(Part::Bytes(bytes)).await.map_err(|_| Closed)
    }

    /// Completes the object; the store then stores it.
    pub async fn finish(self) -> Result<(), Closed> {
        self.tx.send(Part::End).await.map_err(|_| Closed)
    }
}

/// A composed object as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub meta: ObjectMeta,
    /// The SHA-256 of its content, hex.
    pub sha256: String,
}

/// The message of a composition given up on by its writer.
pub(crate) const ABANDONED: &str = "the writer stopped before the object was complete";

/// A base range that starts before the end of the previous one.
pub(crate) fn out_of_order(start: u64, read_to: u64) -> String {
    format!("base ranges out of order: byte {start} after byte {read_to}")
}

/// A base range that is not there.
pub(crate) fn short_base(base: &str, at: u64) -> String {
    format!("{base} ends at byte {at}, before the range the new object copies from it")
}

/// The default [`ObjectStore::put_composed`]: the base is streamed through
/// this process into [`ObjectStore::put_stream`], hashed on the way.
pub async fn through_stream<S: ObjectStore + ?Sized>(
    store: &S,
    key: &str,
    base: Option<&str>,
    parts: Parts,
    opts: PutOptions,
) -> Result<Composed> {
    let base = match base {
        Some(b) => Some((b.to_string(), store.get_stream(b).await?.0)),
        None => None,
    };
    let hash = Arc::new(Mutex::new(None));
    let reader = Reader {
        parts,
        base,
        at: 0,
        current: Current::Next,
        hasher: Some(Sha256::new()),
        done: hash.clone(),
        scratch: vec![0; 256 << 10],
    };
    let meta = store.put_stream(key, Box::pin(reader), opts).await?;
    let sha256 = hash
        .lock()
        .map_err(|_| StoreError::Permanent {
            key: key.to_string(),
            source: "a composing reader panicked".into(),
        })?
        .take()
        .ok_or_else(|| StoreError::Permanent {
            key: key.to_string(),
            source: ABANDONED.into(),
        })?;
    Ok(Composed { meta, sha256 })
}

enum Current {
    /// Between parts.
    Next,
    Bytes(Bytes),
    /// Skipping base bytes before a range, then reading `left` of them.
    Base {
        skip: u64,
        left: u64,
    },
    /// [`Part::End`] was received.
    Ended,
}

/// The parts as one stream of bytes.
struct Reader {
    parts: Parts,
    base: Option<(String, ByteReader)>,
    /// How far the base has been read.
    at: u64,
    current: Current,
    hasher: Option<Sha256>,
    /// Where the SHA-256 goes once the end is reached.
    done: Arc<Mutex<Option<String>>>,
    scratch: Vec<u8>,
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match &mut this.current {
                Current::Ended => return Poll::Ready(Ok(())),
                Current::Next => match ready!(this.parts.poll_recv(cx)) {
                    None => return Poll::Ready(Err(io::Error::other(ABANDONED))),
                    Some(Part::End) => {
                        if let Some(h) = this.hasher.take() {
                            let hex = raptr_formats::hash::hex(&h.finalize());
                            if let Ok(mut slot) = this.done.lock() {
                                *slot = Some(hex);
                            }
                        }
                        this.current = Current::Ended;
                    }
                    Some(Part::Bytes(b)) => this.current = Current::Bytes(b),
                    Some(Part::Base { start, len }) => {
                        let Some(skip) = start.checked_sub(this.at) else {
                            return Poll::Ready(Err(io::Error::other(out_of_order(
                                start, this.at,
                            ))));
                        };
                        this.current = Current::Base { skip, left: len };
                    }
                },
                Current::Bytes(b) => {
                    if b.is_empty() {
                        this.current = Current::Next;
                        continue;
                    }
                    let n = b.len().min(buf.remaining());
                    let piece = b.split_to(n);
                    if let Some(h) = this.hasher.as_mut() {
                        h.update(&piece);
                    }
                    buf.put_slice(&piece);
                    return Poll::Ready(Ok(()));
                }
                Current::Base { skip, left } => {
                    if *skip == 0 && *left == 0 {
                        this.current = Current::Next;
                        continue;
                    }
                    let Some((name, body)) = this.base.as_mut() else {
                        return Poll::Ready(Err(io::Error::other(
                            "a base range, but no base object",
                        )));
                    };
                    let skipping = *skip > 0;
                    let want = if skipping {
                        *skip
                    } else {
                        (*left).min(buf.remaining() as u64)
                    };
                    let n = want.min(this.scratch.len() as u64) as usize;
                    let mut rb = ReadBuf::new(&mut this.scratch[..n]);
                    ready!(body.as_mut().poll_read(cx, &mut rb))?;
                    let got = rb.filled().len();
                    if got == 0 {
                        return Poll::Ready(Err(io::Error::other(short_base(name, this.at))));
                    }
                    this.at += got as u64;
                    if skipping {
                        *skip -= got as u64;
                        continue;
                    }
                    *left -= got as u64;
                    let piece = &this.scratch[..got];
                    if let Some(h) = this.hasher.as_mut() {
                        h.update(piece);
                    }
                    buf.put_slice(piece);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}
