// Package pipeline turns an image into faces: it decodes with limits, finds
// faces at every size with a pyramid of detector tiles, merges them with
// non-maximum suppression, locates five landmarks, aligns each face onto the
// ArcFace template by a least-squares similarity, embeds the aligned crops in
// batches and scores each face's quality. The networks are behind small
// interfaces, so the logic is tested with fakes and run with ONNX Runtime.
package pipeline
