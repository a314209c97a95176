package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/switchboard-dev/switchboard/gateway/apidoc"
)

// The OpenAPI document, loaded once for every test of the package: the test
// client's one request path (api.send) checks each REST response against it.
var openAPI = sync.OnceValues(func() (routers.Router, error) {
	raw, err := apidoc.JSON()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	// Route on paths only: the servers entry is relative and every test
	// node listens on its own port.
	doc.Servers = nil
	return gorillamux.NewRouter(doc)
})

// checkResponse fails the test when a REST response does not match the
// OpenAPI document: an undocumented status, a missing required field, a
// wrong type. Requests to paths the document does not describe (deliberate
// 404s, pages, metrics) are not checked here; TestOpenAPICoversEveryRoute
// holds the document to the router.
func checkResponse(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/v1/") || req.URL.Path == "/v1/ws" {
		return
	}
	router, err := openAPI()
	if err != nil {
		t.Fatalf("openapi document: %v", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestBody: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true, MultiError: true,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		// The first line names the field; the rest dumps the whole schema.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		t.Errorf("%s %s → %d does not match the OpenAPI document: %s\nbody: %.2000s", req.Method, req.URL.Path, status, msg, body)
	}
}

var routeParam = regexp.MustCompile(`\{[^}]+\}`)

// TestOpenAPICoversEveryRoute fails on an endpoint the gateway serves but the
// document lacks (parameter names aside), and checks the served copy.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	n := testNode(t)
	router, err := openAPI()
	if err != nil {
		t.Fatal(err)
	}
	_ = router
	raw, _ := apidoc.JSON()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+routeParam.ReplaceAllString(path, "{}")] = true
		}
	}
	checked := 0
	for _, pattern := range n.Gateway().Routes() {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || (!strings.HasPrefix(path, "/v1/") && path != "/healthz" && path != "/readyz") {
			continue // pages, assets and the /v1/ catch-all are not REST endpoints
		}
		checked++
		if !documented[method+" "+routeParam.ReplaceAllString(path, "{}")] {
			t.Errorf("%s is served but not in the OpenAPI document", pattern)
		}
	}
	if checked < 20 {
		t.Fatalf("only %d routes checked: is Routes() empty?", checked)
	}

	c := api{t: t, base: n.URL()}
	res := c.do("GET", "/v1/openapi.json", nil)
	if res.Status != 200 || !bytes.Equal(res.Body, raw) {
		t.Fatalf("GET /v1/openapi.json: %d, %d bytes (want the document, %d bytes)", res.Status, len(res.Body), len(raw))
	}
}
