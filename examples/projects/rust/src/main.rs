//! A Rust project: the crate's modules live in src/ (no dependencies).
mod freq;
mod render;

use std::io::Read;

fn main() {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).unwrap();
    let top = freq::top_words(&text, 3);
    println!("{}", render::json(&top));
}
