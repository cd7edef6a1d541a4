//! Formats the numbers on stdin with the `itoa` crate from crates.io,
//! fetched at deploy and built offline in the build sandbox.
use std::io::Read;

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).unwrap();
    let mut buffer = itoa::Buffer::new();
    let total: u64 = input.split_whitespace().filter_map(|w| w.parse::<u64>().ok()).sum();
    println!("sum: {}", buffer.format(total));
}
