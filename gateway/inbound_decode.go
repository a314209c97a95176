package gateway

import (
	"net/http"
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
	var seen uint8
	ok := true
	doc.ForEach(func(k, v gjson.Result) bool {
		var dst *string
		var bit uint8
		switch k.Raw {
		case `"contact"`:
			if seen&1 != 0 || !v.IsObject() {
				ok = false
				return false
			}
			seen |= 1
			in.Contact = &contactIn{}
			ok = in.Contact.decodePlain(v)
			return ok
		case `"body"`:
			dst, bit = &in.Body, 2
		case `"channel"`:
			dst, bit = &in.Channel, 4
		case `"external_id"`:
			dst, bit = &in.ExternalID, 8
		default:
			ok = false
			return false
		}
		if seen&bit != 0 {
			ok = false
			return false
		}
		seen |= bit
		*dst, ok = plainString(v)
		return ok
	})
	return ok
}

func (c *contactIn) decodePlain(obj gjson.Result) bool {
	var seen uint8
	ok := true
	obj.ForEach(func(k, v gjson.Result) bool {
		var dst *string
		var bit uint8
		switch k.Raw {
		case `"phone"`:
			dst, bit = &c.Phone, 1
		case `"email"`:
			dst, bit = &c.Email, 2
		case `"handle"`:
			dst, bit = &c.Handle, 4
		case `"name"`:
			dst, bit = &c.Name, 8
		default:
			ok = false
			return false
		}
		if seen&bit != 0 {
			ok = false
			return false
		}
		seen |= bit
		*dst, ok = plainString(v)
		return ok
	})
	return ok
}

// plainString is a JSON string's value unless it holds a \u escape, which
// encoding/json and gjson may resolve differently when it is not a valid
// UTF-16 sequence.
func plainString(v gjson.Result) (string, bool) {
	if v.Type != gjson.String || strings.Contains(v.Raw, `\u`) {
		return "", false
	}
	return v.Str, true
}
