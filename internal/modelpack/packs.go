package modelpack

import (
	"fmt"
	"gabarit/internal/openset"
	"os"

	"gabarit/internal/setup"
)

// File names of the default pack.
const (
	DefaultDetectorFile      = "fr_detect.onnx"
	DefaultLandmarksFile     = "fr_landmark.onnx"
	DefaultEmbedderFile      = "fr_feature.onnx"       // as published: batch fixed to 1
	DefaultBatchEmbedderFile = "fr_feature_batch.onnx" // PatchDynamicBatch(DefaultEmbedderFile)
	DefaultBatchDetectorFile = "fr_detect_batch.onnx"  // PatchDynamicBatch(DefaultDetectorFile)
	// YuNetDetectorFile is the YuNet detector of the optional "yunet" pack
	// (OpenCV Zoo, MIT).
	YuNetDetectorFile = "face_detection_yunet_2026may.onnx"
)

// Digests of the pack files. defaultBatchEmbedderSHA256 is the digest of
// PatchDynamicBatch applied to the published embedder.
const (
	defaultDetectorSHA256      = "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854"
	defaultLandmarksSHA256     = "f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258"
	defaultEmbedderSHA256      = "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"
	defaultBatchEmbedderSHA256 = "ac39c21799aa44512ae4b0feff13c76b2ca5ce14d50dd27f7ed3e20c4b190078"
	defaultBatchDetectorSHA256 = "69b8e05cdf18cf253f3f8bcf904cb65e8491d1c7940e7f4c77ffef9b87e68c09"
	yuNetDetectorSHA256        = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
)

// DefaultSamePerson is the cosine similarity at or above which the default
// embedder declares two faces the same person. It was chosen by
// `gabarit eval calibrate --root ../shared/data/celeba-dev --far 1e-3`
// (see DefaultCalibration and docs/ACCURACY.md), not guessed.
const DefaultSamePerson = 0.3566

// DefaultSamePersonFAR is the false-accept rate DefaultSamePerson aims at.
const DefaultSamePersonFAR = 0.001

// DefaultCalibration names the data DefaultSamePerson was calibrated on.
const DefaultCalibration = "celeba-dev (CelebA in the wild, 120 identities, 2,500 photos): " +
	"FAR 0.0009998 over 3,089,514 impostor pairs, TAR 0.881 over 29,239 genuine pairs"

// DefaultOpenSet returns the default embedder's open-set calibration,
// measured by
//
//	gabarit eval openset --root ../shared/data/celeba-dev \
//	    --distractors ../shared/data/deepface-tests --distractors ../shared/data/faceapi-bbt \
//	    --distractors ../shared/data/orl-att
//
// on every photo (docs/ACCURACY.md), faces of quality under 0.2 left out:
// the single-face tail over 7,805,369 comparisons of a photo's subject face
// with every face of another identity's photo, the group tail over the
// second-best similarity of each subject face to each other identity's
// subject faces (494,820 comparisons).
func DefaultOpenSet() *OpenSet {
	return &OpenSet{
		SingleTail: []openset.TailPoint{
			{Score: 0.2520, FAR: 0.01},
			{Score: 0.3068, FAR: 0.003},
			{Score: 0.3518, FAR: 0.001},
			{Score: 0.3977, FAR: 0.0002999},
			{Score: 0.4402, FAR: 9.993e-05},
			{Score: 0.5091, FAR: 3.011e-05},
			{Score: 0.6807, FAR: 9.993e-06},
			{Score: 0.7927, FAR: 2.947e-06},
		},
		SingleSlope: -4.0221,
		GroupTail: []openset.TailPoint{
			{Score: 0.2948, FAR: 0.01},
			{Score: 0.3453, FAR: 0.002999},
			{Score: 0.3861, FAR: 0.0009983},
			{Score: 0.4274, FAR: 0.0002991},
			{Score: 0.4592, FAR: 9.903e-05},
			{Score: 0.5023, FAR: 3.031e-05},
		},
		GroupSlope: -11.9178,
		Link:       0.4525,
		FloorFAR:   3e-3,
		MinQuality: 0.2,
		Measured: "gabarit eval openset on celeba-dev (120 identities) with deepface-tests, faceapi-bbt and orl-att " +
			"as distractors, 2026-12-02",
	}
}

