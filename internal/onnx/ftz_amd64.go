//go:build cgo && onnx && amd64

package onnx

/*
#include <xmmintrin.h>

// Flush-to-zero (bit 15) and denormals-are-zero (bit 6) of MXCSR.
static unsigned int gb_ftz_on(void) {
	unsigned int old = _mm_getcsr();
	_mm_setcsr(old | 0x8040);
	return old;
}
static void gb_csr_restore(unsigned int old) { _mm_setcsr(old); }
*/
import "C"

import "runtime"

// withFlushToZero runs fn, a network call, on this OS thread with
// denormal floats treated as zero, and restores the thread's setting after
// it. Activations of the MobileFaceNet embedder fall into the denormal
// range, where x86 arithmetic is tens of times slower; they are far below
// anything that changes a template. ONNX Runtime's own option
// (session.set_denormal_as_zero) covers only its pool threads, while with
// one thread per call the network runs on the caller's thread.
func withFlushToZero(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old := C.gb_ftz_on()
	defer C.gb_csr_restore(old)
	return fn()
}
