package isolated

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aminator-go/aminator/internal/testutil"
)

// The bakery on a three-node JetStream cluster, each node in its own
// network namespace (scripts/cluster-demo.sh): a node is killed while it
// bakes and another is cut off the network for a while, and still every
// bake submitted completes, exactly once (one image per bake across the
// nodes), and the script leaves no namespace, link, mount or loop device.
func TestClusterFailover(t *testing.T) {
	c := isolated(t)
	img := testutil.DebianBase(t)
	before := netnsList(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testutil.RepoRoot(), "scripts", "cluster-demo.sh"), "5")
	cmd.Env = append(os.Environ(), "AMINATE="+binary(), "BASE_IMG="+img, "TMPDIR="+c.Dir, "BAKE_SECONDS=6")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("cluster-demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != "5 submitted, 5 completed, 0 lost" {
		t.Errorf("cluster-demo printed %q\nstderr:\n%s", got, errb.String())
	}
	if !strings.Contains(errb.String(), "SIGKILL node 1") || !strings.Contains(errb.String(), "attempts\":2") {
		t.Errorf("no bake was taken over from the killed node:\n%s", errb.String())
	}
	if after := netnsList(t); after != before {
		t.Errorf("network namespaces before %q, after %q", before, after)
	}
}

func netnsList(t *testing.T) string {
	t.Helper()
	b, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "amc") { // cluster-demo.sh's
			ours = append(ours, l)
		}
	}
	return strings.Join(ours, "\n")
}
