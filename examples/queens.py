# queens: reads N from stdin (surrounding whitespace ignored; empty input
# means 8; 1 <= N <= 14) and counts the solutions of the N-queens puzzle by
# backtracking over bitmasks. Prints e.g. "N=8 solutions=92\n".
# Same program as queens.c, queens.rs, queens.go, queens.js, queens.php.
import sys


def solve(full, cols, left, right):
    """Ways to fill the remaining rows, given the columns and diagonals
    attacked in the next row (full has one bit per column)."""
    if cols == full:
        return 1
    count = 0
    avail = full & ~(cols | left | right)
    while avail:
        bit = avail & -avail  # lowest free column
        avail ^= bit
        count += solve(full, cols | bit, ((left | bit) << 1) & full, (right | bit) >> 1)
    return count


def count_solutions(n):
    full = (1 << n) - 1
    total = 0
    # The board is symmetric: count first-row queens in the left half twice.
    for col in range(n // 2):
        bit = 1 << col
        total += 2 * solve(full, bit, (bit << 1) & full, bit >> 1)
    if n % 2 == 1:
        bit = 1 << (n // 2)
        total += solve(full, bit, (bit << 1) & full, bit >> 1)
    return total


def parse(data):
    """N, or None when the input is not an integer from 1 to 14."""
    text = data.strip(b" \t\n\r\v\f")
    if not text:
        return 8
    # bytes.isdigit() is ASCII only; int() refuses very long digit strings.
    if text.isdigit() and len(text.lstrip(b"0")) <= 2:
        n = int(text)
        if 1 <= n <= 14:
            return n
    return None


n = parse(sys.stdin.buffer.read())
if n is None:
    sys.stderr.write("error: N must be an integer from 1 to 14\n")
    sys.exit(1)
sys.stdout.write("N=%d solutions=%d\n" % (n, count_solutions(n)))
