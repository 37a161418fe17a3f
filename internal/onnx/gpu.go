//go:build cgo && onnx

package onnx

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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

// gb_count_gpu_devices counts the execution-provider devices named ep (any
// provider but the CPU's when ep is empty) that sit on a GPU, through GetEpDevices (index 303), EpDevice_EpName (312),
// EpDevice_Device (316) and HardwareDevice_Type (307; GPU = 1). The
// environment is the process's singleton: CreateEnv (3) returns it with one
// more reference, released with ReleaseEnv (92). Returns -1 and sets *err on
// failure.
typedef OrtStatus* (*gbCreateEnv)(int level, const char* logid, void** out);
typedef void (*gbReleaseEnv)(void* env);
typedef OrtStatus* (*gbGetEpDevices)(const void* env, const void* const** devs, size_t* n);
typedef const char* (*gbEpName)(const void* dev);
typedef const void* (*gbEpDevice)(const void* dev);
typedef int (*gbHwType)(const void* hw);

static int gb_count_gpu_devices(const char* lib, const char* ep, const char** err) {
	void* h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) { *err = "runtime library is not loaded"; return -1; }
	const gbApiBase* (*base)(void) = (const gbApiBase* (*)(void))dlsym(h, "OrtGetApiBase");
	if (base == NULL) { *err = "OrtGetApiBase not found"; return -1; }
	void* const* api = (void* const*)base()->GetApi(22);
	if (api == NULL) { *err = "runtime does not offer API version 22"; return -1; }
	void* env = NULL;
	OrtStatus* st = ((gbCreateEnv)api[3])(3, "gabarit", &env);
	if (st != NULL) { *err = ((gbGetErrorMessage)api[2])(st); return -1; }
	const void* const* devs = NULL;
	size_t n = 0;
	st = ((gbGetEpDevices)api[303])(env, &devs, &n);
	if (st != NULL) { *err = ((gbGetErrorMessage)api[2])(st); ((gbReleaseEnv)api[92])(env); return -1; }
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		const char* name = ((gbEpName)api[312])(devs[i]);
		const void* hw = ((gbEpDevice)api[316])(devs[i]);
		if (name == NULL || hw == NULL || ((gbHwType)api[307])(hw) != 1) continue;
		if (ep[0] == 0 ? strcmp(name, "CPUExecutionProvider") != 0 : strcmp(name, ep) == 0) count++;
	}
	((gbReleaseEnv)api[92])(env);
	return count;
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

// gpuDevices counts the GPUs that the registered execution provider named
// ep offers ("": any provider but the CPU's). Without it, a session that prefers the GPU would quietly run on
// the CPU.
func gpuDevices(ep string) (int, error) {
	lib := C.CString(env.library)
	defer C.free(unsafe.Pointer(lib))
	name := C.CString(ep)
	defer C.free(unsafe.Pointer(name))
	var msg *C.char
	n := C.gb_count_gpu_devices(lib, name, &msg)
	if n < 0 {
		return 0, fmt.Errorf("onnx: list execution-provider devices: %s", C.GoString(msg))
	}
	return int(n), nil
}
