package service

// The built-in environments name these plugins: the configuration checks
// that they exist.
import _ "github.com/aminator-go/aminator/internal/plugin/builtin"
