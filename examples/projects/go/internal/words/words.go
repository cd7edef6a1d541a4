// Package words picks words out of text.
package words

import "strings"

// Loudest is the longest word of text, upper-cased.
func Loudest(text string) string {
	best := ""
	for _, w := range strings.Fields(text) {
		if len(w) > len(best) {
			best = w
		}
	}
	return strings.ToUpper(best)
}
