<?php
// queens: reads N from stdin (surrounding whitespace ignored; empty input
// means 8; 1 <= N <= 14) and counts the solutions of the N-queens puzzle by
// backtracking over bitmasks. Prints e.g. "N=8 solutions=92\n".
// Same program as queens.c, queens.rs, queens.go, queens.js, queens.py.

// Ways to fill the remaining rows, given the columns and diagonals attacked
// in the next row ($full has one bit per column).
function solve(int $full, int $cols, int $left, int $right): int
{
    if ($cols === $full) {
        return 1;
    }
    $count = 0;
    $avail = $full & ~($cols | $left | $right);
    while ($avail !== 0) {
        $bit = $avail & -$avail; // lowest free column
        $avail ^= $bit;
        $count += solve($full, $cols | $bit, (($left | $bit) << 1) & $full, ($right | $bit) >> 1);
    }
    return $count;
}

function count_solutions(int $n): int
{
    $full = (1 << $n) - 1;
    $total = 0;
    // The board is symmetric: count first-row queens in the left half twice.
    for ($col = 0; $col < intdiv($n, 2); $col++) {
        $bit = 1 << $col;
        $total += 2 * solve($full, $bit, ($bit << 1) & $full, $bit >> 1);
    }
    if ($n % 2 === 1) {
        $bit = 1 << intdiv($n, 2);
        $total += solve($full, $bit, ($bit << 1) & $full, $bit >> 1);
    }
    return $total;
}

$text = trim((string) file_get_contents('php://stdin'), " \t\n\r\v\f");
if ($text === '') {
    $n = 8;
} elseif (preg_match('/\A[0-9]+\z/', $text)) {
    $n = (int) $text; // saturates at PHP_INT_MAX
} else {
    $n = 0;
}
if ($n < 1 || $n > 14) {
    fwrite(STDERR, "error: N must be an integer from 1 to 14\n");
    exit(1);
}
echo "N=$n solutions=" . count_solutions($n) . "\n";
