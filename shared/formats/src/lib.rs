//! Debian package formats for raptr, pure: everything reads from `impl Read` or
//! `&[u8]` and nothing touches the filesystem, the network or an async runtime,
//! so the same code runs in the Lambda functions, the CLI and the fuzzers.
//!
//! - [`control`]: deb822 paragraphs, order-preserving, strict or lenient.
//! - [`signed`]: OpenPGP cleartext armour (`.dsc`, `.changes`).
//! - [`version`]: Debian versions and dpkg's ordering.
//! - [`policy`]: names that are safe to publish and to put in keys.
//! - [`hash`]: size, MD5, SHA-1, SHA-256 and SHA-512 in one pass.
//! - [`deb`], [`dsc`], [`changes`]: readers for the files of a bundle;
//!   [`ar`] and [`ustar`]: the containers inside a `.deb`, bounded.
//! - [`quote`]: short, escaped excerpts of input for messages.
//! - [`bundle`]: one upload folder checked as one bundle.
//! - [`index`]: `Packages` and `Sources` stanzas; [`layout`]: pool keys.
//! - [`archive`]: another archive's `Release` and index stanzas, for imports.
//!
//! What it does not do: verify OpenPGP signatures, fetch files, or decide
//! where anything is published beyond the pool key of a file.

pub mod ar;
pub mod archive;
pub mod binary;
pub mod bundle;
pub mod changes;
pub mod checksums;
pub mod control;
pub mod deb;
pub mod dsc;
pub mod hash;
pub mod index;
pub mod layout;
pub mod policy;
pub mod quote;
pub mod signed;
pub mod ustar;
pub mod version;

pub use version::Version;
