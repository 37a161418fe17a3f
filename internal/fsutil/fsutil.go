// Package fsutil holds the file operations that several packages need
// done the same careful way.
package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data atomically: readers see the old file or
// the new one, never a part. data goes to a temporary file in the same
// directory, with mode, which is renamed over path. With durable, the file
// is synced before the rename and the directory after it, so that the new
// file survives a power cut once WriteFile returns. On error the temporary
// file is removed and path is unchanged.
func WriteFile(path string, data []byte, mode fs.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort: the error to report is err
		return err
	}
	if !durable {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir syncs directory dir, so that the entries just renamed or
// created in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
