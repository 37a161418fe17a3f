package modelpack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManifestsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Manifest
	}{
		{"default", DefaultManifest()},
		{"yunet", YuNetManifest()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.m.Validate(); err != nil {
				t.Fatal(err)
			}
			if tc.m.Name != tc.name {
				t.Errorf("name %q", tc.m.Name)
			}
			e := tc.m.Embedder
			if e.File != DefaultBatchEmbedderFile || !e.DynamicBatch || e.Dim != 512 || e.Channels != "BGR" || e.Mean != 127 || e.Std != 128 {
				t.Errorf("embedder %+v", e)
			}
			if tc.m.Landmarks == nil || tc.m.Landmarks.File != DefaultLandmarksFile {
				t.Errorf("landmarks %+v", tc.m.Landmarks)
			}
		})
	}
	if d := YuNetManifest().Detector; d.Kind != "yunet" || d.Width != 0 || d.Channels != "BGR" || d.Std != 1 {
		t.Errorf("yunet detector %+v", d)
	}
	if th := YuNetManifest().Thresholds; th.NMSIoU != 0.3 || th.Detection != 0.6 {
		t.Errorf("yunet thresholds %+v", th)
	}
	// YuNetManifest must not share the default's Landmarks pointer.
	y := YuNetManifest()
	y.Landmarks.File = "x"
	if DefaultManifest().Landmarks.File == "x" {
		t.Error("manifests share state")
	}
}

// writeTestPack writes a small pack with fake model files into a temp dir.
func writeTestPack(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	m := DefaultManifest()
	for name, body := range map[string]string{
		DefaultBatchDetectorFile: "detector",
		DefaultLandmarksFile:     "landmarks",
		DefaultBatchEmbedderFile: "embedder",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeManifest(dir, m, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpen(t *testing.T) {
	dir := writeTestPack(t)
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Embedder.SHA256 != sha256Hex([]byte("embedder")) {
		t.Errorf("embedder sha256 %s", m.Embedder.SHA256)
	}

	tests := []struct {
		name    string
		damage  func(dir string)
		wantErr []string
	}{
		{
			name:    "modified embedder",
			damage:  func(dir string) { os.WriteFile(filepath.Join(dir, DefaultBatchEmbedderFile), []byte("other"), 0o644) },
			wantErr: []string{"embedder", DefaultBatchEmbedderFile, sha256Hex([]byte("other")), sha256Hex([]byte("embedder"))},
		},
		{
			name:    "missing landmarks",
			damage:  func(dir string) { os.Remove(filepath.Join(dir, DefaultLandmarksFile)) },
			wantErr: []string{"landmarks", DefaultLandmarksFile, "missing"},
		},
		{
			name:    "missing manifest",
			damage:  func(dir string) { os.Remove(filepath.Join(dir, ManifestFile)) },
			wantErr: []string{ManifestFile},
		},
		{
			name: "invalid manifest",
			damage: func(dir string) {
				b, _ := json.Marshal(Manifest{Name: "x"})
				os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o644)
			},
			wantErr: []string{"detector"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTestPack(t)
			tc.damage(dir)
			_, err := Open(dir)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
