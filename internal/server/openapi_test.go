package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// openAPIOperation is the part of an operation the tests check.
type openAPIOperation struct {
	Summary    string              `json:"summary"`
	Public     bool                `json:"x-public"`
	Roles      *[]string           `json:"x-roles"`
	Security   *[]map[string][]any `json:"security"`
	Parameters []openAPIParameter  `json:"parameters"`
	Responses  map[string]any      `json:"responses"`
}

type openAPIParameter struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

// openAPIMethods are the path item keys that are operations.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// pathParam matches a {name} segment of a path.
var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestOpenAPIMatchesRoutes checks openapi.json against apiRoutes and rightsRoutes: the same
// operations, the same access rules, every path parameter declared.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Servers []struct{ URL string }                `json:"servers"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	dec := json.NewDecoder(bytes.NewReader(openAPIDoc))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("servers = %+v, want [{url: /}]", doc.Servers)
	}

	type key struct{ method, path string }
	ops := map[key]openAPIOperation{}
	for path, item := range doc.Paths {
		for m, raw := range item {
			if !slices.Contains(openAPIMethods, m) {
				continue // parameters, summary, …
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Errorf("%s %s: %v", strings.ToUpper(m), path, err)
				continue
			}
			ops[key{strings.ToUpper(m), path}] = op
		}
	}

	routes := slices.Concat((&Server{}).apiRoutes(), (&Server{}).rightsRoutes())
	seen := map[key]bool{}
	for _, rt := range routes {
		k := key{rt.method, rt.path}
		name := rt.method + " " + rt.path
		if seen[k] {
			t.Errorf("%s: route listed twice", name)
		}
		seen[k] = true
		op, ok := ops[k]
		if !ok {
			t.Errorf("%s: route not documented in openapi.json", name)
			continue
		}
		if op.Summary == "" {
			t.Errorf("%s: no summary", name)
		}
		if len(op.Responses) == 0 {
			t.Errorf("%s: no responses", name)
		}
		if rt.public {
			if !op.Public {
				t.Errorf("%s: public route, want \"x-public\": true", name)
			}
			if op.Roles != nil {
				t.Errorf("%s: public route, want no x-roles, got %v", name, *op.Roles)
			}
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s: public route, want \"security\": []", name)
			}
		} else {
			if op.Public {
				t.Errorf("%s: route needs a signed-in user, but x-public is true", name)
			}
			want := make([]string, len(rt.roles))
			for i, r := range rt.roles {
				want[i] = string(r)
			}
			slices.Sort(want)
			if op.Roles == nil {
				t.Errorf("%s: no x-roles, want %q (an empty list for any signed-in user)", name, want)
			} else {
				got := slices.Clone(*op.Roles)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s: x-roles = %q, want %q", name, *op.Roles, want)
				}
			}
			if op.Security != nil && len(*op.Security) == 0 {
				t.Errorf("%s: route needs a signed-in user, but security is []", name)
			}
		}
		declared := map[string]bool{}
		for _, p := range op.Parameters {
			if p.In == "path" {
				declared[p.Name] = true
				if !p.Required {
					t.Errorf("%s: path parameter %q must be required", name, p.Name)
				}
			}
		}
		inPath := map[string]bool{}
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			inPath[m[1]] = true
			if !declared[m[1]] {
				t.Errorf("%s: path parameter {%s} not declared in parameters", name, m[1])
			}
		}
		for p := range declared {
			if !inPath[p] {
				t.Errorf("%s: parameter %q declared in path but not in the route", name, p)
			}
		}
	}
	for k := range ops {
		if !seen[k] {
			t.Errorf("%s %s: documented in openapi.json, but no such route", k.method, k.path)
		}
	}
}

// TestOpenAPIServed checks that the document is served as embedded.
func TestOpenAPIServed(t *testing.T) {
	e := newTestEnv(t, nil)
	resp, err := http.Get(e.ts.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(body, openAPIDoc) {
		t.Errorf("body (%d bytes) differs from the embedded openapi.json (%d bytes)", len(body), len(openAPIDoc))
	}
}

// conforms checks that a JSON answer keeps to the schema name of
// openapi.json: every property it holds is documented (the schemas forbid
// others), every required one is there, and so on down through arrays and
// $refs. It checks names, not types: enough to keep the document and the
// answers in step.
func conforms(t *testing.T, name string, body []byte) {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var walk func(path string, schema json.RawMessage, v any)
	walk = func(path string, raw json.RawMessage, v any) {
		var s struct {
			Ref        string                     `json:"$ref"`
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
			Items      json.RawMessage            `json:"items"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%s: schema: %v", path, err)
		}
		if s.Ref != "" {
			ref := strings.TrimPrefix(s.Ref, "#/components/schemas/")
			walk(path, doc.Components.Schemas[ref], v)
			return
		}
		switch x := v.(type) {
		case map[string]any:
			if s.Properties == nil {
				return // a free-form object
			}
			for k, sub := range x {
				ps, ok := s.Properties[k]
				if !ok {
					t.Errorf("%s.%s: not documented in openapi.json", path, k)
					continue
				}
				walk(path+"."+k, ps, sub)
			}
			for _, k := range s.Required {
				if _, ok := x[k]; !ok {
					t.Errorf("%s.%s: required by openapi.json, absent from the answer", path, k)
				}
			}
		case []any:
			if s.Items != nil {
				for i, sub := range x {
					walk(fmt.Sprintf("%s[%d]", path, i), s.Items, sub)
				}
			}
		}
	}
	schema, ok := doc.Components.Schemas[name]
	if !ok {
		t.Fatalf("no schema %s in openapi.json", name)
	}
	walk(name, schema, v)
}
