package gateway

import (
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// decodeInbound reads POST /v1/inboxes/{inbox_id}/messages' body exactly as
// decode does, faster for its common shape. Decoding it with encoding/json
// (reflection, a scan to validate, another to decode) was ~5% of a node's
// CPU at ingest.
func decodeInbound(w http.ResponseWriter, r *http.Request, in *inboundIn) error {
	raw, err := readBody(w, r)
	if err != nil {
		return err
	}
	if in.decodePlain(raw) {
		return nil
	}
	*in = inboundIn{}
	return decodeJSON(raw, in)
}

// decodePlain decodes the common shape of the body: one valid UTF-8 JSON
// object whose members are named exactly as inboundIn's fields (contactIn's
// inside contact), each at most once, with string values (an object for
// contact) that hold no \u escape. encoding/json decodes that shape to the
// same values, which the tests hold it to. Anything else — other names or
// cases, repeated names, null, numbers, \u escapes, invalid JSON — answers
// false, and the caller decodes with encoding/json, which decides and words
// the error.
func (in *inboundIn) decodePlain(raw []byte) bool {
	if !utf8.Valid(raw) || !gjson.ValidBytes(raw) {
		return false
	}
	doc := gjson.ParseBytes(raw)
	if !doc.IsObject() {
		return false
	}
	return plainObject(doc, inboundNames, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			if !v.IsObject() {
				return false
			}
			in.Contact = &contactIn{}
			return in.Contact.decodePlain(v)
		case 1:
			return plainString(v, &in.Body)
		case 2:
			return plainString(v, &in.Channel)
		}
		return plainString(v, &in.ExternalID)
	})
}

func (c *contactIn) decodePlain(obj gjson.Result) bool {
	dsts := [...]*string{&c.Phone, &c.Email, &c.Handle, &c.Name}
	return plainObject(obj, contactNames, func(i int, v gjson.Result) bool { return plainString(v, dsts[i]) })
}

// The members of each object, as their JSON keys appear when written
// plainly; decodePlain's callbacks take them by index.
var (
	inboundNames = []string{`"contact"`, `"body"`, `"channel"`, `"external_id"`}
	contactNames = []string{`"phone"`, `"email"`, `"handle"`, `"name"`}
)

// plainObject walks obj's members: each must be one of names, at most
// once, and decode must take its value.
func plainObject(obj gjson.Result, names []string, decode func(i int, v gjson.Result) bool) bool {
	var seen uint64
	ok := true
	obj.ForEach(func(k, v gjson.Result) bool {
		i := slices.Index(names, k.Raw)
		if i < 0 || seen&(1<<i) != 0 {
			ok = false
			return false
		}
		seen |= 1 << i
		ok = decode(i, v)
		return ok
	})
	return ok
}

// plainString stores a JSON string's value in dst unless it holds a \u
// escape, which encoding/json and gjson may resolve differently when it is
// not a valid UTF-16 sequence.
func plainString(v gjson.Result, dst *string) bool {
	if v.Type != gjson.String || strings.Contains(v.Raw, `\u`) {
		return false
	}
	*dst = v.Str
	return true
}
