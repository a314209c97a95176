// Package apidoc holds the OpenAPI 3.1 document of Switchboard's REST API.
// The YAML file is the source, edited by hand beside the handlers; the
// server serves it as JSON at GET /v1/openapi.json. It cannot drift
// silently: the end-to-end suite validates every REST response it receives
// against it, and a test fails on any route the gateway serves that the
// document lacks.
package apidoc

import (
	_ "embed"
	"fmt"
	"sync"

	"sigs.k8s.io/yaml"
)

//go:embed openapi.yaml
var source []byte

// YAML is the document as written.
func YAML() []byte { return source }

// JSON is the document as JSON, converted once.
var JSON = sync.OnceValues(func() ([]byte, error) {
	out, err := yaml.YAMLToJSON(source)
	if err != nil {
		return nil, fmt.Errorf("apidoc: openapi.yaml: %w", err)
	}
	return out, nil
})
