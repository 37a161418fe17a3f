// Package onnx runs a model pack's networks (detector, landmarks, embedder)
// with ONNX Runtime. It is the only package that imports the ONNX Runtime
// binding; it needs cgo and the build tag "onnx". Without them, Open returns
// an error wrapping errors.ErrUnsupported. The pre- and post-processing
// (tensor layout, output decoding) lives in untagged files so that it is
// always compiled and tested.
package onnx
