package gateway

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestWriteSplicedIsTheObjectOfItsMembers(t *testing.T) {
	rec := httptest.NewRecorder()
	summary := []byte(`{"id":"cv_1","tags":["a\"b"],"n":1}`)
	writeSpliced(rec, 201, member{"conversation_id", jsonString(`cv_"1"`)}, member{"message", nil}, member{"conversation", summary})
	if rec.Code != 201 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, rec.Body.String())
	}
	want := map[string]any{"conversation_id": `cv_"1"`, "message": nil,
		"conversation": map[string]any{"id": "cv_1", "tags": []any{`a"b`}, "n": float64(1)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
