//go:build cgo && onnx

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"gabarit/internal/app"
	"gabarit/internal/modelpack"
	"gabarit/internal/modeltest"
	"gabarit/internal/search"
)

// TestStrangersGetNoMatch is the open-set decision on real faces: a store
// of about 600 celeba-dev photos of 30 people, searched with photos of 20
// people who are not in it. At the old pairwise threshold (FAR 1e-3, run
// here as an examiner's exploratory search) some strangers come back; at
// the default operating point none does, while most people who are held
// are still found from a photo that is not in the store.
func TestStrangersGetNoMatch(t *testing.T) {
	modeltest.Installed(t)
	celeba := modeltest.SharedData(t, "celeba-dev")
	if testing.Short() {
		t.Skip("open-set search on celeba-dev (about a minute) skipped in -short mode; make test and CI do not use -short")
	}
	names, files, err := identityFolders(celeba)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 80 {
		t.Fatalf("celeba-dev has %d identities, want at least 80", len(names))
	}
	photos := t.TempDir()
	var mated, strangers []string
	matedOf := map[string]string{}
	for i := range 80 {
		switch {
		case i%4 == 0: // not held: one photo each is a stranger's probe
			strangers = append(strangers, files[i][0])
		case i < 40: // held: every photo but the first, which is a probe
			mated = append(mated, files[i][0])
			matedOf[files[i][0]] = names[i]
			for _, f := range files[i][1:] {
				if err := copyFile(f, filepath.Join(photos, names[i], filepath.Base(f))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	data := t.TempDir()
	id := addSource(t, data, photos)
	if out, stderr, err := cli(t, data, "ingest", "--json", fmt.Sprint(id)); err != nil {
		t.Fatalf("ingest: %v\n%s\n%s", err, out, stderr)
	}
	if out, stderr, err := cli(t, data, "user", "add", "--roles", "admin,investigator,examiner", actor()); err != nil {
		t.Fatalf("user add: %v\n%s\n%s", err, out, stderr)
	}
	searchJSON := func(probe string, args ...string) app.SearchView {
		t.Helper()
		out, stderr, err := cli(t, data, append(append([]string{"search", "--purpose", "open-set test", "--all", "--json"}, args...), probe)...)
		if err != nil {
			t.Fatalf("search %s: %v\n%s", probe, err, stderr)
		}
		var v app.SearchView
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("search printed %q: %v", out, err)
		}
		return v
	}

	old := fmt.Sprint(modelpack.DefaultSamePerson)
	oldStrangers, oldProbes := 0, 0
	for _, p := range strangers {
		v := searchJSON(p)
		if v.Match || v.Above != 0 {
			t.Errorf("stranger %s: %d faces returned at the default operating point %.4f (%d faces): %+v",
				filepath.Base(p), v.Above, v.OperatingPoint, v.Gallery, v.Results)
		}
		if v.FPIR != search.DefaultFPIR || v.Gallery < 500 || v.OperatingPoint <= modelpack.DefaultSamePerson {
			t.Errorf("decision: FPIR %v, gallery %d, operating point %v", v.FPIR, v.Gallery, v.OperatingPoint)
		}
		e := searchJSON(p, "--threshold", old, "--reason", "compare with the pairwise threshold")
		if !e.Exploratory {
			t.Fatalf("search at %s not exploratory: %+v", old, e)
		}
		weak := 0
		for _, r := range e.Results {
			if r.Band != search.BandWeak || !r.BelowOperatingPoint {
				t.Errorf("stranger %s: a result at the pairwise threshold is not weak: %+v", filepath.Base(p), r)
			}
			weak++
		}
		oldStrangers += weak
		if weak > 0 {
			oldProbes++
		}
	}
	if oldProbes == 0 {
		t.Fatalf("no stranger came back at the pairwise threshold %s: the test shows nothing", old)
	}
	t.Logf("pairwise threshold %s: %d strangers' faces over %d of %d stranger probes; default: none", old,
		oldStrangers, oldProbes, len(strangers))

	found := 0
	for _, p := range mated {
		v := searchJSON(p)
		for _, r := range v.Results {
			if strings.HasPrefix(r.Locator, matedOf[p]+"/") {
				found++
				break
			}
		}
	}
	t.Logf("people held found from a photo not in the store: %d of %d", found, len(mated))
	if found < len(mated)*2/3 {
		t.Errorf("only %d of %d people held were found", found, len(mated))
	}
}
