package app

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseFaceIDs reads face ids as people type them: separated by commas,
// semicolons or white space, each optionally written "#12". Anything else
// fails with an error naming it.
func ParseFaceIDs(s string) ([]int64, error) {
	var ids []int64
	sep := func(c rune) bool { return c == ',' || c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for _, f := range strings.FieldsFunc(s, sep) {
		id, err := strconv.ParseInt(strings.TrimPrefix(f, "#"), 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("%q is not a face id", f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
