package service

// The built-in environments name these plugins: the configuration checks
// that they exist.
import (
	_ "github.com/aminator-go/aminator/internal/blockdev"
	_ "github.com/aminator-go/aminator/internal/distro/debian"
	_ "github.com/aminator-go/aminator/internal/distro/redhat"
	_ "github.com/aminator-go/aminator/internal/finalizer/instancestore"
	_ "github.com/aminator-go/aminator/internal/finalizer/tagging"
	_ "github.com/aminator-go/aminator/internal/provisioner/apt"
	_ "github.com/aminator-go/aminator/internal/provisioner/yum"
	_ "github.com/aminator-go/aminator/internal/volume"
)
