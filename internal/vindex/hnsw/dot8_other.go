//go:build !amd64 || purego

package hnsw

// dot8 returns the dot product of the int8 vectors a and b, which have the
// same length (the pure-Go kernel; amd64 has an assembly one).
func dot8(a, b []int8) int32 { return dot8Go(a, b) }

// useAVX2 reports whether dot8 runs the assembly kernel: never here.
func useAVX2() bool { return false }
