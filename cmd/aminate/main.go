// Command aminate bakes machine images; see package cli.
package main

import (
	"os"

	"github.com/aminator-go/aminator/internal/cli"
)

// A command run in an image re-executes aminate as its sandbox's PID 1:
// package sandbox (linked through cli) takes that process over while the
// program initialises, so main never runs there.
func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
