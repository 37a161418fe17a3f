//go:build cgo && onnx

package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gabarit/internal/app"
	"gabarit/internal/config"
	"gabarit/internal/modeltest"
	"gabarit/internal/store/storetest"
)

// TestPostgresInstances runs gabarit as several instances over one
// PostgreSQL store, each with its own data directory (vector index, audit
// witness) and the same master key file, on celeba-dev from ../shared/data:
//
//  1. one instance ingests the source: the reference;
//  2. two instances ingest the same source at the same time, one killed with
//     SIGKILL half-way: the other finishes, and the store ends with the same
//     images and faces, and the same templates (decrypted), as the reference
//     (two `gabarit serve` instances sharing one job: TestServeInstancesShareJob);
//
// then gabarit audit verify passes on both instances, fails after an audit
// row is changed, and fails after the last entries are removed (the witness
// of the instance that wrote them).
func TestPostgresInstances(t *testing.T) {
	modeltest.Installed(t)
	photos := modeltest.SharedData(t, "celeba-dev")
	dir := t.TempDir()
	key := filepath.Join(dir, "shared.key")

	// run ingests the source into the new database dsn with the given
	// number of instances; kill > 0 kills the first instance once that many
	// images are stored.
	run := func(name, dsn string, instances, kill int) []string {
		t.Helper()
		datas := make([]string, instances)
		for i := range datas {
			datas[i] = filepath.Join(dir, fmt.Sprintf("%s-%d", name, i))
		}
		env := []string{"GABARIT_STORE=" + dsn, "GABARIT_MASTER_KEY_FILE=" + key}
		if out, err := instanceCmd(datas[0], env, "source", "add", "--kind", "folder", "--path", photos, "--controller", "Example Org",
			"--purpose", "tests", "--legal-basis", "consent", "--art9", "9(2)(a)", "--jurisdiction", "FR", "--retention", "30d").CombinedOutput(); err != nil {
			t.Fatalf("%s: source add: %v\n%s", name, err, out)
		}
		cmds := make([]*exec.Cmd, instances)
		outs := make([]*bytes.Buffer, instances)
		for i := range cmds {
			cmds[i] = instanceCmd(datas[i], env, "ingest", "--quiet", "1")
			outs[i] = &bytes.Buffer{}
			cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
			if err := cmds[i].Start(); err != nil {
				t.Fatal(err)
			}
		}
		if kill > 0 {
			raw := rawDB(t, dsn)
			deadline := time.Now().Add(5 * time.Minute)
			for {
				var n int
				if err := raw.QueryRow(`SELECT count(*) FROM images`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n >= kill {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d images stored after 5 minutes, want %d before the kill", name, n, kill)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := cmds[0].Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range cmds {
			err := c.Wait()
			if i == 0 && kill > 0 {
				if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
					t.Fatalf("%s: the first instance was not killed (it ended first: %v)\n%s", name, err, outs[i])
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: instance %d: %v\n%s", name, i, err, outs[i])
			}
		}
		return datas
	}

	ref := storetest.Postgres(t)
	run("single", ref, 1, 0)
	want := storedFaces(t, dir, ref, key)
	if len(want) < 2000 {
		t.Fatalf("the reference ingest stored %d faces, want the ~2,700 of celeba-dev", len(want))
	}
	for _, tt := range []struct {
		name string
		kill int
	}{{"killed", 600}} {
		dsn := storetest.Postgres(t)
		datas := run(tt.name, dsn, 2, tt.kill)
		got := storedFaces(t, dir, dsn, key)
		if diff := diffFaces(want, got); diff != "" {
			t.Errorf("%s: the store differs from the single instance's: %s", tt.name, diff)
		}
		for _, data := range datas {
			if out, err := instanceCmd(data, []string{"GABARIT_STORE=" + dsn, "GABARIT_MASTER_KEY_FILE=" + key},
				"audit", "verify").CombinedOutput(); err != nil {
				t.Errorf("%s: audit verify on %s: %v\n%s", tt.name, filepath.Base(data), err, out)
			}
		}
		// The killed run: tamper with its log, as someone with the
		// database's rights but not gabarit's would.
		raw := rawDB(t, dsn)
		survivor := datas[1] // its audit verify above wrote the last entry
		verify := func() (string, error) {
			out, err := instanceCmd(survivor, []string{"GABARIT_STORE=" + dsn, "GABARIT_MASTER_KEY_FILE=" + key}, "audit", "verify").CombinedOutput()
			return string(out), err
		}
		sqlExec := func(q string, args ...any) {
			t.Helper()
			if _, err := raw.Exec(q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		sqlExec(`ALTER TABLE audit DISABLE TRIGGER USER`)
		var mid int64
		var actor string
		if err := raw.QueryRow(`SELECT id, actor FROM audit WHERE id = (SELECT max(id) / 2 FROM audit)`).Scan(&mid, &actor); err != nil {
			t.Fatal(err)
		}
		sqlExec(`UPDATE audit SET actor = 'someone else' WHERE id = $1`, mid)
		if out, err := verify(); err == nil || !strings.Contains(out, "does not follow the chain") {
			t.Errorf("audit verify after entry %d was changed: %v\n%s", mid, err, out)
		}
		sqlExec(`UPDATE audit SET actor = $1 WHERE id = $2`, actor, mid)
		if out, err := verify(); err != nil {
			t.Fatalf("audit verify after entry %d was put back: %v\n%s", mid, err, out)
		}
		sqlExec(`DELETE FROM audit WHERE id > (SELECT max(id) - 2 FROM audit)`)
		sqlExec(`ALTER TABLE audit ENABLE TRIGGER USER`)
		if out, err := verify(); err == nil || !strings.Contains(out, "removed from the end of the log") {
			t.Errorf("audit verify after the last entries were removed: %v\n%s", err, out)
		}
	}
}

// instanceCmd runs this test binary as gabarit with args, on data, with the
// extra environment env.
func instanceCmd(data string, env []string, args ...string) *exec.Cmd {
	n := 1
	if args[0] == "source" || args[0] == "audit" {
		n = 2
	}
	cmd := gabaritCmd(data, n, args...)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// rawDB is a plain connection to the PostgreSQL database dsn.
func rawDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// storedFace is a stored face as a run of the same photos must reproduce
// it: its image's content, its box and its decrypted template.
type storedFace struct {
	key      string // the image's SHA-256 and the box
	template []float32
}

// storedFaces reads every face of the store dsn, with its template opened
// by the master key in keyFile, sorted by image and box. Faces are keyed by
// their image's content (its SHA-256), not its locator: a photo found twice
// in a source under two names is stored once, under the name of the copy
// committed first, which is the first in the walk for one instance alone
// but either of them for instances at once (celeba-dev has three such pairs).
func storedFaces(t *testing.T, dir, dsn, keyFile string) []storedFace {
	t.Helper()
	ctx := context.Background()
	d, err := app.OpenData(ctx, config.Config{DataDir: filepath.Join(dir, "reader"), Store: dsn, Index: app.IndexFlat, MasterKeyFile: keyFile}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := rawDB(t, dsn).Query(`SELECT i.sha256, f.box_x, f.box_y, f.box_w, f.box_h, f.id, i.source_id, f.model_id, f.template
FROM faces f JOIN images i ON i.id = f.image_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedFace
	for rows.Next() {
		var (
			sha, blob  []byte
			x, y, w, h float64
			id, src    int64
			model      string
		)
		if err := rows.Scan(&sha, &x, &y, &w, &h, &id, &src, &model, &blob); err != nil {
			t.Fatal(err)
		}
		tmpl, err := d.Keys.Open(ctx, src, id, model, blob)
		if err != nil {
			t.Fatalf("face %d: %v", id, err)
		}
		out = append(out, storedFace{key: fmt.Sprintf("%x %.2f %.2f %.2f %.2f", sha, x, y, w, h), template: tmpl})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b storedFace) int { return strings.Compare(a.key, b.key) })
	return out
}

// diffFaces says how got differs from want ("" when the faces are the same
// and their templates equal to the bit).
func diffFaces(want, got []storedFace) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d faces, want %d", len(got), len(want))
	}
	worst := 1.0
	for i := range want {
		if got[i].key != want[i].key {
			return fmt.Sprintf("face %d is %q, want %q", i, got[i].key, want[i].key)
		}
		if !bytes.Equal(f32bytes(got[i].template), f32bytes(want[i].template)) {
			worst = min(worst, cosine(got[i].template, want[i].template))
		}
	}
	if worst < 1 {
		return fmt.Sprintf("templates differ (lowest cosine %.6f)", worst)
	}
	return ""
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}
