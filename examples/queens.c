// queens: reads N from stdin (surrounding whitespace ignored; empty input
// means 8; 1 <= N <= 14) and counts the solutions of the N-queens puzzle by
// backtracking over bitmasks. Prints e.g. "N=8 solutions=92\n".
// Same program as queens.rs, queens.go, queens.js, queens.py, queens.php.
#include <stdio.h>
#include <stdlib.h>

static unsigned full;  // one bit per column

// Ways to fill the remaining rows, given the columns and diagonals attacked
// in the next row.
static long solve(unsigned cols, unsigned left, unsigned right) {
    if (cols == full) return 1;
    long count = 0;
    unsigned avail = full & ~(cols | left | right);
    while (avail) {
        unsigned bit = avail & -avail;  // lowest free column
        avail ^= bit;
        count += solve(cols | bit, ((left | bit) << 1) & full, (right | bit) >> 1);
    }
    return count;
}

static long count_solutions(int n) {
    full = (1u << n) - 1;
    long total = 0;
    // The board is symmetric: count first-row queens in the left half twice.
    for (int col = 0; col < n / 2; col++) {
        unsigned bit = 1u << col;
        total += 2 * solve(bit, (bit << 1) & full, bit >> 1);
    }
    if (n % 2 == 1) {
        unsigned bit = 1u << (n / 2);
        total += solve(bit, (bit << 1) & full, bit >> 1);
    }
    return total;
}

static int is_space(int c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int main(void) {
    // Whitespace, digits, whitespace: anything else is an error.
    int c, digits = 0, done = 0, bad = 0;
    long n = 0;
    while ((c = getchar()) != EOF) {
        if (is_space(c)) {
            done = digits > 0;
        } else if (c >= '0' && c <= '9' && !done) {
            digits++;
            n = n * 10 + (c - '0');
            if (n > 1000) n = 1000;  // out of range anyway
        } else {
            bad = 1;
        }
    }
    if (!digits && !bad) n = 8;
    if (bad || n < 1 || n > 14) {
        fprintf(stderr, "error: N must be an integer from 1 to 14\n");
        return 1;
    }
    printf("N=%ld solutions=%ld\n", n, count_solutions((int)n));
    return 0;
}
