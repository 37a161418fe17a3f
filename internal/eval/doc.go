// Package eval measures the quality of face templates without running any
// model: the caller turns images into L2-normalised embeddings (cosine
// similarity = dot product) or a failure (no face found) and hands the
// results over.
//
// It provides:
//
//   - LFW-format pairs files: ParsePairs reads one (resolving image
//     references against a root folder) and MakePairs writes one for any
//     identity-per-folder image set;
//   - 1:1 verification metrics (Verify): cross-validated accuracy, TAR at
//     fixed FAR, AUC and EER, and ThresholdForFAR to calibrate a model
//     pack's same-person threshold;
//   - 1:N identification metrics (Identify): rank-1, rank-5 and open-set
//     TPIR at fixed FPIR;
//   - a ROC plot as PNG (WriteROCPNG).
//
// Failures (an image without a detected face) are always counted as errors,
// never dropped, so that a detector that gives up on hard images cannot look
// better than one that tries.
package eval
