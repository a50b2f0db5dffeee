//! Prints the size and the four digests of a file, and how long one pass took:
//! the figure `scripts/bench.sh` compares with `sha256sum`.
//!
//! Usage: cargo run --release -p raptr-formats --example digest -- FILE

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: digest FILE")?;
    let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let start = Instant::now();
    let d = raptr_formats::hash::digest_reader(BufReader::with_capacity(1 << 20, file))
        .map_err(|e| format!("{path}: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    println!("size   {}", d.size);
    println!("md5    {}", d.md5);
    println!("sha1   {}", d.sha1);
    println!("sha256 {}", d.sha256);
    println!("sha512 {}", d.sha512);
    println!(
        "four digests in one pass: {secs:.2} s, {:.0} MB/s",
        d.size as f64 / secs / 1e6
    );
    Ok(())
}
