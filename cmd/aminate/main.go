// Command aminate bakes machine images; see package cli.
package main

import (
	"os"

	"github.com/aminator-go/aminator/internal/cli"
	"github.com/aminator-go/aminator/internal/sandbox"
)

func main() {
	// A command run in an image re-executes aminate as its sandbox's
	// PID 1; that never returns.
	sandbox.Main()
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
