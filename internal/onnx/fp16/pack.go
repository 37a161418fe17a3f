package fp16

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gabarit/internal/modelpack"
)

// MakePack writes to dst a copy of the model pack in src whose embedder is
// Convert(src's embedder), named NAME-fp16.onnx; the other networks and the
// thresholds are kept (measure before trusting them: gabarit eval). The
// embedder's model id changes with its checksum, so fp16 and fp32
// templates are never mixed in one index. dst must not exist yet.
func MakePack(src, dst string) (*modelpack.Manifest, error) {
	m, err := modelpack.Open(src)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dst); err == nil {
		return nil, fmt.Errorf("fp16: %s already exists", dst)
	}
	raw, err := os.ReadFile(filepath.Join(src, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("fp16: %s: %w", src, err)
	}
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	models := []*modelpack.Model{&m.Detector, m.Landmarks}
	for _, md := range models {
		if md == nil {
			continue
		}
		if err := copyFile(modelpack.Path(src, md.File), filepath.Join(tmp, filepath.Base(md.File))); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"LICENSE"} {
		if _, err := os.Stat(filepath.Join(src, name)); err == nil {
			if err := copyFile(filepath.Join(src, name), filepath.Join(tmp, name)); err != nil {
				return nil, err
			}
		}
	}
	model, err := os.ReadFile(modelpack.Path(src, m.Embedder.File))
	if err != nil {
		return nil, err
	}
	half, err := Convert(model)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Embedder.File, err)
	}
	file := strings.TrimSuffix(filepath.Base(m.Embedder.File), ".onnx") + "-fp16.onnx"
	if err := os.WriteFile(filepath.Join(tmp, file), half, 0o644); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(half)
	emb, ok := doc["embedder"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("fp16: %s: manifest has no embedder", src)
	}
	emb["file"] = file
	emb["sha256"] = hex.EncodeToString(sum[:])
	for _, k := range []string{"detector", "landmarks"} {
		if md, ok := doc[k].(map[string]any); ok {
			if f, ok := md["file"].(string); ok {
				md["file"] = filepath.Base(f)
			}
		}
	}
	doc["name"] = fmt.Sprint(doc["name"]) + "-fp16"
	doc["description"] = fmt.Sprint(doc["description"]) + "; embedder converted to float16 by gabarit (internal/onnx/fp16)"
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "manifest.json"), append(out, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, err
	}
	return modelpack.Open(dst)
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
