package service

import (
	"strings"
	"testing"

	"github.com/aminator-go/aminator/internal/config"
)

// The refill runs in the job's environment and region: an EC2 pool is
// kept by the ec2 environment, not by the default (local) one, with the
// settings of the job's --config file.
func TestRefillArgs(t *testing.T) {
	cfg := &config.Config{StateDir: "/s", ExtraFile: "/etc/x.yml"}
	cfg.Context.Environment, cfg.Context.Region = "ec2_apt_linux", "eu-west-1"
	got := strings.Join(refillArgs(cfg, "snap-1"), " ")
	if got != "pool fill --snapshot snap-1 --state-dir /s -e ec2_apt_linux -r eu-west-1 --config /etc/x.yml" {
		t.Errorf("refill args: %s", got)
	}
}
