// wordcount: reads {"text": "..."} and prints how many words and lines the
// text has and its three most frequent words (ties broken alphabetically);
// {"text": "The cat and the dog.\nThe cat!"} gives
//
//	{"words":7,"lines":2,"top":[{"word":"the","count":3},{"word":"cat","count":2},{"word":"and","count":1}]}
//
// A word is a maximal run of Unicode letters, lowercased rune by rune
// (unicode.ToLower). Lines are the "\n"-terminated lines plus a last
// unterminated one ("" has 0 lines, "a" 1, "a\n" 1, "a\nb" 2).
// A payload nesting arrays/objects deeper than 1000 levels is refused.
// On bad input it prints {"error":"..."} on stderr and exits 1.
// Same contract, byte for byte, as wordcount.py.
package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"
)

type wordCount struct {
	Word  string `json:"word"`
	Count int    `json:"count"`
}

type result struct {
	Words int         `json:"words"`
	Lines int         `json:"lines"`
	Top   []wordCount `json:"top"`
}

const maxDepth = 1000

// nesting returns how deeply arrays and objects nest in a valid JSON text.
func nesting(data []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, b := range data {
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case inString:
		case b == '[' || b == '{':
			depth++
			if depth > deepest {
				deepest = depth
			}
		case b == ']' || b == '}':
			depth--
		}
	}
	return deepest
}

func fail(msg string) {
	line, _ := json.Marshal(map[string]string{"error": msg})
	os.Stderr.Write(append(line, '\n'))
	os.Exit(1)
}

func main() {
	payload, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("cannot read stdin")
	}
	// json.Valid checks the whole text without recursion (and refuses more
	// than 10000 nested levels). Decoding recurses, and deep recursion can
	// exhaust the Wasm call stack, hence the lower limit checked first.
	if !json.Valid(payload) {
		fail("payload is not valid JSON")
	}
	if nesting(payload) > maxDepth {
		fail("payload nests deeper than 1000 levels")
	}
	// A valid JSON text is an object exactly when it starts with '{'. Its
	// members are kept raw, and matched exactly (a struct's fields would
	// match keys case-insensitively).
	if t := bytes.TrimLeft(payload, " \t\r\n"); t[0] != '{' {
		fail("payload must be a JSON object")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil {
		fail("payload is not valid JSON")
	}
	raw, ok := obj["text"]
	if !ok {
		fail("missing key text")
	}
	var text string
	if raw[0] != '"' || json.Unmarshal(raw, &text) != nil {
		fail("text must be a string")
	}

	counts := map[string]int{}
	words := strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) })
	for _, w := range words {
		counts[strings.ToLower(w)]++
	}

	lines := strings.Count(text, "\n")
	if text != "" && !strings.HasSuffix(text, "\n") {
		lines++
	}

	top := make([]wordCount, 0, len(counts))
	for w, c := range counts {
		top = append(top, wordCount{w, c})
	}
	sort.Slice(top, func(i, j int) bool {
		if top[i].Count != top[j].Count {
			return top[i].Count > top[j].Count
		}
		return top[i].Word < top[j].Word
	})
	if len(top) > 3 {
		top = top[:3]
	}

	out, err := json.Marshal(result{Words: len(words), Lines: lines, Top: top})
	if err != nil {
		fail("cannot encode the result")
	}
	os.Stdout.Write(append(out, '\n'))
}
