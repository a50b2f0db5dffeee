//! Every input a fuzz target ever failed on (`fuzz/regressions/<target>/`),
//! fed to the reader it targets, as the target does: no panic, and a reason
//! that fits on a line. `raptr check` runs the `.deb`, `.dsc` and `.changes`
//! ones again under a memory limit (the CLI tests).

use std::fs;
use std::path::PathBuf;

use raptr_formats::changes::Changes;
use raptr_formats::control::{parse_all, parse_one, Mode};
use raptr_formats::deb::{read_deb, Limits};
use raptr_formats::dsc::Dsc;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let bytes = fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

fn short(path: &std::path::Path, reason: &str) {
    assert!(
        reason.len() < 1100 && !reason.contains('\n'),
        "{}: a reason of {} bytes",
        path.display(),
        reason.len()
    );
}

#[test]
fn deb_regressions_are_refused_with_a_short_reason() {
    let all = inputs("deb");
    assert!(all.len() >= 5, "the committed .deb regressions are there");
    for (path, bytes) in all {
        match read_deb(&bytes[..], &Limits::default()) {
            Ok(_) => {}
            Err(e) => short(&path, &e.to_string()),
        }
    }
}

#[test]
fn document_regressions() {
    for (path, bytes) in inputs("dsc").into_iter().chain(inputs("changes")) {
        if let Err(e) = Dsc::parse(&bytes) {
            short(&path, &e);
        }
        if let Err(e) = Changes::parse(&bytes) {
            short(&path, &e);
        }
    }
    for (path, bytes) in inputs("control") {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if let Err(e) = parse_all(text, Mode::Lenient) {
                short(&path, &e.to_string());
            }
            if let Ok(p) = parse_one(text, Mode::Strict) {
                assert_eq!(parse_one(&p.to_string(), Mode::Strict).as_ref(), Ok(&p));
            }
        }
    }
}
