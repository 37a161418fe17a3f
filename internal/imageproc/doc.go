// Package imageproc decodes images with limits and EXIF orientation, and
// resamples, warps and converts them to network tensors.
//
// Decoding (Decode, DecodeFile) sniffs the format from the content, refuses
// oversized files and images from their headers before any pixel is decoded,
// applies the EXIF orientation, and always returns 8-bit RGB. JPEG decoding
// uses libjpeg-turbo when the package is built with cgo and the jpegturbo
// build tag (see FastJPEG), and the pure-Go decoders otherwise. HEIC (and
// AVIF) photos are decoded by libheif with cgo and the heif build tag (see
// HEIF), and refused with a message that says so otherwise. Errors are
// typed by what is wrong (PixelLimitError, SizeLimitError, FormatError,
// CorruptError), and Message words them for people.
package imageproc
