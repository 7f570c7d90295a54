package config

// Binfmt says how a bake finds the binfmt_misc handler that runs another
// architecture's programs (the package's scripts, the image's own dpkg
// or rpm) under qemu-user. A bake checks for one before it makes a
// volume; without one it stops and says how to register it.
type Binfmt struct {
	// Register lets a bake register the host's static qemu-user emulator
	// (Debian's qemu-user-static) itself, as aminate init --binfmt does,
	// when no handler is registered. Off by default: a handler is the
	// whole host's, not the bake's.
	Register bool `yaml:"register"`
	// Dir is where binfmt_misc is read ("": /proc/sys/fs/binfmt_misc).
	// For tests, which point it at a stand-in directory.
	Dir string `yaml:"dir"`
}
