package gateway

import (
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/switchboard-dev/switchboard/internal/plainjson"
	"github.com/switchboard-dev/switchboard/wire"
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
	// The fast path decodes only the members it knows, so the text rule
	// every string obeys is checked on the whole body first.
	if wire.CheckText(raw) == nil && in.decodePlain(raw) {
		return nil
	}
	*in = inboundIn{}
	if err := decodeJSON(raw, in); err != nil {
		return err
	}
	return wire.RefuseEmpty(raw, "channel", "external_id")
}

// decodePlain decodes the common shape of the body (see plainjson): one
// object whose members are named exactly as inboundIn's fields
// (contactIn's inside contact), each at most once, with string values (an
// object for contact). Anything else answers false, and the caller decodes
// with encoding/json, which decides and words the error.
func (in *inboundIn) decodePlain(raw []byte) bool {
	doc, ok := plainjson.Object(raw)
	return ok && plainjson.Members(doc, inboundNames, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			if !v.IsObject() {
				return false
			}
			in.Contact = &contactIn{}
			return in.Contact.decodePlain(v)
		case 1:
			return plainjson.String(v, &in.Body)
		case 2:
			// An empty channel is refused, by the slow path.
			return plainjson.String(v, &in.Channel) && (in.Channel != "" || v.Type == gjson.Null)
		}
		// An empty external_id is refused, by the slow path.
		return plainjson.String(v, &in.ExternalID) && (in.ExternalID != "" || v.Type == gjson.Null)
	})
}

func (c *contactIn) decodePlain(obj gjson.Result) bool {
	dsts := [...]*string{&c.Phone, &c.Email, &c.Handle, &c.Name}
	return plainjson.Members(obj, contactNames, func(i int, v gjson.Result) bool { return plainjson.String(v, dsts[i]) })
}

// The members of each object; decodePlain's callbacks take them by index.
var (
	inboundNames = []string{"contact", "body", "channel", "external_id"}
	contactNames = []string{"phone", "email", "handle", "name"}
)
