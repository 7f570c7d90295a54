// Package debian is the distro family of Debian and Ubuntu images: the
// distro plugin with a policy-rc.d that forbids starting services (written
// inside the image, never on the host — the original tool's defect since
// 2018), the commands that start services short-circuited, and debconf
// kept from asking.
package debian

import "github.com/aminator-go/aminator/internal/plugin/distro"

// Settings are the plugin's settings (plugins: distro.debian:): the
// policy file and the keys of every family.
type Settings struct {
	PolicyFile        string `yaml:"policy_file"`
	PolicyFileContent string `yaml:"policy_file_content"`
	distro.Settings   `yaml:",inline"`
}

// Defaults are the built-in settings.
func Defaults() *Settings {
	return &Settings{
		PolicyFile:        "/usr/sbin/policy-rc.d",
		PolicyFileContent: "#!/bin/sh\n# written by aminator for the bake; removed afterwards\nexit 101\n",
		Settings: distro.Settings{
			ShortCircuit:      true,
			ShortCircuitFiles: []string{"/usr/sbin/service", "/sbin/start-stop-daemon", "/sbin/initctl"},
			ShortCircuitTo:    "/bin/true",
			CopyFiles:         []string{"/etc/resolv.conf"},
		},
	}
}

// Family is the family's registration.
var Family = distro.Family{
	Name: "debian", Description: "Debian/Ubuntu chroot: policy-rc.d and short-circuited service commands",
	Defaults: func() any { return Defaults() },
	Split: func(cfg any) (distro.Settings, distro.Policy) {
		s := cfg.(*Settings)
		return s.Settings, distro.Policy{File: s.PolicyFile, Content: s.PolicyFileContent,
			Env: map[string]string{"DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true"}}
	},
}

func init() { distro.Register(Family) }
