package wire

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Decoding problems every JSON input shares, REST body or frame alike; each
// caller words its own error around them.
var (
	// ErrTrailingData: something other than white space follows the value.
	ErrTrailingData = errors.New("trailing data after the JSON value")
	// ErrLoneSurrogate: a \u escape names half of a UTF-16 surrogate pair.
	ErrLoneSurrogate = errors.New("a \\u escape names a lone UTF-16 surrogate (not valid Unicode)")
	// ErrControlChar: a string, known field or not, holds a control
	// character other than tab, line feed and carriage return (which each
	// field's own rule may still refuse: only a message body takes them).
	ErrControlChar = errors.New("a string holds a control character (U+0000–U+001F, U+007F); only tab, line feed and carriage return, and only in a message body")
)

// DecodeOne decodes raw, exactly one JSON value, into v. Besides what
// encoding/json refuses, it refuses what encoding/json lets through
// silently: trailing data its decoder does not look at (a stray '}' or ']'
// ends More's view of the stream), and a lone surrogate escape, which
// encoding/json turns into U+FFFD. Invalid UTF-8 is the caller's check (it
// words it). io.EOF is returned as is for an empty input.
func DecodeOne(raw []byte, v any) error {
	if err := CheckText(raw); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailingData
	}
	return nil
}

// CheckText is badText's finding, an ErrControlChar naming the string's
// place when it can be found (a decoder that skips unknown fields must
// still refuse them). Only a refused input pays for the search.
func CheckText(raw []byte) error {
	err := badText(raw)
	if !errors.Is(err, ErrControlChar) {
		return err
	}
	var v any
	if json.Unmarshal(raw, &v) == nil {
		if where := controlAt(v, ""); where != "" {
			return controlCharAt(where)
		}
	}
	return err
}

// controlCharAt is ErrControlChar at a place the message names.
type controlCharAt string

func (w controlCharAt) Error() string {
	return string(w) + " must not contain control characters (U+0000–U+001F, U+007F); only a message body may hold tab, line feed and carriage return"
}

func (controlCharAt) Is(target error) bool { return target == ErrControlChar }

// controlAt is the place of the first string in v (keys included) with a
// control character other than tab, line feed and carriage return.
func controlAt(v any, at string) string {
	join := func(k string) string {
		if at == "" {
			return k
		}
		return at + "." + k
	}
	switch x := v.(type) {
	case string:
		// Tab, line feed and carriage return belong in the body.
		if hasControl(x, at == "body") {
			return cmp.Or(at, "a string")
		}
	case []any:
		for i, e := range x {
			if w := controlAt(e, fmt.Sprintf("%s[%d]", at, i)); w != "" {
				return w
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if hasControl(k, false) {
				return "the name of a member of " + cmp.Or(at, "the object")
			}
			if w := controlAt(x[k], join(k)); w != "" {
				return w
			}
		}
	}
	return ""
}

// hasControl reports whether s holds a control character; lineBreaks lets
// tab, line feed and carriage return through.
func hasControl(s string, lineBreaks bool) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return (r < 0x20 && !(lineBreaks && (r == '\t' || r == '\n' || r == '\r'))) || r == 0x7f
	}) >= 0
}

// badText finds, in JSON text, what encoding/json decodes without a word
// but the API refuses in every string, keys and unknown fields included
// (docs/api.md, "Limits and bad input"): a \u escape of a UTF-16 surrogate
// (U+D800–U+DFFF) that is not a high one followed at once by a low one, and
// a control character, escaped or raw (JSON lets DEL through raw; the
// others it refuses) — but for tab, line feed and carriage return inside
// the message body (the top-level "body" string), the one place they
// belong. Backslashes occur only inside strings in valid JSON, and an
// escaped backslash is skipped whole, so "\\ud800" (a backslash, then
// text) is not taken for an escape. Malformed escapes are left to the
// decoder.
func badText(raw []byte) error {
	if bytes.IndexByte(raw, 0x7f) >= 0 {
		return ErrControlChar
	}
	body := [2]int{-1, -1} // where the body's string is, found at the first need
	inBody := func(i int) bool {
		if body[0] < 0 {
			body = [2]int{0, 0}
			// A view, not a copy: only the position is kept, and raw
			// does not change during the call.
			if b := gjson.Get(unsafe.String(unsafe.SliceData(raw), len(raw)), "body"); b.Type == gjson.String && b.Index > 0 {
				body = [2]int{b.Index, b.Index + len(b.Raw)}
			}
		}
		return i > body[0] && i < body[1]
	}
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 || i+j+1 >= len(raw) {
			return nil
		}
		i += j
		switch raw[i+1] {
		case 'u':
		case 'b', 'f':
			return ErrControlChar
		case 't', 'n', 'r':
			if !inBody(i) {
				return ErrControlChar
			}
			i += 2
			continue
		default:
			i += 2
			continue
		}
		r, ok := hex4(raw, i+2)
		if !ok {
			return nil
		}
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			if !inBody(i) {
				return ErrControlChar
			}
		case r < 0x20 || r == 0x7f:
			return ErrControlChar
		case r >= 0xDC00 && r <= 0xDFFF:
			return ErrLoneSurrogate
		case r >= 0xD800 && r <= 0xDBFF:
			if i+7 >= len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return ErrLoneSurrogate
			}
			if low, ok := hex4(raw, i+8); !ok || low < 0xDC00 || low > 0xDFFF {
				return ErrLoneSurrogate
			}
			i += 6
		}
		i += 6
	}
}

// hex4 reads the four hex digits at raw[i:].
func hex4(raw []byte, i int) (rune, bool) {
	if i+4 > len(raw) {
		return 0, false
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
