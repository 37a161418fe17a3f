// Package access writes the answer to a data-subject access request (GDPR
// Art. 15): a zip holding a machine-readable report.json, a readable
// report.html, and a copy of the data — every image held in which the person's
// face was found, and a crop of each of their faces.
//
// The package does no database or network I/O: the caller gathers what the
// store holds about the person into a Package (their faces, the sources they
// came from, the searches that returned them) and Write turns it into the
// zip. Image bytes are fetched through each Face's Image func, decoded with
// imageproc's limits and EXIF orientation, and re-encoded as JPEG.
//
// # What the answer contains
//
// Following Art. 15(1)–(3) and the CJEU (C-154/21 on recipients, C-579/21 on
// the logs of consultations), the report lists every face with its image
// locator, source, controller, purpose, legal basis (and Art. 9 condition),
// retention period and deadline and the date collected; every search that
// returned the person, with its date, purpose, case reference, who received
// the result and who confirmed it; and the items (a)–(h) of Art. 15(1):
// purposes, categories of data, recipients, retention, the rights to
// rectification, erasure, restriction and objection, the right to lodge a
// complaint with a supervisory authority, the source of the data, and the
// absence of automated decision-making (matches are only candidates that a
// person confirms).
//
// Biometric templates are never exported: a template can be inverted into a
// face, so the report says they exist and leaves them out. Nothing about other
// people is written either, beyond the blurred pixels of their faces.
//
// # Other people's faces (Art. 15(4))
//
// In every image copied, the boxes of every other face (Face.Others, slightly
// enlarged) are pixelated to at most 8×8 blocks and then box-blurred before
// the image is re-encoded, so their content cannot be recovered. The boxes of
// the person's own faces are left untouched, even where another box overlaps
// them, and a box in Others that is one of the person's own faces in the same
// image is not blurred. Faces found in videos are listed with their time code;
// video frames are not included.
package access
