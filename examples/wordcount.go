// wordcount: reads {"text": "..."} and prints how many words and lines the
// text has and its three most frequent words (ties broken alphabetically);
// {"text": "The cat and the dog.\nThe cat!"} gives
//   {"words":7,"lines":2,"top":[{"word":"the","count":3},{"word":"cat","count":2},{"word":"and","count":1}]}
// A word is a maximal run of Unicode letters, lowercased rune by rune
// (unicode.ToLower). Lines are the "\n"-terminated lines plus a last
// unterminated one ("" has 0 lines, "a" 1, "a\n" 1, "a\nb" 2).
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
	// Decoded into a generic value (not a struct, whose keys would match
	// case-insensitively); numbers stay text, so 1e400 is no error.
	if !json.Valid(payload) {
		fail("payload is not valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var data any
	if err := dec.Decode(&data); err != nil {
		fail("payload is not valid JSON")
	}
	obj, ok := data.(map[string]any)
	if !ok {
		fail("payload must be a JSON object")
	}
	value, ok := obj["text"]
	if !ok {
		fail("missing key text")
	}
	text, ok := value.(string)
	if !ok {
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
