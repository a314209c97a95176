// Package plainjson reads JSON in its plain shape — one object whose members
// are named exactly as expected, each at most once, with values of the
// expected JSON type — faster than encoding/json's reflection, and answers
// false for anything else, so that its caller decodes with encoding/json,
// which then decides and words every error. Within the plain shape it
// yields exactly what encoding/json would; each caller's differential test
// holds it to that.
package plainjson

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Object is raw as an object, when it is valid UTF-8 (encoding/json would
// replace invalid bytes) and one valid JSON object.
func Object(raw []byte) (gjson.Result, bool) {
	if !utf8.Valid(raw) || !gjson.ValidBytes(raw) {
		return gjson.Result{}, false
	}
	doc := gjson.ParseBytes(raw)
	return doc, doc.IsObject()
}

// Members walks obj's members: each must be named as one of names (at most
// 64), exactly and without escapes, at most once, and member must take its
// value. encoding/json would match names case-insensitively and let a
// repeated one win: those are not plain.
func Members(obj gjson.Result, names []string, member func(i int, v gjson.Result) bool) bool {
	var seen uint64
	ok := true
	obj.ForEach(func(k, v gjson.Result) bool {
		i := index(names, k.Raw)
		if i < 0 || seen&(1<<i) != 0 {
			ok = false
			return false
		}
		seen |= 1 << i
		ok = member(i, v)
		return ok
	})
	return ok
}

// index is the position in names of the quoted key raw, or -1.
func index(names []string, raw string) int {
	if len(raw) < 2 {
		return -1
	}
	key := raw[1 : len(raw)-1]
	for i, n := range names {
		if n == key {
			return i
		}
	}
	return -1
}

// String stores a JSON string's value in dst, unless it escapes a UTF-16
// surrogate (\uD800–\uDFFF, or any \uD… escape): gjson and encoding/json
// may resolve one that is not a valid pair differently. A null leaves dst
// as it is, as encoding/json does.
func String(v gjson.Result, dst *string) bool {
	if v.Type == gjson.Null {
		return true
	}
	if v.Type != gjson.String || strings.Contains(v.Raw, `\ud`) || strings.Contains(v.Raw, `\uD`) {
		return false
	}
	*dst = v.Str
	return true
}

// Int stores a JSON number in dst as encoding/json does for an int64: an
// integer literal in range, nothing else.
func Int(v gjson.Result, dst *int64) bool {
	if v.Type != gjson.Number {
		return false
	}
	n, err := strconv.ParseInt(v.Raw, 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

// Time stores a JSON string in dst through time.Time's own UnmarshalJSON,
// the one encoding/json calls.
func Time(v gjson.Result, dst *time.Time) bool {
	return v.Type == gjson.String && dst.UnmarshalJSON([]byte(v.Raw)) == nil
}
