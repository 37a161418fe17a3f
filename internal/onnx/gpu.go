//go:build cgo && onnx

package onnx

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// The C API is a table of function pointers (OrtApi). onnxruntime_go does not
// wrap SessionOptionsSetEpSelectionPolicy, so this shim looks it up by its
// index in the table: 305 in the OrtApi of API version 22 and later
// (append-only, so stable across 1.22–1.30; counted from
// onnxruntime_c_api.h). TestEpSelectionPolicy exercises it on the CPU
// runtime.
typedef void OrtStatus;
typedef struct { const void* (*GetApi)(unsigned int); const char* (*GetVersionString)(void); } gbApiBase;
typedef OrtStatus* (*gbSetPolicy)(void* options, int policy);
typedef const char* (*gbGetErrorMessage)(const OrtStatus*);
typedef void (*gbReleaseStatus)(OrtStatus*);

static const char* gb_set_policy(const char* lib, void* options, int policy) {
	void* h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) return "runtime library is not loaded";
	const gbApiBase* (*base)(void) = (const gbApiBase* (*)(void))dlsym(h, "OrtGetApiBase");
	if (base == NULL) return "OrtGetApiBase not found";
	void* const* api = (void* const*)base()->GetApi(22);
	if (api == NULL) return "runtime does not offer API version 22";
	OrtStatus* st = ((gbSetPolicy)api[305])(options, policy);
	if (st == NULL) return NULL;
	const char* msg = ((gbGetErrorMessage)api[2])(st);
	return msg; // the status is leaked on purpose: its message is read by the caller once
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"
)

// Execution-provider device policies of the ONNX Runtime C API.
const (
	policyPreferCPU = 1
	policyPreferGPU = 3
)

// preferGPU asks ONNX Runtime to place the session on a GPU provider
// registered with RegisterExecutionProviderLibrary.
func preferGPU(opts *ort.SessionOptions) error { return setPolicy(opts, policyPreferGPU) }

func setPolicy(opts *ort.SessionOptions, policy int) error {
	// ort.SessionOptions holds only the C pointer, as its first field.
	ptr := *(*unsafe.Pointer)(unsafe.Pointer(opts))
	lib := C.CString(env.library)
	defer C.free(unsafe.Pointer(lib))
	if msg := C.gb_set_policy(lib, ptr, C.int(policy)); msg != nil {
		return fmt.Errorf("onnx: set execution-provider policy: %s", C.GoString(msg))
	}
	return nil
}
