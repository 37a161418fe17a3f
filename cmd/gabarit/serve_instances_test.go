//go:build cgo && onnx

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gabarit/internal/modeltest"
	"gabarit/internal/store"
	"gabarit/internal/store/storetest"
)

// TestServeInstancesShareJob runs gabarit serve as several instances over
// one PostgreSQL store, each with its own data directory and the same
// master key file, on celeba-dev from ../shared/data; an ingest job is
// started through the API of the first:
//
//  1. one instance, the job in one part: the reference;
//  2. two instances: both run parts of the job at once (its parts are
//     claimed by two instances), and the store ends with the reference's
//     images, faces and templates (decrypted), compared by the images'
//     content (see storedFaces);
//  3. two instances again, the first killed with SIGKILL once some hundreds
//     of images are stored, while it runs a part: the other takes that part
//     over once its lease expired and finishes the job; the store is again
//     the reference's;
//
// and gabarit audit verify passes on each instance's data directory.
func TestServeInstancesShareJob(t *testing.T) {
	modeltest.Installed(t)
	photos := modeltest.SharedData(t, "celeba-dev")
	dir := t.TempDir()
	key := filepath.Join(dir, "shared.key")
	const lease = "6s" // --job-lease: a dead instance's part is taken over this long after

	type result struct {
		job   serveJob
		datas []string
	}
	run := func(name, dsn string, instances int, parts string, kill int) result {
		t.Helper()
		env := []string{"GABARIT_STORE=" + dsn, "GABARIT_MASTER_KEY_FILE=" + key}
		datas := make([]string, instances)
		for i := range datas {
			datas[i] = filepath.Join(dir, fmt.Sprintf("%s-%d", name, i))
		}
		if out, err := instanceCmd(datas[0], env, "source", "add", "--kind", "folder", "--path", photos, "--controller", "Example Org",
			"--purpose", "tests", "--legal-basis", "consent", "--art9", "9(2)(a)", "--jurisdiction", "FR", "--retention", "30d").CombinedOutput(); err != nil {
			t.Fatalf("%s: source add: %v\n%s", name, err, out)
		}
		var src int64
		if err := rawDB(t, dsn).QueryRow(`SELECT id FROM sources`).Scan(&src); err != nil {
			t.Fatal(err)
		}
		token := serveToken(t, filepath.Join(dir, name+"-admin"), dsn, key)
		servers := make([]*serveProc, instances)
		for i := range servers {
			servers[i] = startServe(t, datas[i], env, "--purge-every", "0", "--job-parts", parts, "--job-lease", lease)
		}
		code, body := servers[0].call(token, "POST", fmt.Sprintf("/api/v1/sources/%d/ingest", src))
		if code != http.StatusAccepted {
			t.Fatalf("%s: start the ingest job: %d %s", name, code, body)
		}
		var started serveJob
		if err := json.Unmarshal(body, &started); err != nil {
			t.Fatal(err)
		}
		survivor := servers[0]
		if kill > 0 {
			// Some hundreds of images stored, each instance running a part.
			raw := rawDB(t, dsn)
			deadline := time.Now().Add(5 * time.Minute)
			for {
				var n, owners int
				if err := raw.QueryRow(`SELECT count(*) FROM images`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if err := raw.QueryRow(`SELECT count(DISTINCT owner) FROM ingest_job_parts WHERE job_id = $1 AND state = 'running'`,
					started.ID).Scan(&owners); err != nil {
					t.Fatal(err)
				}
				if n >= kill && owners == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: after 5 minutes, %d images stored and %d instances running parts; want %d and 2 before the kill", name, n, owners, kill)
				}
				time.Sleep(50 * time.Millisecond)
			}
			servers[0].kill(t)
			survivor = servers[1]
		}
		end := survivor.waitJob(t, token, started.ID, 10*time.Minute)
		for _, s := range servers {
			if s != servers[0] || kill == 0 {
				s.stop(t)
			}
		}
		return result{job: end, datas: datas}
	}

	ref := storetest.Postgres(t)
	one := run("single", ref, 1, "1", 0)
	want, wantImages := storedFaces(t, dir, ref, key), imagesByContent(t, ref)
	if len(want) < 2000 || one.job.State != "done" || len(one.job.Parts) != 1 {
		t.Fatalf("the reference ingest: job %+v, %d faces stored; want done in one part, the ~2,700 faces of celeba-dev", one.job, len(want))
	}
	t.Logf("single: job %d done in %s: %d images, %d faces, %d skipped", one.job.ID, one.job.Finished.Sub(*one.job.Started).Round(time.Second),
		one.job.Images, one.job.Faces, one.job.Skipped)
	for _, tt := range []struct {
		name string
		kill int
	}{{"concurrent", 0}, {"killed", 400}} {
		dsn := storetest.Postgres(t)
		r := run(tt.name, dsn, 2, "4", tt.kill)
		if r.job.State != "done" || tt.kill == 0 && r.job.Images != one.job.Images {
			t.Errorf("%s: job %+v; want done, with the reference's %d images", tt.name, r.job, one.job.Images)
		}
		owners := map[string]int{}
		takenOver := 0
		for _, p := range r.job.Parts {
			owners[p.Instance]++
			if p.State != "done" {
				t.Errorf("%s: part %+v; want done", tt.name, p)
			}
			if p.Claims > 1 {
				takenOver++
			}
		}
		if len(r.job.Parts) != 4 || len(owners) != 2 && tt.kill == 0 {
			t.Errorf("%s: parts %+v; want 4, run by the two instances", tt.name, r.job.Parts)
		}
		var claimers int
		if err := rawDB(t, dsn).QueryRow(`SELECT count(DISTINCT owner) FROM ingest_job_parts`).Scan(&claimers); err != nil {
			t.Fatal(err)
		}
		switch {
		case tt.kill == 0 && (takenOver != 0 || claimers != 2):
			t.Errorf("%s: %d parts taken over, last run by %d instances; want none, and 2", tt.name, takenOver, claimers)
		case tt.kill > 0 && (takenOver == 0 || len(owners) != 1):
			t.Errorf("%s: %d parts taken over, parts last run by %v; want the killed instance's part taken over, every part ended by the survivor",
				tt.name, takenOver, owners)
		}
		got := storedFaces(t, dir, dsn, key)
		if diff := diffFaces(want, got); diff != "" {
			t.Errorf("%s: the store differs from the single instance's: %s", tt.name, diff)
		}
		if gotImages := imagesByContent(t, dsn); !slices.Equal(gotImages, wantImages) {
			t.Errorf("%s: %d images stored, the single instance %d, or other ones", tt.name, len(gotImages), len(wantImages))
		}
		for _, data := range r.datas {
			if out, err := instanceCmd(data, []string{"GABARIT_STORE=" + dsn, "GABARIT_MASTER_KEY_FILE=" + key},
				"audit", "verify").CombinedOutput(); err != nil {
				t.Errorf("%s: audit verify on %s: %v\n%s", tt.name, filepath.Base(data), err, out)
			}
		}
		t.Logf("%s: job %d done in %s: %d images, %d faces, %d skipped; parts run by %d instances, %d taken over",
			tt.name, r.job.ID, r.job.Finished.Sub(*r.job.Started).Round(time.Second), r.job.Images, r.job.Faces, r.job.Skipped,
			len(owners), takenOver)
	}
}

