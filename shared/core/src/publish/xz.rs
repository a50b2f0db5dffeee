//! `.xz` indices as one xz stream of many blocks, a block per segment.
//!
//! apt reads only the first stream of a file of concatenated xz streams, so
//! the `.gz` trick (a member per segment) does not carry over. Within one
//! stream, though, blocks are independent: each holds its own header,
//! compressed data and check, and the stream's index at the end lists each
//! block's sizes. So a segment is compressed once, as a block, and kept
//! byte for byte like its gzip member; what is written anew each time is
//! the 12-byte stream header (always the same), the new blocks, and the
//! index and footer (a few bytes per segment).
//!
//! The format (xz file format 1.2.0): stream header = magic, flags (the
//! check type, CRC64 here), CRC32 of the flags; blocks, each padded to a
//! multiple of four bytes; index = `0x00`, the record count, per block its
//! unpadded size and uncompressed size (all as multibyte integers), zero
//! padding to a multiple of four, CRC32; footer = CRC32 of the next six
//! bytes, the index size in four-byte units minus one, flags, `YZ`.
//!
//! A block is made by liblzma as a whole one-block stream, from which the
//! block is cut out (its sizes read from that stream's index), so the
//! encoding itself is liblzma's.

use std::io::Write;

use liblzma::stream::{Check, Filters, LzmaOptions, Stream};

const MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];
/// Stream flags: no reserved bits, check type CRC64 (0x04).
const FLAGS: [u8; 2] = [0x00, 0x04];
const FOOTER_MAGIC: [u8; 2] = [b'Y', b'Z'];
/// The preset blocks are compressed with (xz's default).
const PRESET: u32 = 6;

/// The stream header every `.xz` index starts with.
pub fn header() -> [u8; 12] {
    let mut h = [0u8; 12];
    h[..6].copy_from_slice(&MAGIC);
    h[6..8].copy_from_slice(&FLAGS);
    h[8..].copy_from_slice(&crc32(&FLAGS).to_le_bytes());
    h
}

/// One segment compressed as a block of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The block, padding included ([`padded`] of `unpadded` bytes).
    pub bytes: Vec<u8>,
    /// Its size without the padding, as the index records it.
    pub unpadded: u64,
}

/// A block's size in the file: its unpadded size rounded up to four.
pub fn padded(unpadded: u64) -> u64 {
    unpadded.div_ceil(4) * 4
}

/// Compresses `text` (not empty) into one block.
pub fn block(text: &[u8]) -> Result<Block, String> {
    let whole = compress(text).map_err(|e| format!("xz: {e}"))?;
    cut_block(&whole, text.len() as u64)
}

fn compress(text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut options = LzmaOptions::new_preset(PRESET)?;
    // A segment is small: a dictionary its size finds every match the
    // preset's 8 MiB one would, with a fraction of the memory.
    let dict = u32::try_from(text.len())
        .unwrap_or(u32::MAX)
        .clamp(4096, 8 << 20);
    options.dict_size(dict);
    let mut filters = Filters::new();
    filters.lzma2(&options);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64)?;
    let mut enc = liblzma::write::XzEncoder::new_stream(Vec::with_capacity(text.len() / 3), stream);
    enc.write_all(text)?;
    enc.finish()
}

/// The block of a one-block stream of `raw` uncompressed bytes.
fn cut_block(stream: &[u8], raw: u64) -> Result<Block, String> {
    let bad = |what: &str| Err(format!("xz: unexpected encoder output: {what}"));
    if stream.len() < 24 || stream[..12] != header() {
        return bad("stream header");
    }
    let footer = &stream[stream.len() - 12..];
    if footer[10..] != FOOTER_MAGIC || footer[8..10] != FLAGS {
        return bad("stream footer");
    }
    let units = u32::from_le_bytes([footer[4], footer[5], footer[6], footer[7]]);
    let index_size = (u64::from(units) + 1) * 4;
    let Some(index_at) = (stream.len() as u64 - 12).checked_sub(index_size) else {
        return bad("index size");
    };
    let index_at = index_at as usize;
    let mut at = index_at;
    let mut next = || {
        let (v, used) = read_varint(stream.get(at..)?)?;
        at += used;
        Some(v)
    };
    if stream[index_at] != 0 || next() != Some(0) {
        return bad("index indicator");
    }
    if next() != Some(1) {
        return bad("not one block");
    }
    let (Some(unpadded), Some(uncompressed)) = (next(), next()) else {
        return bad("index record");
    };
    if uncompressed != raw || index_at < 12 || padded(unpadded) != index_at as u64 - 12 {
        return bad("block sizes");
    }
    Ok(Block {
        bytes: stream[12..index_at].to_vec(),
        unpadded,
    })
}

