// Package source defines how images enter gabarit: from declared, closed
// collections only. A Source lists the image files of one collection that its
// controller supplied (a folder, an archive) and opens them; it never follows
// a URL and never discovers new collections by itself.
//
// There is deliberately no crawler and no URL fetching: untargeted scraping of
// facial images from the internet or CCTV footage is a prohibited practice
// under the EU AI Act, Art. 5(1)(e), and it is what the CNIL and other
// authorities fined Clearview AI for. Every face must point to a declared
// source with a legal basis, so a source can only be a bounded collection.
//
// Implementations live in subpackages (source/folder, source/archive) and must
// pass the conformance suite in source/sourcetest. They refuse anything that
// leads outside the collection (symlinks, archive entries such as
// "../evil.jpg": ErrEscape) and enforce Limits against oversized files and
// decompression bombs (ErrTooLarge).
package source
