package imageproc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular matches (errors.Is) the errors of ReadFile and DecodeFile
// for a path that is not a regular file: a directory, a named pipe (FIFO),
// a device such as /dev/zero, or a socket.
var ErrNotRegular = errors.New("not a regular file")

// ReadFile reads the file a person named at path — a photo to search
// with, a selfie, a photo to compare, a list of pairs — the way ingest
// reads the files of a source: regular files only, and at most limit bytes (a limit <= 0 means
// DefaultLimits.MaxBytes, the per-file limit of ingest). The file is opened
// without blocking, so that a named pipe with no writer never hangs the
// caller, and refused before anything is read when it is not a regular file
// (an error wrapping ErrNotRegular) or is larger than limit (a
// *SizeLimitError, matching ErrTooLarge). A file that grows past the limit
// while it is read is refused the same way: at most limit+1 bytes are read.
// Errors name the path.
func ReadFile(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultLimits.MaxBytes
	}
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer. It changes nothing for a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err // *fs.PathError names the path
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fileKind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %w", path, &SizeLimitError{Size: st.Size(), Limit: limit})
	}
	// Read one byte more than the limit, so that a file that grew since the
	// Stat is still refused rather than cut.
	data := make([]byte, 0, st.Size()+1)
	for int64(len(data)) <= limit {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := f.Read(data[len(data):min(int64(cap(data)), limit+1)])
		data = data[:len(data)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w", path, &SizeLimitError{Size: int64(len(data)), Limit: limit})
	}
	return data, nil
}

// fileKind names, for people, the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a file of data (" + m.Type().String() + ")"
}
