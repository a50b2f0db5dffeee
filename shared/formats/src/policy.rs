//! Debian Policy checks on names that end up in file names, pool keys and index
//! fields. Anything these accept is safe to put in an S3 key or a path: no `/`,
//! no `..` component, no uppercase, no whitespace.

/// The longest package or source name raptr takes. Debian's longest are
/// about 70 characters; the limit keeps every key made from a name (pool
/// keys, manifests, reports) under S3's 1,024 bytes.
pub const MAX_PACKAGE_NAME: usize = 100;

/// A binary or source package name (Policy 5.6.1 and 5.6.7): lowercase letters,
/// digits, `+`, `-` and `.`; two to [`MAX_PACKAGE_NAME`] characters; starts
/// alphanumeric. Stricter than Policy, `..` is refused so that no key holds it.
pub fn valid_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    (2..=MAX_PACKAGE_NAME).contains(&b.len())
        && !name.contains("..")
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.')
        })
}

/// Why `name` is not a valid package name, for a reason: its length when it
/// is too long, else the name as an excerpt.
pub fn bad_package_name(what: &str, name: &str) -> String {
    if name.len() > MAX_PACKAGE_NAME {
        format!(
            "{what} of {} characters, longer than the {MAX_PACKAGE_NAME} allowed",
            name.len()
        )
    } else {
        format!("invalid {what} {}", crate::quote::excerpt(name))
    }
}

/// A concrete architecture name a `.deb` may carry (`amd64`, `arm64`, `all`,
/// `x32`, `hurd-i386`): lowercase letters, digits and `-`, starting with a
/// letter or digit. Wildcards such as `any` are not concrete.
pub fn valid_architecture(arch: &str) -> bool {
    let b = arch.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !arch.ends_with('-')
        && arch != "any"
        && !arch.starts_with("any-")
        && !arch.ends_with("-any")
}

/// An architecture wildcard or name as a `.dsc` lists them (`any`, `all`,
/// `linux-any`, `any-amd64`, `amd64`).
pub fn valid_architecture_wildcard(arch: &str) -> bool {
    let b = arch.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// File names raptr keeps its own records under, beside a bundle version's
/// files in the pool: no upload or listed file may take them.
pub const RESERVED_FILE_NAMES: &[&str] = &["manifest.json"];

/// A file name listed by a `.dsc` or `.changes`, or uploaded to a bundle: one
/// path component of printable ASCII, no `/`, not `.`/`..`, no leading dot.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        for ok in [
            "hello",
            "libstdc++6",
            "g++-12",
            "python3.11",
            "0ad",
            "a-b.c+d",
        ] {
            assert!(valid_package_name(ok), "{ok}");
        }
        for bad in [
            "a", "Hello", "-a", ".a", "a/b", "a..b", "a_b", "a b", "", "+a", "ä1",
        ] {
            assert!(!valid_package_name(bad), "{bad}");
        }
    }

    #[test]
    fn architectures() {
        for ok in [
            "amd64",
            "arm64",
            "i386",
            "all",
            "x32",
            "hurd-i386",
            "ppc64el",
        ] {
            assert!(valid_architecture(ok), "{ok}");
        }
        for bad in [
            "AMD64",
            "any",
            "linux-any",
            "../x",
            "a/b",
            "",
            "amd64-",
            "am d64",
            "a.b",
        ] {
            assert!(!valid_architecture(bad), "{bad}");
        }
        assert!(valid_architecture_wildcard("linux-any"));
    }

    #[test]
    fn file_names() {
        assert!(valid_file_name("hello_1.0+dfsg~1.orig.tar.gz"));
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a b", "a\\b"] {
            assert!(!valid_file_name(bad), "{bad}");
        }
    }
}
