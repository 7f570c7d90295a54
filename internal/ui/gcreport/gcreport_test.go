package gcreport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// kindPlan plans and removes one item of a kind; fail makes Execute fail
// after removing it.
type kindPlan struct {
	cloud, kind, id string
	fail            error
}

func (p kindPlan) report(dry bool) *Report {
	r := New(p.cloud, dry, p.kind)
	r.Remove(Item{Kind: p.kind, ID: p.id})
	return r
}
func (p kindPlan) Planned() *Report                         { return p.report(true) }
func (p kindPlan) Execute(context.Context) (*Report, error) { return p.report(false), p.fail }

// Joined plans report as one, in order, under the first's cloud; one
// failing does not stop the next.
func TestJoin(t *testing.T) {
	j := Join(kindPlan{"local", OrphanedVolume, "vol-1", errors.New("boom")}, kindPlan{"local", Attestation, "ami-1", nil})
	var b strings.Builder
	j.Planned().WriteText(&b)
	if b.String() != "would remove 1 orphaned volumes [vol-1], 1 documents of removed images [ami-1]\n" {
		t.Errorf("planned: %q", b.String())
	}
	r, err := j.Execute(context.Background())
	if err == nil || r.Cloud != "local" || strings.Join(r.IDs(Attestation), ",") != "ami-1" || strings.Join(r.IDs(OrphanedVolume), ",") != "vol-1" {
		t.Errorf("executed: %+v %v", r, err)
	}
	js, _ := json.Marshal(r)
	if !strings.Contains(string(js), `"attestations":["ami-1"]`) {
		t.Errorf("json: %s", js)
	}
}
