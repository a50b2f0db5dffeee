//! Where files live in the pool (DESIGN §3):
//! `pool/<component>/<prefix>/<source>/<version without epoch>/<file>`.
//!
//! `<prefix>` is Debian's: the first letter of the source name, or its first
//! four for `lib*`. The version directory drops the epoch because Debian file
//! names do; two versions that differ only in epoch would share a directory,
//! which is why the archive refuses the second one.

use crate::version::Version;

/// The pool prefix of a source package name.
pub fn pool_prefix(source: &str) -> &str {
    if source.starts_with("lib") && source.len() > 3 {
        // Source names are ASCII (see policy), so byte slicing is safe.
        &source[..4]
    } else {
        &source[..source.len().min(1)]
    }
}

/// The pool directory of one version of a source package, without a trailing `/`.
pub fn pool_dir(component: &str, source: &str, version: &Version) -> String {
    format!(
        "pool/{component}/{}/{source}/{}",
        pool_prefix(source),
        version.without_epoch()
    )
}

/// The Debian file name of a binary package: `name_version_arch.deb`, the
/// version without its epoch.
pub fn deb_file_name(package: &str, version: &Version, architecture: &str) -> String {
    format!("{package}_{}_{architecture}.deb", version.without_epoch())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_dirs() {
        assert_eq!(pool_prefix("hello"), "h");
        assert_eq!(pool_prefix("libstdc++"), "libs");
        assert_eq!(pool_prefix("lib"), "l");
        let v = Version::parse("1:2.0+dfsg~1-3").expect("valid");
        assert_eq!(
            pool_dir("main", "libfoo", &v),
            "pool/main/libf/libfoo/2.0+dfsg~1-3"
        );
        assert_eq!(deb_file_name("foo", &v, "all"), "foo_2.0+dfsg~1-3_all.deb");
    }
}
