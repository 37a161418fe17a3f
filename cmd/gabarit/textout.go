package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"
)

// printResult prints v as JSON with asJSON, and otherwise as text: one
// "name  value" line per field, in the JSON's order, nested objects
// flattened with dots (tar_at_far.1e-2), lists written inline.
func printResult(w io.Writer, asJSON bool, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if asJSON {
		_, err := w.Write(append(b, '\n'))
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if err := textFields(tw, dec, ""); err != nil {
		return err
	}
	return tw.Flush()
}

// textFields writes the fields of the object dec is at, names prefixed.
func textFields(w io.Writer, dec *json.Decoder, prefix string) error {
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name := prefix + fmt.Sprint(t)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if len(raw) > 0 && raw[0] == '{' {
			sub := json.NewDecoder(bytes.NewReader(raw))
			sub.UseNumber()
			if err := textFields(w, sub, name+"."); err != nil {
				return err
			}
			continue
		}
		val := string(raw)
		if s, err := unquote(raw); err == nil {
			val = s
		}
		fmt.Fprintf(w, "%s\t%s\n", name, printable(strings.ReplaceAll(val, "\n", " ")))
	}
	_, err := dec.Token() // }
	return err
}

// unquote returns a JSON string's text.
func unquote(raw json.RawMessage) (string, error) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// printable returns s with the characters that a terminal could act on
// escaped, Go style (\x1b, \n, \u202e…): control characters (C0, DEL, C1),
// bidirectional overrides and isolates, and bytes that are not UTF-8. Every
// file name, locator or error that may hold one is printed through it, so
// that a name in an archive or a folder cannot move the cursor, change
// colours or reorder what is shown. Other text is unchanged.
func printable(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			q := strconv.QuoteRune(r) // '\x1b', '\u202e'
			if q == "'\\''" || !strings.HasPrefix(q, `'\`) {
				q = fmt.Sprintf(`'\u%04x'`, r)
			}
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needsEscape reports whether printable would change s.
func needsEscape(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unsafeRune(r) {
			return true
		}
	}
	return false
}

// unsafeRune reports whether a terminal may act on r rather than show it.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || // C0, DEL, C1
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || // bidi embeddings, overrides, isolates
		r == 0x200e || r == 0x200f || r == 0x061c // bidi marks
}
