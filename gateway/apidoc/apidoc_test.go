package apidoc

import (
	"context"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestDocumentIsValid loads the served JSON with a full OpenAPI validator:
// every $ref resolves and every schema is well formed.
func TestDocumentIsValid(t *testing.T) {
	doc := load(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if doc.Paths.Find("/v1/inboxes/{inbox_id}/conversations") == nil {
		t.Error("the list endpoint is missing")
	}
}

// Every operation that takes a body documents the answers any body can get:
// 400 for a malformed or invalid one, 413 for one over 1 MiB; every one with
// path parameters, the 400 of a path id that breaks the string rules.
func TestBodiesDocumentTheirRefusals(t *testing.T) {
	doc := load(t)
	checked := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if strings.Contains(path, "{") && op.Responses.Value("400") == nil {
				// A control character in a path id is invalid_argument.
				t.Errorf("%s %s has path parameters but does not document 400", method, path)
			}
			if op.RequestBody == nil {
				continue
			}
			checked++
			for _, status := range []string{"400", "413"} {
				if op.Responses.Value(status) == nil {
					t.Errorf("%s %s takes a body but does not document %s", method, path, status)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d operations with a body: is the document read?", checked)
	}
}

// load reads the served document.
func load(t *testing.T) *openapi3.T {
	t.Helper()
	raw, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return doc
}
