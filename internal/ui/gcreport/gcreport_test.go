package gcreport

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func localReport(dry bool) *Report {
	r := New("local", dry, OrphanedVolume, PendingSnapshot, Chunk, Temporary, Clone, Scratch, Stale)
	r.Remove(Item{Kind: OrphanedVolume, ID: "vol-1"})
	r.Remove(Item{Kind: Chunk, ID: "ab", Bytes: 10})
	r.Remove(Item{Kind: Chunk, ID: "cd", Bytes: 5})
	r.Skip(Item{Kind: PendingSnapshot, ID: "snap-1"}, "its maker is alive")
	r.LiveChunks = 7
	return r
}

// The text is the line the CLI always printed, then the skipped items.
func TestText(t *testing.T) {
	var b bytes.Buffer
	localReport(true).WriteText(&b)
	want := "would remove 1 orphaned volumes [vol-1], 0 unfinished snapshots [], 2 unused chunks (15 bytes), 0 temporary files, 0 stale clones, 0 scratch leftovers, 0 stale job locks and mount points; 7 chunks in use\n" +
		"skipped pending snapshot snap-1: its maker is alive\n"
	if b.String() != want {
		t.Errorf("local:\n%s\nwant\n%s", b.String(), want)
	}
	r := New("ec2", false, Volume, Snapshot)
	r.Remove(Item{Kind: Volume, ID: "vol-2"})
	r.Running = []Item{{Kind: Snapshot, ID: "snap-2"}}
	b.Reset()
	r.WriteText(&b)
	if want := "removed 1 volumes [vol-2], 0 snapshots []; 1 belong to running bakes\n"; b.String() != want {
		t.Errorf("ec2: %q, want %q", b.String(), want)
	}
}

// The JSON keeps the keys the CLI printed before.
func TestJSON(t *testing.T) {
	b, err := json.Marshal(localReport(false))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		OrphanedVolumes  []string `json:"orphaned_volumes"`
		PendingSnapshots []string `json:"pending_snapshots"`
		Store            struct {
			Chunks     int   `json:"chunks"`
			Bytes      int64 `json:"bytes"`
			LiveChunks int   `json:"live_chunks"`
		} `json:"store"`
		Skipped []Item `json:"skipped"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.OrphanedVolumes) != 1 || got.PendingSnapshots == nil || got.Store.Chunks != 2 || got.Store.Bytes != 15 || got.Store.LiveChunks != 7 ||
		len(got.Skipped) != 1 || got.Skipped[0].Reason == "" {
		t.Errorf("%s", b)
	}
	if strings.Contains(string(b), `"volumes"`) {
		t.Errorf("the local report has the ec2 keys: %s", b)
	}
}

type plan struct{ executed bool }

func (p *plan) Planned() *Report { return New("x", true) }
func (p *plan) Execute(context.Context) (*Report, error) {
	p.executed = true
	return New("x", false), nil
}

// A dry run is the plan, not executed.
func TestRunDry(t *testing.T) {
	p := &plan{}
	if r, _ := Run(context.Background(), p, true); p.executed || !r.DryRun {
		t.Error("a dry run executed the plan")
	}
	if r, _ := Run(context.Background(), p, false); !p.executed || r.DryRun {
		t.Error("the plan was not executed")
	}
}
