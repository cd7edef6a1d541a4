// queens: reads N from stdin (surrounding whitespace ignored; empty input
// means 8; 1 <= N <= 14) and counts the solutions of the N-queens puzzle by
// backtracking over bitmasks. Prints e.g. "N=8 solutions=92\n".
// Same program as queens.c, queens.go, queens.js, queens.py, queens.php.
use std::io::{self, Read, Write};
use std::process;

/// Ways to fill the remaining rows, given the columns and diagonals attacked
/// in the next row (`full` has one bit per column).
fn solve(full: u32, cols: u32, left: u32, right: u32) -> u64 {
    if cols == full {
        return 1;
    }
    let mut count = 0;
    let mut avail = full & !(cols | left | right);
    while avail != 0 {
        let bit = avail & avail.wrapping_neg(); // lowest free column
        avail ^= bit;
        count += solve(full, cols | bit, ((left | bit) << 1) & full, (right | bit) >> 1);
    }
    count
}

fn count_solutions(n: u32) -> u64 {
    let full = (1u32 << n) - 1;
    let mut total = 0;
    // The board is symmetric: count first-row queens in the left half twice.
    for col in 0..n / 2 {
        let bit = 1u32 << col;
        total += 2 * solve(full, bit, (bit << 1) & full, bit >> 1);
    }
    if n % 2 == 1 {
        let bit = 1u32 << (n / 2);
        total += solve(full, bit, (bit << 1) & full, bit >> 1);
    }
    total
}

/// N from the input, or None when it is not an integer from 1 to 14.
fn parse(input: &[u8]) -> Option<u32> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = input.iter().position(|b| !is_space(b)).unwrap_or(input.len());
    let end = input.iter().rposition(|b| !is_space(b)).map_or(start, |i| i + 1);
    let text = &input[start..end];
    if text.is_empty() {
        return Some(8);
    }
    if !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = text
        .iter()
        .fold(0u32, |n, d| (n * 10 + u32::from(d - b'0')).min(1000));
    if (1..=14).contains(&n) {
        Some(n)
    } else {
        None
    }
}

fn main() {
    let mut input = Vec::new();
    if io::stdin().lock().read_to_end(&mut input).is_err() {
        eprintln!("error: cannot read stdin");
        process::exit(1);
    }
    let n = match parse(&input) {
        Some(n) => n,
        None => {
            eprintln!("error: N must be an integer from 1 to 14");
            process::exit(1);
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "N={} solutions={}", n, count_solutions(n)).expect("write stdout");
}
