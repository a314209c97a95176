package wire

import (
	"encoding/json"
	"net/url"
	"slices"
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

// filterKeys are the list query's keys, the only ones a filter may carry.
var filterKeys = []string{"status", "addressed", "assignee", "channel", "tag", "sort", "limit", "cursor"}

// FilterQuery reads a subscribe frame's filter: the list query's keys with
// JSON values (a string, boolean, number or list of strings). A
// subscription starts at the first page, so a cursor is ignored. Unlike a
// URL, which carries other parameters too, a filter holds only list keys:
// any other is a client's mistake (a misspelt "assigne" would otherwise
// subscribe to the whole inbox) and refused.
func FilterQuery(filter map[string]json.RawMessage) (inbox.Query, error) {
	q := url.Values{}
	for k, raw := range filter {
		if !slices.Contains(filterKeys, k) {
			if len(k) > validate.MaxTag {
				k = k[:validate.MaxTag]
			}
			return inbox.Query{}, Errorf(CodeInvalid, "filter: unknown key %q, want one of %s", k, strings.Join(filterKeys, ", "))
		}
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
	if err := CleanQuery(q); err != nil {
		return inbox.Query{}, err
	}
	if c := q.Get("cursor"); c != "" {
		// Ignored, as the list query would not ignore a bad one.
		if err := inbox.CheckCursor(c); err != nil {
			return inbox.Query{}, Errorf(CodeInvalid, "filter.cursor: not a cursor of a list page")
		}
	}
	q.Del("cursor")
	return ListQuery(q)
}

// MaxPath bounds a request path (a few ids of at most validate.MaxID each),
// and an id in a frame, which may be as long as a path before it is simply
// not found.
const MaxPath = 1024

// CleanQuery holds a list query's names and values, from a URL or a
// subscription's filter, to the rule every string obeys.
func CleanQuery(q url.Values) error {
	for k, vs := range q {
		if err := validate.Text("query parameter name", k, validate.MaxTag); err != nil {
			return Errorf(CodeInvalid, "%v", err)
		}
		for _, v := range vs {
			if err := validate.Text(k, v, validate.MaxURL); err != nil {
				return Errorf(CodeInvalid, "%v", err)
			}
		}
	}
	return nil
}
