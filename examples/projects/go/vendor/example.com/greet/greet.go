// Package greet is a module the project vendors (vendor/modules.txt).
package greet

// Hello greets who.
func Hello(who string) string {
	return "Hello, " + who + "!"
}
