//go:build cgo && onnx && !amd64

package onnx

// withFlushToZero runs fn: only amd64 needs the denormal setting.
func withFlushToZero(fn func() error) error { return fn() }
