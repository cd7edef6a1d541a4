// queens: reads N from stdin (surrounding whitespace ignored; empty input
// means 8; 1 <= N <= 14) and counts the solutions of the N-queens puzzle by
// backtracking over bitmasks. Prints e.g. "N=8 solutions=92\n".
// Same program as queens.c, queens.rs, queens.go, queens.py, queens.php.
"use strict";
const fs = require("fs");

// Ways to fill the remaining rows, given the columns and diagonals attacked
// in the next row (full has one bit per column).
function solve(full, cols, left, right) {
  if (cols === full) return 1;
  let count = 0;
  let avail = full & ~(cols | left | right);
  while (avail !== 0) {
    const bit = avail & -avail; // lowest free column
    avail ^= bit;
    count += solve(full, cols | bit, ((left | bit) << 1) & full, (right | bit) >> 1);
  }
  return count;
}

function countSolutions(n) {
  const full = (1 << n) - 1;
  let total = 0;
  // The board is symmetric: count first-row queens in the left half twice.
  for (let col = 0; col < n >> 1; col++) {
    const bit = 1 << col;
    total += 2 * solve(full, bit, (bit << 1) & full, bit >> 1);
  }
  if (n % 2 === 1) {
    const bit = 1 << (n >> 1);
    total += solve(full, bit, (bit << 1) & full, bit >> 1);
  }
  return total;
}

// Bytes as latin1 characters: no UTF-8 decoding, no Unicode whitespace.
const text = fs
  .readFileSync(0)
  .toString("latin1")
  .replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, "");
const n = text === "" ? 8 : /^[0-9]+$/.test(text) ? Number(text) : 0;
if (!(n >= 1 && n <= 14)) {
  process.stderr.write("error: N must be an integer from 1 to 14\n");
  process.exit(1);
}
process.stdout.write(`N=${n} solutions=${countSolutions(n)}\n`);
