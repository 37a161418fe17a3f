package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
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
		fmt.Fprintf(w, "%s\t%s\n", name, strings.ReplaceAll(val, "\n", " "))
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
