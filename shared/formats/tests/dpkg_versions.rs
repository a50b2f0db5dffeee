//! Version ordering against dpkg itself: thousands of generated pairs, each
//! compared by `dpkg --compare-versions` and by `raptr_formats::Version`.

use std::cmp::Ordering;
use std::io::Write;
use std::process::{Command, Stdio};

use raptr_formats::Version;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const TOKENS: &[&str] = &[
    "0", "1", "2", "9", "00", "01", "10", "99", "123", "a", "b", "z", "A", "Z", ".", "+", "~",
    "~~", "rc", "dfsg", "+b1", "~bpo", ".1", "0a",
];

fn generate(rng: &mut Rng) -> String {
    let mut v = String::new();
    match rng.next() % 5 {
        0 => v.push_str("1:"),
        1 => v.push_str(rng.pick(&["0:", "2:", "10:"])),
        _ => {}
    }
    v.push_str(rng.pick(&["0", "1", "2", "10", "1.0", "1.2"]));
    for _ in 0..rng.next() % 4 {
        v.push_str(rng.pick(TOKENS));
    }
    if rng.next().is_multiple_of(2) {
        v.push('-');
        v.push_str(rng.pick(&["0", "1", "2", "1ubuntu1", "0.1", "a", "1~", "1+b2"]));
        for _ in 0..rng.next() % 2 {
            v.push_str(rng.pick(TOKENS));
        }
    }
    v
}

#[test]
fn ordering_matches_dpkg_compare_versions() {
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut pairs = Vec::new();
    while pairs.len() < 3000 {
        let a = generate(&mut rng);
        // A third of the pairs share a prefix, a third are respellings, so that the interesting parts collide.
        let b = match rng.next() % 3 {
            0 => generate(&mut rng),
            // Spellings dpkg considers equal: leading zeros, an explicit 0 epoch.
            1 if !a.contains(':') => format!("0:{a}"),
            1 => a.replacen('1', "01", 1),
            _ => {
                let cut = (rng.next() as usize) % a.len().max(1);
                let mut b = a[..cut.max(1)].to_string();
                b.push_str(rng.pick(TOKENS));
                b
            }
        };
        if let (Ok(va), Ok(vb)) = (Version::parse(&a), Version::parse(&b)) {
            pairs.push((a, b, va.cmp(&vb)));
        }
    }
    // One shell runs dpkg for every pair: lt, then eq, else gt.
    let script = r#"while read -r a b; do
        if dpkg --compare-versions "$a" lt "$b" 2>/dev/null; then echo lt
        elif dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo eq
        else echo gt; fi
    done"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh with dpkg");
    let input: String = pairs.iter().map(|(a, b, _)| format!("{a} {b}\n")).collect();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("dpkg ran");
    let verdicts: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(verdicts.len(), pairs.len(), "one verdict per pair");
    let mut mismatches = Vec::new();
    let mut seen = [0usize; 3];
    for ((a, b, ours), theirs) in pairs.iter().zip(&verdicts) {
        let dpkg = match *theirs {
            "lt" => Ordering::Less,
            "eq" => Ordering::Equal,
            _ => Ordering::Greater,
        };
        seen[(dpkg as i8 + 1) as usize] += 1;
        if *ours != dpkg {
            mismatches.push(format!("{a} vs {b}: raptr {ours:?}, dpkg {dpkg:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        seen.iter().all(|&n| n > 50),
        "every outcome is exercised: {seen:?}"
    );
}

#[test]
fn dpkg_refuses_what_raptr_refuses_to_parse() {
    // Versions raptr refuses must not be ones dpkg considers fully valid.
    for bad in ["a1.0", "1.0-", ":1.0", "1:a", "1.0_1"] {
        assert!(Version::parse(bad).is_err(), "{bad}");
        let out = Command::new("dpkg")
            .args(["--compare-versions", bad, "eq", bad])
            .output()
            .expect("dpkg");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() || stderr.contains("warning") || stderr.contains("error"),
            "dpkg silently accepts {bad}"
        );
    }
}
