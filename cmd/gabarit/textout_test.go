package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintResult(t *testing.T) {
	v := struct {
		Accuracy float64            `json:"accuracy"`
		TAR      map[string]float64 `json:"tar_at_far"`
		Pack     string             `json:"pack"`
		Folds    []int              `json:"folds"`
	}{0.95, map[string]float64{"1e-2": 0.9}, "default", []int{1, 2}}
	var text, js bytes.Buffer
	if err := printResult(&text, false, v); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(text.String()), "\n") {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	if want := "accuracy 0.95|tar_at_far.1e-2 0.9|pack default|folds [1,2]"; strings.Join(got, "|") != want {
		t.Errorf("text:\n%s\nwant %s", text.String(), want)
	}
	if err := printResult(&js, true, v); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(js.String(), `{"accuracy":0.95,"tar_at_far":{"1e-2":0.9}`) {
		t.Errorf("json: %s", js.String())
	}
}
