// Package validate holds the API's rules for every string a client sends
// (docs/api.md "Limits and bad input"), one rule per field, so that REST and
// websocket input and the domain's own Decide refuse the same things with
// the same words. The rules matter beyond tidiness: a NUL or an over-long
// key that reaches PostgreSQL fails the whole group commit it shares with
// other tenants, so everything is refused here, before any write.
package validate

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is what every rule's error wraps: the API's invalid_argument.
var ErrInvalid = errors.New("invalid argument")

// Limits of docs/api.md, in characters (Unicode code points) except the body,
// which is counted in bytes.
const (
	MaxName      = 200
	MaxEmail     = 254
	MaxKey       = 128 // handle, external_id, client_id, call_id, error_code, provider_message_id
	MaxURL       = 2048
	MaxTag       = 64
	MaxTags      = 50 // tags on one conversation
	MaxBodyBytes = 16 << 10
	// MaxID bounds ids the server issued (agents, inboxes, conversations):
	// ours are far shorter, so a longer one names nothing.
	MaxID = 128
)

// Error is a refused field: Field names it as the API does
// ("contact.phone"), Reason says what is wrong.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return e.Field + " " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) hold for every rule's error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func fail(field, format string, args ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Text checks what every string must be: valid UTF-8 without control
// characters (U+0000–U+001F, U+007F), at most max characters.
func Text(field, v string, max int) error {
	if err := clean(field, v, false); err != nil {
		return err
	}
	if utf8.RuneCountInString(v) > max {
		return fail(field, "must be at most %d characters", max)
	}
	return nil
}

// clean refuses invalid UTF-8 and control characters; inBody allows tab,
// line feed and carriage return, which a message body may hold.
func clean(field, v string, inBody bool) error {
	if !utf8.ValidString(v) {
		return fail(field, "must be valid UTF-8")
	}
	// Every control character is one ASCII byte, and no byte of a
	// multi-byte UTF-8 sequence is below 0x80: scanning bytes is enough.
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			if inBody && (c == '\t' || c == '\n' || c == '\r') {
				continue
			}
			return fail(field, "must not contain control characters (U+%04X)", c)
		}
	}
	return nil
}

// Required is Text for a value that must not be blank.
func Required(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return fail(field, "is required")
	}
	return Text(field, v, max)
}

// Name is the name of an account, inbox or agent: 1 to 200 characters.
func Name(field, v string) error { return Required(field, v, MaxName) }

// ContactName is a contact's display name: optional, at most 200 characters.
func ContactName(field, v string) error { return Text(field, v, MaxName) }

// Key is an optional client-supplied key (external_id, client_id,
// error_code, provider_message_id): at most 128 characters.
func Key(field, v string) error { return Text(field, v, MaxKey) }

// Handle is a chat visitor id, or a call_id: 1 to 128 characters.
func Handle(field, v string) error { return Required(field, v, MaxKey) }

// ID is an id the server issued, named by the client (agent ids, inbox ids,
// path segments): non-empty and clean, so that a lookup of it cannot fail for
// anything but "not found".
func ID(field, v string) error {
	if v == "" {
		return fail(field, "is required")
	}
	return Text(field, v, MaxID)
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Phone is an E.164 number.
func Phone(field, v string) error {
	if !e164.MatchString(v) {
		return fail(field, "must be an E.164 number like +14155550100")
	}
	return nil
}

// Email is a bare address (no display name), at most 254 characters.
func Email(field, v string) error {
	if err := Text(field, v, MaxEmail); err != nil {
		return err
	}
	if a, err := mail.ParseAddress(v); err != nil || a.Address != v {
		return fail(field, "is not a valid address")
	}
	return nil
}

// URL is an absolute http or https URL with a host, at most 2,048
// characters.
func URL(field, v string) error {
	if err := Text(field, v, MaxURL); err != nil {
		return err
	}
	// A space is no URL character: url.Parse lets one through in a path.
	// Host holds a port even without a host name ("http://:80/"), which
	// an HTTP client would take for this machine: the name is checked.
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || strings.ContainsRune(v, ' ') {
		return fail(field, "must be an absolute http or https URL")
	}
	return nil
}

// Tag is one tag: 1 to 64 characters.
func Tag(field, v string) error {
	if v == "" {
		return fail(field, "must be 1 to %d characters", MaxTag)
	}
	return Text(field, v, MaxTag)
}

// Tags checks each tag of a list.
func Tags(field string, tags []string) error {
	for i, t := range tags {
		if err := Tag(fmt.Sprintf("%s[%d]", field, i), t); err != nil {
			return err
		}
	}
	return nil
}

// Body is a message body: not blank, at most 16 KiB, tab, line feed and
// carriage return allowed.
func Body(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return fail(field, "must not be empty")
	}
	if len(v) > MaxBodyBytes {
		return fail(field, "is over 16 KiB")
	}
	return clean(field, v, true)
}

// OneOf checks an enum value against its allowed values.
func OneOf(field, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fail(field, "must be one of %s", strings.Join(allowed, ", "))
}
