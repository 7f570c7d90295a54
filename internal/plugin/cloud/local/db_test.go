package local

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/aminator-go/aminator/internal/plugin/cloud/ids"
)

// Every connection of the registry commits with synchronous=FULL: a commit
// is in the synced log before it returns (NORMAL, in WAL mode, syncs only
// at checkpoints).
func TestRegistrySynchronousFull(t *testing.T) {
	c := open(t)
	ctx := context.Background()
	conns := make([]*sql.Conn, 3) // held at once: three connections of the pool
	for i := range conns {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns[i] = conn
		var mode, journal string
		if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil {
			t.Fatal(err)
		}
		if mode != "2" || journal != "wal" { // 2 is FULL
			t.Errorf("connection %d: synchronous %s, journal %s; want 2 (FULL), wal", i, mode, journal)
		}
	}
}

// bakeCommits are the registry commits of one local bake, in order, as the
// cloud makes them: create the volume (insert, then available), attach,
// detach, snapshot (pending with its tags, then completed), register the
// image with its mapping, tags and packages, delete the volume.
func bakeCommits(ctx context.Context, db *sql.DB) error {
	vol, snap, ami := ids.New("vol"), ids.New("snap"), ids.New("ami")
	steps := [][]string{
		{`INSERT INTO volumes(id,snapshot_id,size_bytes,state,created_at) VALUES(?1,'',1073741824,'creating',?4)`,
			`INSERT INTO tags(resource_id,key,value) VALUES(?1,'purpose','amination')`},
		{`UPDATE volumes SET state='available' WHERE id=?1`},
		{`UPDATE volumes SET state='in-use', device='/dev/loop9' WHERE id=?1`},
		{`UPDATE volumes SET state='available', device='' WHERE id=?1`},
		{`INSERT INTO snapshots(id,volume_id,parent_id,description,state,created_at) VALUES(?2,?1,'','',?5,?4)`,
			`INSERT INTO tags(resource_id,key,value) VALUES(?2,'bake','bake-x')`},
		{`UPDATE snapshots SET state='completed', size_bytes=1073741824 WHERE id=?2`},
		{`INSERT INTO images(id,name,architecture,virtualization_type,root_device_name,block_device_mappings,state,created_at) VALUES(?3,?3,'x86_64','hvm','/dev/sda1','[]','available',?4)`,
			`INSERT INTO image_snapshots(image_id,snapshot_id) VALUES(?3,?2)`,
			`INSERT INTO tags(resource_id,key,value) VALUES(?3,'appversion','hello-1.0')`,
			`INSERT INTO image_packages(image_id,name,version,arch) VALUES(?3,'hello','1.0','amd64')`},
		{`DELETE FROM volumes WHERE id=?1`, `DELETE FROM tags WHERE resource_id=?1`},
	}
	for _, stmts := range steps {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q, vol, snap, ami, now(), "pending"); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkRegistryCommits measures a bake's registry commits (bakeCommits,
// eight transactions) at synchronous=NORMAL, the old mode, and FULL, the
// mode the registry runs in, on the disk the test's temporary directory is
// on; it reports the cost per bake and FULL's ratio to NORMAL.
func BenchmarkRegistryCommits(b *testing.B) {
	ctx := context.Background()
	per := map[string]float64{}
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run(mode, func(b *testing.B) {
			db, err := openDB(filepath.Join(b.TempDir(), "aminator.db"), mode)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			b.ResetTimer()
			for range b.N {
				if err := bakeCommits(ctx, db); err != nil {
					b.Fatal(err)
				}
			}
			ms := float64(b.Elapsed().Microseconds()) / 1000 / float64(b.N)
			per[mode] = ms
			b.ReportMetric(ms, "ms/bake")
		})
	}
	if per["NORMAL"] > 0 {
		b.Logf("registry commits per bake: NORMAL %.2f ms, FULL %.2f ms: FULL costs %.2fx NORMAL, %.2f ms more per bake",
			per["NORMAL"], per["FULL"], per["FULL"]/per["NORMAL"], per["FULL"]-per["NORMAL"])
	}
}
