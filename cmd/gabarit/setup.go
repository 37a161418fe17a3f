package main

import (
	"context"
	"flag"
	"fmt"

	"gabarit/internal/modelpack"
	"gabarit/internal/setup"
)

func (e *cmdEnv) setup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cache := fs.String("cache", "", "installation directory (default $GABARIT_CACHE or ~/.cache/gabarit)")
	gpu := fs.Bool("gpu", false, "also install ONNX Runtime built for CUDA 13 and its CUDA provider (about 250 MB)")
	yunet := fs.String("yunet", "", "also install the YuNet pack from this folder (face_detection_yunet_2026may.onnx)")
	if err := parseArgs(fs, args); err != nil {
		return exitError{2}
	}
	d := setup.DefaultDirs()
	if *cache != "" {
		d = setup.Dirs{Root: *cache}
	}
	logf := func(format string, a ...any) { fmt.Fprintf(e.stderr, format+"\n", a...) }
	if err := setup.Fetch(ctx, setup.CPURuntime(), d.Root, logf); err != nil {
		return err
	}
	if err := modelpack.InstallDefault(ctx, d.Pack("default"), logf); err != nil {
		return err
	}
	if err := setup.Fetch(ctx, setup.TestPhotos(), d.Root, logf); err != nil {
		return err
	}
	if *yunet != "" {
		if err := modelpack.InstallYuNet(ctx, d.Pack("yunet"), *yunet, d.Pack("default")); err != nil {
			return err
		}
	}
	if *gpu {
		for _, p := range setup.GPURuntime() {
			if err := setup.Fetch(ctx, p, d.Root, logf); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(e.stdout, "installed in %s\n", d.Root)
	return nil
}
