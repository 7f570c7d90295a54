// Package hush silences the standard logger while AWS's metadata mock
// initialises: its config package looks up $HOME in a package variable and
// logs a warning when it is unset, which is every time aminate re-executes
// itself with a clean environment (the sandbox, the metadata service's
// child). Go initialises packages in the order of their import paths once
// their imports are done, and this path sorts before the mock's, so this
// runs first; package imds, which imports the mock, gives the logger its
// output back in its own init.
package hush

import (
	"io"
	"log"
)

func init() { log.SetOutput(io.Discard) }