// DefaultManifest is the manifest of the default pack: RFB-320 detector,
// PFLD 68-point landmarks and the MobileFaceNet embedder patched for batches.
func DefaultManifest() Manifest {
	return Manifest{
		Name:        "default",
		Description: "RFB-320 face detector, PFLD 68-point landmarks, MobileFaceNet 512-d embedder (dynamic batch)",
		License:     "MIT",
		Source:      "npm:faceplugin-face-recognition-js@0.0.1",
		Detector: Model{
			Kind: "rfb320", File: DefaultBatchDetectorFile, SHA256: defaultBatchDetectorSHA256,
			Width: 320, Height: 240, Channels: "RGB", Mean: 127, Std: 128, DynamicBatch: true,
		},
		Landmarks: &Model{
			Kind: "pfld68", File: DefaultLandmarksFile, SHA256: defaultLandmarksSHA256,
			Width: 64, Height: 64, Channels: "GRAY", Mean: 0, Std: 256,
		},
		Embedder: Model{
			Kind: "arcface", File: DefaultBatchEmbedderFile, SHA256: defaultBatchEmbedderSHA256,
			Width: 112, Height: 112, Channels: "BGR", Mean: 127, Std: 128,
			Dim: 512, DynamicBatch: true,
		},
		Thresholds: Thresholds{
			Detection:     0.7, // real faces score ≥ 0.99; 0.6–0.7 were hands and arms in the demo photos
			NMSIoU:        0.4,
			SamePerson:    DefaultSamePerson,
			SamePersonFAR: DefaultSamePersonFAR,
			Calibration:   DefaultCalibration,
			OpenSet:       DefaultOpenSet(),
		},
	}
}

// YuNetManifest is the manifest of the optional "yunet" pack: the YuNet
// detector (dynamic input size, 5 landmarks) with the default pack's
// landmark and embedder models.
func YuNetManifest() Manifest {
	m := DefaultManifest()
	m.Name = "yunet"
	m.Description = "YuNet face detector (OpenCV Zoo) with the default pack's PFLD 68-point landmarks and MobileFaceNet embedder"
	m.License = "MIT"
	m.Source = "OpenCV Zoo " + YuNetDetectorFile + " + npm:faceplugin-face-recognition-js@0.0.1"
	m.Detector = Model{
		Kind: "yunet", File: YuNetDetectorFile, SHA256: yuNetDetectorSHA256,
		Width: 0, Height: 0, Channels: "BGR", Mean: 0, Std: 1,
	}
	m.Thresholds.Detection = 0.6
	m.Thresholds.NMSIoU = 0.3
	return m
}

// Open loads dir's manifest and verifies every referenced file's sha256.
// The error names the file that is missing or does not match.
func Open(dir string) (*Manifest, error) {
	m, err := Load(dir)
	if err != nil {
		return nil, err
	}
	check := func(role string, md *Model) error {
		p := Path(dir, md.File)
		got, err := setup.FileSHA256(p)
		if err != nil {
			if os.IsNotExist(err) {
				return fmt.Errorf("model pack %s: %s file %s is missing", dir, role, p)
			}
			return fmt.Errorf("model pack %s: %s: %w", dir, role, err)
		}
		if got != md.SHA256 {
			return fmt.Errorf("model pack %s: %s file %s: sha256 %s, want %s", dir, role, p, got, md.SHA256)
		}
		return nil
	}
	if err := check("detector", &m.Detector); err != nil {
		return nil, err
	}
	if m.Landmarks != nil {
		if err := check("landmarks", m.Landmarks); err != nil {
			return nil, err
		}
	}
	if err := check("embedder", &m.Embedder); err != nil {
		return nil, err
	}
	return m, nil
}
