package imageclean

// A rule is one group of what Clean removes: why, and where. A pattern is
// a path relative to the image's root whose components may hold
// path.Match wildcards ("*" matches dot files too).
type rule struct {
	// Group says why, as the bake log and docs/security.md say it.
	Group string
	// Remove are removed, a directory with everything in it; a symlink is
	// removed itself, never followed.
	Remove []string
	// Empty are truncated to zero bytes and kept: systemd reads an empty
	// /etc/machine-id as a first boot and writes a new id into it.
	Empty []string
	// Except are names a wildcard never matches (apt's partial/ and lock).
	Except []string
	// IfBuildHost removes a file only when it holds the build host's name.
	IfBuildHost bool
}

// rules are everything Clean removes, in the order it removes and reports
// them: the one list (docs/security.md's table is checked against it).
var rules = []rule{
	{Group: "SSH host keys", Remove: []string{"etc/ssh/ssh_host_*"}},
	{Group: "machine-id", Empty: []string{"etc/machine-id"}, Remove: []string{"var/lib/dbus/machine-id"}},
	{Group: "cloud-init instance state", Remove: []string{
		"var/lib/cloud/instance", "var/lib/cloud/instances", "var/lib/cloud/data", "var/lib/cloud/sem",
		"var/log/cloud-init*.log",
	}},
	{Group: "random seed and host secrets", Remove: []string{
		"var/lib/systemd/random-seed", "var/lib/urandom/random-seed",
		"var/lib/systemd/credential.secret", "var/lib/NetworkManager/secret_key",
	}},
	{Group: "DHCP leases", Remove: []string{
		"var/lib/dhcp/*.leases*", "var/lib/dhclient/*", "var/lib/dhcpcd/*",
		"var/lib/NetworkManager/*.lease", "var/lib/systemd/network/*lease*",
	}},
	{Group: "shell history", Remove: inHomes(".bash_history", ".lesshst", ".viminfo", ".python_history")},
	{Group: "temporary files", Remove: []string{"tmp/*", "var/tmp/*"}},
	{Group: "package manager logs", Remove: []string{
		"var/log/apt/*", "var/log/dpkg.log*", "var/log/alternatives.log*", "var/log/bootstrap.log",
		"var/log/dnf*.log*", "var/log/yum.log*", "var/log/hawkey.log*",
	}},
	// A mail name is kept when it is anything else: a base image's package
	// may set it on purpose. A bake's package scripts run under the
	// sandbox's name (localhost), a foundation's bootstrap under the host's.
	{Group: "mail name of the build host", Remove: []string{"etc/mailname"}, IfBuildHost: true},
	// ldconfig's aux-cache records each library's inode and change time:
	// two bakes of one package differ there, and ldconfig makes it again.
	{Group: "ldconfig's file-identity cache", Remove: []string{"var/cache/ldconfig/aux-cache"}},
	{Group: "apt's downloaded packages and lists", Except: []string{"partial", "lock"}, Remove: []string{
		"var/cache/apt/archives/*.deb", "var/cache/apt/archives/partial/*", "var/cache/apt/*.bin",
		"var/lib/apt/lists/*", "var/lib/apt/lists/partial/*",
	}},
}

// inHomes are names in root's home and in every home under /home.
func inHomes(names ...string) []string {
	var pats []string
	for _, n := range names {
		pats = append(pats, "root/"+n, "home/*/"+n)
	}
	return pats
}
