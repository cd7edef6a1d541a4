// Greets, then echoes whatever it gets on stdin (byte for byte, like hello.c).
package main

import (
	"io"
	"os"
)

func main() {
	os.Stdout.WriteString("Hello from FAAS!\n")
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		os.Stderr.WriteString("echo: " + err.Error() + "\n")
		os.Exit(1)
	}
}
