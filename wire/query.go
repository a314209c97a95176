package wire

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-dev/switchboard/domain/conversation"
	"github.com/switchboard-dev/switchboard/domain/inbox"
	"github.com/switchboard-dev/switchboard/domain/validate"
)

// ListQuery reads the list query of GET /v1/inboxes/{id}/conversations
// (status, addressed, assignee, channel, tag, sort, limit, cursor) into typed
// values. It checks the syntax only (a comma list, a boolean, an integer);
// inbox.Query.Resolve checks the values. Other keys, such as access_token,
// are ignored, and never travel further than the gateway.
func ListQuery(q url.Values) (inbox.Query, error) {
	var out inbox.Query
	if v := q.Get("status"); v != "" {
		for _, part := range strings.Split(v, ",") {
			out.Statuses = append(out.Statuses, conversation.Status(strings.TrimSpace(part)))
		}
	}
	if v := q.Get("addressed"); v != "" {
		if v != "true" && v != "false" {
			return inbox.Query{}, Errorf(CodeInvalid, "addressed: want true or false, got %q", v)
		}
		b := v == "true"
		out.Addressed = &b
	}
	out.Assignee = q.Get("assignee")
	out.Channel = conversation.Channel(q.Get("channel"))
	out.Tag = q.Get("tag")
	if out.Tag != "" {
		if err := validate.Tag("tag", out.Tag); err != nil {
			return inbox.Query{}, Errorf(CodeInvalid, "%v", err)
		}
	}
	out.Sort = inbox.Sort(q.Get("sort"))
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > inbox.MaxLimit {
			return inbox.Query{}, Errorf(CodeInvalid, "limit: want an integer in 1..%d, got %q", inbox.MaxLimit, v)
		}
		out.Limit = n
	}
	out.Cursor = q.Get("cursor")
	return out, nil
}

// FilterQuery reads a subscribe frame's filter: the list query's keys with
// JSON values (a string, boolean, number or list of strings). A
// subscription starts at the first page, so a cursor is ignored.
func FilterQuery(filter map[string]json.RawMessage) (inbox.Query, error) {
	q := url.Values{}
	for k, raw := range filter {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return inbox.Query{}, Errorf(CodeInvalid, "filter.%s: malformed", k)
		}
		switch x := v.(type) {
		case nil:
		case string:
			q.Set(k, x)
		case bool:
			q.Set(k, strconv.FormatBool(x))
		case float64:
			q.Set(k, strconv.FormatFloat(x, 'f', -1, 64))
		case []any:
			parts := make([]string, 0, len(x))
			for _, p := range x {
				s, ok := p.(string)
				if !ok {
					return inbox.Query{}, Errorf(CodeInvalid, "filter.%s: want strings", k)
				}
				parts = append(parts, s)
			}
			q.Set(k, strings.Join(parts, ","))
		default:
			return inbox.Query{}, Errorf(CodeInvalid, "filter.%s: want a string, boolean, number or list of strings", k)
		}
	}
	q.Del("cursor")
	return ListQuery(q)
}