/// The index and the footer of a stream of blocks with these (unpadded,
/// uncompressed) sizes, in order.
pub fn tail(records: impl IntoIterator<Item = (u64, u64)>) -> Vec<u8> {
    let records: Vec<(u64, u64)> = records.into_iter().collect();
    let mut index = vec![0u8];
    write_varint(&mut index, records.len() as u64);
    for (unpadded, uncompressed) in records {
        write_varint(&mut index, unpadded);
        write_varint(&mut index, uncompressed);
    }
    while index.len() % 4 != 0 {
        index.push(0);
    }
    let crc = crc32(&index);
    index.extend_from_slice(&crc.to_le_bytes());
    let units = (index.len() / 4 - 1) as u32;
    let mut rest = Vec::with_capacity(6);
    rest.extend_from_slice(&units.to_le_bytes());
    rest.extend_from_slice(&FLAGS);
    index.extend_from_slice(&crc32(&rest).to_le_bytes());
    index.extend_from_slice(&rest);
    index.extend_from_slice(&FOOTER_MAGIC);
    index
}

/// The size of the whole file for these (unpadded, uncompressed) sizes.
pub fn file_size(records: &[(u64, u64)]) -> u64 {
    let blocks: u64 = records.iter().map(|(u, _)| padded(*u)).sum();
    12 + blocks + tail(records.iter().copied()).len() as u64
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// xz's multibyte integer: seven bits a byte, least significant first.
fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a multibyte integer; its value and how many bytes it took.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(9) {
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(file: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // The single-stream decoder: what apt reads.
        let read = liblzma::read::XzDecoder::new(file).read_to_end(&mut out);
        assert!(read.is_ok(), "{read:?}");
        out
    }

    fn file(texts: &[&[u8]]) -> Vec<u8> {
        let mut out = header().to_vec();
        let mut records = Vec::new();
        for t in texts {
            let b = block(t).expect("compressed");
            assert_eq!(b.bytes.len() as u64, padded(b.unpadded));
            out.extend_from_slice(&b.bytes);
            records.push((b.unpadded, t.len() as u64));
        }
        out.extend_from_slice(&tail(records.iter().copied()));
        assert_eq!(out.len() as u64, file_size(&records));
        out
    }

    #[test]
    fn blocks_make_one_stream_that_decodes_to_their_concatenation() {
        let a = b"Package: a\nVersion: 1\n\n".repeat(500);
        let b = b"Package: b\nVersion: 2\n\n".to_vec();
        let c: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let whole = file(&[&a, &b, &c]);
        assert_eq!(decode(&whole), [a.clone(), b, c].concat());
        // A block moved elsewhere in another stream is the same bytes.
        let again = file(&[&a]);
        assert_eq!(decode(&again), a);
    }

    #[test]
    fn an_empty_stream_is_valid() {
        let empty = file(&[]);
        assert_eq!(empty.len(), 32);
        assert!(decode(&empty).is_empty());
    }

    #[test]
    fn a_damaged_index_is_refused_by_the_decoder() {
        let mut whole = file(&[b"Package: a\n\n"]);
        let n = whole.len();
        whole[n - 14] ^= 1;
        let mut out = Vec::new();
        assert!(liblzma::read::XzDecoder::new(&whole[..])
            .read_to_end(&mut out)
            .is_err());
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX >> 1] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(read_varint(&out), Some((v, out.len())));
        }
    }
}
