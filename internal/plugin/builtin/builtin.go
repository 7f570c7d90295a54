// Package builtin is the one list of the plugins aminator ships. Each
// plugin registers itself when its package is imported; importing this
// package for its side effects (import _ ".../plugin/builtin") is how the
// command line and the tests get all of them. A new plugin is added here;
// TestListsEveryPlugin fails until it is.
package builtin

import (
	_ "github.com/aminator-go/aminator/internal/plugin/blockdev"
	_ "github.com/aminator-go/aminator/internal/plugin/cloud/ec2"
	_ "github.com/aminator-go/aminator/internal/plugin/cloud/local"
	_ "github.com/aminator-go/aminator/internal/plugin/distro/debian"
	_ "github.com/aminator-go/aminator/internal/plugin/distro/redhat"
	_ "github.com/aminator-go/aminator/internal/plugin/finalizer/instancestore"
	_ "github.com/aminator-go/aminator/internal/plugin/finalizer/tagging"
	_ "github.com/aminator-go/aminator/internal/plugin/provisioner/apt"
	_ "github.com/aminator-go/aminator/internal/plugin/provisioner/yum"
	_ "github.com/aminator-go/aminator/internal/plugin/volume"
)
