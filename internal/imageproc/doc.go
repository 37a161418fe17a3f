// Package imageproc decodes images with limits and EXIF orientation, and
// resamples, warps and converts them to network tensors.
//
// Decoding (Decode, DecodeFile) sniffs the format from the content, refuses
// oversized files and images from their headers before any pixel is decoded,
// applies the EXIF orientation, and always returns 8-bit RGB. JPEG decoding
// uses libjpeg-turbo when the package is built with cgo and the jpegturbo
// build tag (see FastJPEG), and the pure-Go decoders otherwise.
package imageproc