// imagesByContent returns the stored images of the store dsn as their
// content (the SHA-256, with its dimensions), sorted.
func imagesByContent(t *testing.T, dsn string) []string {
	t.Helper()
	rows, err := rawDB(t, dsn).Query(`SELECT sha256, width, height, size_bytes FROM images`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			sha             []byte
			w, h, sizeBytes int64
		)
		if err := rows.Scan(&sha, &w, &h, &sizeBytes); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%x %dx%d %d", sha, w, h, sizeBytes))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// serveJob is the part of an ingest job of the API that the test reads.
type serveJob struct {
	ID       int64      `json:"id"`
	State    string     `json:"state"`
	Started  *time.Time `json:"started"`
	Finished *time.Time `json:"finished"`
	Images   int        `json:"images"`
	Faces    int        `json:"faces"`
	Skipped  int        `json:"skipped"`
	Error    string     `json:"error"`
	Parts    []struct {
		Part     int    `json:"part"`
		State    string `json:"state"`
		Instance string `json:"instance"`
		Claims   int    `json:"claims"`
		Images   int    `json:"images"`
	} `json:"parts"`
}

// serveToken adds an operator to the store dsn and returns an API token
// of theirs, written through an instance on data.
func serveToken(t *testing.T, data, dsn, keyFile string) string {
	t.Helper()
	return apiToken(t, data, dsn, keyFile, "olga", store.RoleOperator)
}

// serveProc is a gabarit serve process.
type serveProc struct {
	cmd    *exec.Cmd
	addr   string // http://host:port
	stderr *bytes.Buffer
	done   chan error
	exited bool // done has been read
}

// startServe starts gabarit serve on data with the extra environment env
// and flags, and waits until it listens.
func startServe(t *testing.T, data string, env []string, flags ...string) *serveProc {
	t.Helper()
	cmd := instanceCmd(data, env, append([]string{"serve", "--addr", "127.0.0.1:0"}, flags...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = waitChan(cmd)
	t.Cleanup(func() {
		if !p.exited {
			cmd.Process.Kill() //nolint:errcheck // it may have ended meanwhile
			<-p.done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	go io.Copy(io.Discard, stdout) //nolint:errcheck // drained until the process ends
	for _, f := range strings.Fields(line) {
		if strings.HasPrefix(f, "http://") {
			p.addr = strings.TrimSuffix(f, "/")
		}
	}
	if err != nil || p.addr == "" {
		t.Fatalf("serve printed %q (%v)\n%s", line, err, p.stderr)
	}
	return p
}

// call sends a request with token to the server; 0 when it did not answer.
func (p *serveProc) call(token, method, path string) (int, []byte) {
	req, err := http.NewRequest(method, p.addr+path, nil)
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, []byte(err.Error())
	}
	return resp.StatusCode, b
}

// waitJob polls job id through the server until it has ended.
func (p *serveProc) waitJob(t *testing.T, token string, id int64, limit time.Duration) serveJob {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		code, body := p.call(token, "GET", fmt.Sprintf("/api/v1/jobs/%d", id))
		if code != http.StatusOK {
			t.Fatalf("job %d: %d %s\n%s", id, code, body, p.stderr)
		}
		var j serveJob
		if err := json.Unmarshal(body, &j); err != nil {
			t.Fatal(err)
		}
		if store.JobState(j.State).Final() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d still %s after %s: %s", id, j.State, limit, body)
		}
		time.Sleep(time.Second)
	}
}

// kill kills the server with SIGKILL.
func (p *serveProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.exited = true
}

// stop stops the server with SIGTERM and checks it exits cleanly.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.exited = true
		if err != nil {
			t.Errorf("serve on %s: %v\n%s", p.addr, err, p.stderr)
		}
	case <-time.After(time.Minute):
		t.Errorf("serve on %s did not stop within a minute", p.addr)
	}
}
