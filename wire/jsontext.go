package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Decoding problems every JSON input shares, REST body or frame alike; each
// caller words its own error around them.
var (
	// ErrTrailingData: something other than white space follows the value.
	ErrTrailingData = errors.New("trailing data after the JSON value")
	// ErrLoneSurrogate: a \u escape names half of a UTF-16 surrogate pair.
	ErrLoneSurrogate = errors.New("a \\u escape names a lone UTF-16 surrogate (not valid Unicode)")
)

// DecodeOne decodes raw, exactly one JSON value, into v. Besides what
// encoding/json refuses, it refuses what encoding/json lets through
// silently: trailing data its decoder does not look at (a stray '}' or ']'
// ends More's view of the stream), and a lone surrogate escape, which
// encoding/json turns into U+FFFD. Invalid UTF-8 is the caller's check (it
// words it). io.EOF is returned as is for an empty input.
func DecodeOne(raw []byte, v any) error {
	if loneSurrogate(raw) {
		return ErrLoneSurrogate
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

// loneSurrogate reports whether JSON text escapes a UTF-16 surrogate
// (U+D800–U+DFFF) that is not a high one followed at once by a low one.
// Backslashes occur only inside strings in valid JSON, and an escaped
// backslash is skipped whole, so "\\ud800" (a backslash, then text) is not
// taken for an escape. Malformed escapes are left to the decoder.
func loneSurrogate(raw []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 || i+j+1 >= len(raw) {
			return false
		}
		i += j
		if raw[i+1] != 'u' {
			i += 2
			continue
		}
		r, ok := hex4(raw, i+2)
		if !ok {
			return false
		}
		i += 6
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if i+1 >= len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
				return true
			}
			if low, ok := hex4(raw, i+2); !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 6
		}
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
