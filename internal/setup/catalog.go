package setup

import (
	"os"
	"path/filepath"
	"runtime"
)

// Versions of the pinned runtime libraries.
const (
	// ORTVersion is the ONNX Runtime version of CPURuntime.
	ORTVersion = "1.30.0"
	// GPUORTVersion is the ONNX Runtime version of GPURuntime (CUDA 13 build).
	GPUORTVersion = "1.29.0"
)

// Destinations in the catalogue are relative to Dirs.Root, so that every
// package can be fetched with Fetch(ctx, p, DefaultDirs().Root, logf).

// CPURuntime is the CPU build of ONNX Runtime for this machine
// (linux/amd64 or linux/arm64), taken from onnxruntime-node. On other
// platforms its file list is empty and Fetch refuses it.
func CPURuntime() Package {
	return cpuRuntime(runtime.GOOS, runtime.GOARCH)
}

func cpuRuntime(goos, goarch string) Package {
	p := Package{Name: "onnxruntime-node", Version: ORTVersion}
	if goos != "linux" {
		return p
	}
	dest := "ort/" + ORTVersion + "/libonnxruntime.so.1"
	switch goarch {
	case "amd64":
		p.Files = []File{{
			Path:   "package/bin/napi-v6/linux/x64/libonnxruntime.so.1",
			SHA256: "ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23",
			Dest:   dest,
		}}
	case "arm64":
		p.Files = []File{{
			Path:   "package/bin/napi-v6/linux/arm64/libonnxruntime.so.1",
			SHA256: "1f549d46250b005580b597f4164984aaf75b3bcb9f3aeb07c7f8a8fe60b23c76",
			Dest:   dest,
		}}
	}
	return p
}

// DefaultPack is the default face model pack (MIT): the RFB-320 detector,
// the PFLD 68-point landmark model and the MobileFaceNet embedder, written
// to packs/default/ as published (the batch-enabled embedder is derived
// from it by modelpack.InstallDefault).
func DefaultPack() Package {
	return Package{
		Name:    "faceplugin-face-recognition-js",
		Version: "0.0.1",
		Files: []File{
			{Path: "package/model/fr_detect.onnx", SHA256: "6c0256ccd3164f844736a401faf936ec2930764a87ae39442180887d0c5c8854", Dest: "packs/default/fr_detect.onnx"},
			{Path: "package/model/fr_landmark.onnx", SHA256: "f10b0ba1d2a8a099adefede1ebf3733e44fe370715e7303dbeb7f59c02142258", Dest: "packs/default/fr_landmark.onnx"},
			{Path: "package/model/fr_feature.onnx", SHA256: "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581", Dest: "packs/default/fr_feature.onnx"},
			{Path: "package/LICENSE", SHA256: "ceb7e9130f684a8e335940a09ccfb81c2fa18f6aa54975d656c54bb7992aee1a", Dest: "packs/default/LICENSE"},
		},
	}
}

// TestPhotos are six sample photos with faces (and the package's MIT
// licence), written to testphotos/.
func TestPhotos() Package {
	return Package{
		Name:    "@vladmandic/face-api",
		Version: "1.7.15",
		Files: []File{
			{Path: "package/demo/sample1.jpg", SHA256: "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51", Dest: "testphotos/sample1.jpg"},
			{Path: "package/demo/sample2.jpg", SHA256: "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691", Dest: "testphotos/sample2.jpg"},
			{Path: "package/demo/sample3.jpg", SHA256: "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936", Dest: "testphotos/sample3.jpg"},
			{Path: "package/demo/sample4.jpg", SHA256: "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc", Dest: "testphotos/sample4.jpg"},
			{Path: "package/demo/sample5.jpg", SHA256: "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938", Dest: "testphotos/sample5.jpg"},
			{Path: "package/demo/sample6.jpg", SHA256: "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87", Dest: "testphotos/sample6.jpg"},
			{Path: "package/LICENSE", SHA256: "9a3442b79acaf4fbc7c2e07b7e2d8f84af9bb3871bf08a69d80304ab00640e9a", Dest: "testphotos/LICENSE"},
		},
	}
}

// GPURuntime is the CUDA build of ONNX Runtime 1.29.0 for linux/amd64,
// taken from two Unity packages: the core library (whose soname is
// libonnxruntime.so.1) and the CUDA execution provider with its
// providers_shared helper, all written to ort/1.29.0-cuda/ so that the core
// library finds the providers beside itself. The CUDA provider needs the
// CUDA 13 runtime, cuBLAS and cuDNN 9 from the system. It is nil on other
// platforms.
func GPURuntime() []Package {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return nil
	}
	const dir = "ort/" + GPUORTVersion + "-cuda/"
	return []Package{
		{
			Name:    "com.github.asus4.onnxruntime",
			Version: "0.4.9",
			Files: []File{
				{Path: "package/Plugins/Linux/x64/libonnxruntime.so", SHA256: "5715f06d8992ca8eeeddcce43df3a7d38f97d537052126f558e912cb312460ca", Dest: dir + "libonnxruntime.so"},
				{Path: "package/LICENSE", SHA256: "2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c", Dest: dir + "LICENSE"},
			},
		},
		{
			Name:    "com.github.asus4.onnxruntime.linux-x64-gpu",
			Version: "0.4.9",
			Files: []File{
				{Path: "package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so", SHA256: "56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037", Dest: dir + "libonnxruntime_providers_cuda.so"},
				{Path: "package/Plugins/Linux/x64/libonnxruntime_providers_shared.so", SHA256: "c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772", Dest: dir + "libonnxruntime_providers_shared.so"},
			},
		},
	}
}

// Dirs of an installation under one cache directory.
type Dirs struct {
	Root string
}

// DefaultDirs is the installation under $GABARIT_CACHE, else
// $XDG_CACHE_HOME/gabarit, else ~/.cache/gabarit.
func DefaultDirs() Dirs {
	if d := os.Getenv("GABARIT_CACHE"); d != "" {
		return Dirs{Root: d}
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return Dirs{Root: filepath.Join(d, "gabarit")}
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return Dirs{Root: filepath.Join(h, ".cache", "gabarit")}
	}
	return Dirs{Root: filepath.Join(os.TempDir(), "gabarit-cache")}
}

// ORTLibrary is the CPU ONNX Runtime library: Root/ort/1.30.0/libonnxruntime.so.1.
func (d Dirs) ORTLibrary() string {
	return filepath.Join(d.Root, "ort", ORTVersion, "libonnxruntime.so.1")
}

// GPULibraryDir is the directory of the CUDA ONNX Runtime: Root/ort/1.29.0-cuda.
func (d Dirs) GPULibraryDir() string {
	return filepath.Join(d.Root, "ort", GPUORTVersion+"-cuda")
}

// GPULibrary is the CUDA ONNX Runtime core library inside GPULibraryDir.
func (d Dirs) GPULibrary() string {
	return filepath.Join(d.GPULibraryDir(), "libonnxruntime.so")
}

// Pack is the directory of the model pack called name: Root/packs/NAME.
func (d Dirs) Pack(name string) string {
	return filepath.Join(d.Root, "packs", name)
}

// TestPhotos is the directory of the test photos: Root/testphotos.
func (d Dirs) TestPhotos() string {
	return filepath.Join(d.Root, "testphotos")
}
