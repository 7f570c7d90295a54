// Command aminate bakes machine images; see package cli.
package main

import (
	"os"

	"github.com/aminator-go/aminator/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
