// Package modelpack describes and installs face model packs: a manifest names
// the ONNX files (with their sha256), their input sizes, pre-processing and
// thresholds, so that another pack can be used without code changes.
package modelpack

import (
	"encoding/json"
	"errors"
	"fmt"
	"gabarit/internal/openset"
	"os"
	"path/filepath"
)

// ManifestFile is the name of a pack's manifest inside its directory.
const ManifestFile = "manifest.json"

// Manifest describes one installed model pack.
type Manifest struct {
	Name        string     `json:"name"`        // short id, e.g. "default"
	Description string     `json:"description"` // one line for humans
	License     string     `json:"license"`     // SPDX id or text of the weights' licence
	Source      string     `json:"source"`      // where the weights came from, e.g. "npm:faceplugin-face-recognition-js@0.0.1"
	Detector    Model      `json:"detector"`
	Landmarks   *Model     `json:"landmarks,omitempty"` // optional 68-point refiner; nil when the detector gives 5 points
	Embedder    Model      `json:"embedder"`
	Thresholds  Thresholds `json:"thresholds"`
}

// Model is one ONNX network of a pack and the way its input is prepared.
type Model struct {
	Kind   string `json:"kind"`   // decoder family: "rfb320", "yunet", "pfld68", "arcface"
	File   string `json:"file"`   // path relative to the pack directory (or absolute)
	SHA256 string `json:"sha256"` // hex digest of File, checked when the pack is opened
	Width  int    `json:"width"`  // network input width in pixels (0: dynamic)
	Height int    `json:"height"` // network input height in pixels (0: dynamic)
	// Channels is the channel order fed to the network: "RGB", "BGR" or "GRAY".
	Channels string `json:"channels"`
	// Mean and Std normalise each 0–255 input value as (v-Mean)/Std.
	Mean float32 `json:"mean"`
	Std  float32 `json:"std"`
	// Dim is the embedder's output length (embedders only).
	Dim int `json:"dim,omitempty"`
	// DynamicBatch is true when the network accepts a batch dimension > 1.
	DynamicBatch bool `json:"dynamic_batch,omitempty"`
}

// Thresholds are the pack's calibrated decision values.
type Thresholds struct {
	// Detection is the minimum detector score (0–1) for a face to be kept.
	Detection float64 `json:"detection"`
	// NMSIoU is the intersection-over-union above which the weaker of two boxes is dropped.
	NMSIoU float64 `json:"nms_iou"`
	// SamePerson is the cosine similarity at or above which two faces are
	// declared the same person.
	SamePerson float64 `json:"same_person"`
	// SamePersonFAR is the false-accept rate SamePerson was calibrated for,
	// and Calibration says on what data.
	SamePersonFAR float64 `json:"same_person_far"`
	Calibration   string  `json:"calibration"`
	// OpenSet is the embedder's open-set calibration, from which searches
	// set their operating point for the gallery's size (package openset).
	// A pack without one whose embedder is the default pack's uses the
	// default pack's.
	OpenSet *OpenSet `json:"open_set,omitempty"`
}

// OpenSet is the open-set calibration of an embedder, measured by
// `gabarit eval openset`.
type OpenSet struct {
	// SingleTail is the share of comparisons with one face of another
	// person at or above each similarity; SingleSlope continues it beyond
	// its last point (log10 FAR per unit of similarity).
	SingleTail  []openset.TailPoint `json:"single_tail"`
	SingleSlope float64             `json:"single_slope"`
	// GroupTail is the same for the second-best similarity among the faces
	// of one other person.
	GroupTail  []openset.TailPoint `json:"group_tail"`
	GroupSlope float64             `json:"group_slope"`
	Link       float64             `json:"link"`        // least similarity of two faces grouped as one person's
	FloorFAR   float64             `json:"floor_far"`   // pairwise FAR of the least similarity of a candidate
	MinQuality float64             `json:"min_quality"` // stored faces of lower quality are never matches
	Measured   string              `json:"measured"`    // on what data, by what command
}

