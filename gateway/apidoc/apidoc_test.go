package apidoc

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestDocumentIsValid loads the served JSON with a full OpenAPI validator:
// every $ref resolves and every schema is well formed.
func TestDocumentIsValid(t *testing.T) {
	raw, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
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
