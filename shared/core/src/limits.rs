//! How large an object raptr reads whole may be.
//!
//! Everything raptr reads into memory from a bucket goes through
//! [`ObjectStore::get_limited`](raptr_store::ObjectStore::get_limited) with
//! one of these limits, so memory is bounded by them, never by what an object
//! (or whoever wrote it) declares. Package files are never read whole: they
//! are streamed through the validators, whose own limits are in
//! `raptr_formats::deb::Limits`. An object over its limit is a permanent
//! failure that names the key and both sizes.
//!
//! | what | limit |
//! | --- | --- |
//! | configuration (`config/raptr.json`) | 1 MiB |
//! | request (`requests/…`) | 64 KiB ([`crate::request::MAX_REQUEST`]) |
//! | `.dsc`, `.changes`, `.buildinfo` | 1 MiB (`raptr_formats::dsc::MAX_DESCRIPTION`) |
//! | report | 4 MiB |
//! | folder progress record | 64 MiB |
//! | manifest | 64 MiB |
//! | link-state shard | 256 MiB |
//! | publish state | 256 MiB |
//! | `Release`, `Release.gpg`, `InRelease`, public key | 64 MiB |

pub const CONFIG: u64 = 1 << 20;
pub const REPORT: u64 = 4 << 20;
pub const FOLDER: u64 = 64 << 20;
pub const MANIFEST: u64 = 64 << 20;
pub const LINK_SHARD: u64 = 256 << 20;
pub const STATE: u64 = 256 << 20;
pub const RELEASE: u64 = 64 << 20;
