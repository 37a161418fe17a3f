package onnx

import (
	"errors"
	"fmt"
)

// Options choose where and how the networks run.
type Options struct {
	// Library is the path of the ONNX Runtime shared library.
	Library string
	// Device is "cpu" (default) or "cuda".
	Device string
	// CUDAProvider is the path of libonnxruntime_providers_cuda.so (Device "cuda").
	CUDAProvider string
	// Threads is the number of intra-op threads per network (0: 1). The
	// pipeline runs several images at once, so one thread per call is usually
	// fastest on CPU.
	Threads int
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.Library == "" {
		return errors.New("onnx: no ONNX Runtime library given (run gabarit setup)")
	}
	switch o.Device {
	case "", "cpu":
	case "cuda":
		if o.CUDAProvider == "" {
			return errors.New("onnx: device cuda needs the CUDA provider library (run gabarit setup --gpu)")
		}
	default:
		return fmt.Errorf("onnx: unknown device %q (want cpu or cuda)", o.Device)
	}
	if o.Threads < 0 {
		return fmt.Errorf("onnx: threads must be ≥ 0, got %d", o.Threads)
	}
	return nil
}
