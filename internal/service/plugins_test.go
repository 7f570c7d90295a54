package service

// The built-in environments name these plugins: the configuration checks
// that they exist.
import (
	_ "github.com/aminator-go/aminator/internal/plugin/blockdev"
	_ "github.com/aminator-go/aminator/internal/plugin/distro/debian"
	_ "github.com/aminator-go/aminator/internal/plugin/distro/redhat"
	_ "github.com/aminator-go/aminator/internal/plugin/finalizer/instancestore"
	_ "github.com/aminator-go/aminator/internal/plugin/finalizer/tagging"
	_ "github.com/aminator-go/aminator/internal/plugin/provisioner/apt"
	_ "github.com/aminator-go/aminator/internal/plugin/provisioner/yum"
	_ "github.com/aminator-go/aminator/internal/plugin/volume"
)
