// Package redhat is the distro family of the RedHat family (RHEL, CentOS,
// Rocky, Alma, Fedora, Amazon Linux): the distro plugin with the commands
// that start services short-circuited and SYSTEMD_OFFLINE set (there is no
// policy-rc.d; systemctl already refuses to start units in a chroot).
package redhat

import "github.com/aminator-go/aminator/internal/plugin/distro"

// Settings are the plugin's settings (plugins: distro.redhat:): the keys
// of every family.
type Settings struct {
	distro.Settings `yaml:",inline"`
}

// Defaults are the built-in settings, as the original's redhat distro.
func Defaults() *Settings {
	return &Settings{distro.Settings{
		ShortCircuit:      true,
		ShortCircuitFiles: []string{"/sbin/service", "/usr/sbin/service", "/sbin/start", "/sbin/stop", "/sbin/restart", "/sbin/initctl"},
		ShortCircuitTo:    "/bin/true",
		CopyFiles:         []string{"/etc/resolv.conf"},
	}}
}

// Family is the family's registration.
var Family = distro.Family{
	Name: "redhat", Description: "RedHat-family chroot: service commands short-circuited",
	Defaults: func() any { return Defaults() },
	Split: func(cfg any) (distro.Settings, distro.Policy) {
		return cfg.(*Settings).Settings, distro.Policy{Env: map[string]string{"SYSTEMD_OFFLINE": "1"}}
	},
}

func init() { distro.Register(Family) }
