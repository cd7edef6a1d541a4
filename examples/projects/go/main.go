// A Go project: a package of its own (internal/words) and a vendored
// module (example.com/greet, in vendor/).
package main

import (
	"fmt"
	"io"
	"os"

	"example.com/greet"
	"example.com/shout/internal/words"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	fmt.Println(greet.Hello(words.Loudest(string(in))))
}
