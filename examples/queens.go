// queens: reads N from stdin (surrounding whitespace ignored; empty input
// means 8; 1 <= N <= 14) and counts the solutions of the N-queens puzzle by
// backtracking over bitmasks. Prints e.g. "N=8 solutions=92\n".
// Same program as queens.c, queens.rs, queens.js, queens.py, queens.php.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// solve counts the ways to fill the remaining rows, given the columns and
// diagonals attacked in the next row (full has one bit per column).
func solve(full, cols, left, right uint32) int {
	if cols == full {
		return 1
	}
	count := 0
	avail := full &^ (cols | left | right)
	for avail != 0 {
		bit := avail & -avail // lowest free column
		avail ^= bit
		count += solve(full, cols|bit, ((left|bit)<<1)&full, (right|bit)>>1)
	}
	return count
}

func countSolutions(n int) int {
	full := uint32(1)<<n - 1
	total := 0
	// The board is symmetric: count first-row queens in the left half twice.
	for col := 0; col < n/2; col++ {
		bit := uint32(1) << col
		total += 2 * solve(full, bit, (bit<<1)&full, bit>>1)
	}
	if n%2 == 1 {
		bit := uint32(1) << (n / 2)
		total += solve(full, bit, (bit<<1)&full, bit>>1)
	}
	return total
}

// parse returns N, or 0 when the input is not an integer from 1 to 14.
func parse(input []byte) int {
	text := bytes.Trim(input, " \t\n\r\v\f")
	if len(text) == 0 {
		return 8
	}
	n := 0
	for _, b := range text {
		if b < '0' || b > '9' {
			return 0
		}
		n = min(n*10+int(b-'0'), 1000)
	}
	if n > 14 {
		return 0
	}
	return n
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error: cannot read stdin")
		os.Exit(1)
	}
	n := parse(input)
	if n == 0 {
		fmt.Fprintln(os.Stderr, "error: N must be an integer from 1 to 14")
		os.Exit(1)
	}
	fmt.Printf("N=%d solutions=%d\n", n, countSolutions(n))
}
