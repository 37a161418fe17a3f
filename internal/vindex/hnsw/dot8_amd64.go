//go:build !purego

package hnsw

// hasAVX2 reports whether the CPU and the OS support AVX2 (CPUID leaf 7
// EBX bit 5, with AVX and OSXSAVE in leaf 1 and the YMM state enabled in
// XCR0), in which case dot8 uses the assembly kernel.
var hasAVX2 = func() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if c1&osxsave == 0 || c1&avx == 0 || xgetbv()&6 != 6 {
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0
}()

//go:noescape
func dot8AVX2(a, b *int8, n int) int32

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv() (eax uint32)

// dot8 returns the dot product of the int8 vectors a and b, which have the
// same length: with AVX2, the assembly kernel (16 codes per instruction,
// about 8× the pure-Go loop at length 512) does the multiples of 32 and
// dot8Go the rest; without, dot8Go does it all. It does not allocate.
func dot8(a, b []int8) int32 {
	b = b[:len(a)]
	if n := len(a) &^ 31; hasAVX2 && n > 0 {
		return dot8AVX2(&a[0], &b[0], n) + dot8Go(a[n:], b[n:])
	}
	return dot8Go(a, b)
}

// useAVX2 reports whether dot8 runs the assembly kernel.
func useAVX2() bool { return hasAVX2 }