// Decider builds the decision model of o.
func (o *OpenSet) Decider() (*openset.Decider, error) {
	single, err := openset.New(o.SingleTail, o.SingleSlope)
	if err != nil {
		return nil, fmt.Errorf("single tail: %w", err)
	}
	group, err := openset.New(o.GroupTail, o.GroupSlope)
	if err != nil {
		return nil, fmt.Errorf("group tail: %w", err)
	}
	d := &openset.Decider{Single: single, Group: group, Link: o.Link, FloorFAR: o.FloorFAR, MinQuality: o.MinQuality}
	return d, d.Check()
}

// OpenSet returns the open-set decision model of the pack's embedder: its
// calibration, or the default pack's when the embedder is the default one
// and the manifest has none.
func (m Manifest) OpenSet() (*openset.Decider, error) {
	o := m.Thresholds.OpenSet
	if o == nil && (m.Embedder.SHA256 == defaultBatchEmbedderSHA256 || m.Embedder.SHA256 == defaultEmbedderSHA256) {
		o = DefaultOpenSet()
	}
	if o == nil {
		return nil, fmt.Errorf("pack %s: no open-set calibration for its embedder: measure one with `gabarit eval openset` "+
			"and write it in thresholds.open_set", m.Name)
	}
	d, err := o.Decider()
	if err != nil {
		return nil, fmt.Errorf("pack %s: thresholds.open_set: %w", m.Name, err)
	}
	return d, nil
}

// Load reads and validates the manifest in dir. File paths stay as written;
// use Path to resolve them.
func Load(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("model pack %s: %w", dir, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("model pack %s: parse %s: %w", dir, ManifestFile, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("model pack %s: %w", dir, err)
	}
	return &m, nil
}

// Validate checks that every required field is set to a usable value.
func (m *Manifest) Validate() error {
	var errs []error
	if m.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	check := func(role string, md *Model, kinds ...string) {
		if md.File == "" || md.SHA256 == "" {
			errs = append(errs, fmt.Errorf("%s: file and sha256 are required", role))
		}
		ok := false
		for _, k := range kinds {
			ok = ok || md.Kind == k
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s: kind %q is not one of %v", role, md.Kind, kinds))
		}
		switch md.Channels {
		case "RGB", "BGR", "GRAY":
		default:
			errs = append(errs, fmt.Errorf("%s: channels %q is not RGB, BGR or GRAY", role, md.Channels))
		}
		if md.Std == 0 {
			errs = append(errs, fmt.Errorf("%s: std must not be 0", role))
		}
	}
	check("detector", &m.Detector, "rfb320", "yunet")
	if m.Landmarks != nil {
		check("landmarks", m.Landmarks, "pfld68")
	}
	check("embedder", &m.Embedder, "arcface")
	if m.Embedder.Dim <= 0 || m.Embedder.Width <= 0 || m.Embedder.Height <= 0 {
		errs = append(errs, errors.New("embedder: dim, width and height must be > 0"))
	}
	if m.Detector.Kind == "rfb320" && m.Landmarks == nil {
		errs = append(errs, errors.New("detector rfb320 gives no landmarks: a landmarks model is required"))
	}
	t := m.Thresholds
	if t.Detection <= 0 || t.Detection >= 1 || t.NMSIoU <= 0 || t.NMSIoU >= 1 {
		errs = append(errs, errors.New("thresholds: detection and nms_iou must be in (0,1)"))
	}
	if t.SamePerson <= -1 || t.SamePerson >= 1 {
		errs = append(errs, errors.New("thresholds: same_person must be in (-1,1)"))
	}
	return errors.Join(errs...)
}

// Path resolves a model file named in the manifest against the pack directory.
func Path(dir, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(dir, file)
}

// ID identifies the network for the templates it makes: its kind and the
// first 16 hex digits of its file's SHA-256. Stored templates record the ID
// of their embedder; templates of different IDs are never compared.
func (m Model) ID() string {
	return m.Kind + "-" + m.SHA256[:min(16, len(m.SHA256))]
}
