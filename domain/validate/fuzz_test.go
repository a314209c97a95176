package validate

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzRules: whatever a rule accepts is valid UTF-8 without control
// characters (bar tab, LF and CR in a body) and within its length; whatever
// it refuses is refused as ErrInvalid, never by a panic.
func FuzzRules(f *testing.F) {
	for _, s := range []string{"", "hi", "a\x00b", "a\x1fb", "\x7f", "\xff", "line\r\n\tnext", "+14155550100",
		"a@example.com", "https://e.com/x", "é", " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(name string, err error, max int, inBody bool) {
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s(%q): %v does not wrap ErrInvalid", name, s, err)
				}
				return
			}
			if !utf8.ValidString(s) {
				t.Fatalf("%s accepted invalid UTF-8 %q", name, s)
			}
			for _, r := range s {
				if (r < 0x20 || r == 0x7f) && !(inBody && (r == '\t' || r == '\n' || r == '\r')) {
					t.Fatalf("%s accepted control character U+%04X in %q", name, r, s)
				}
			}
			if inBody && len(s) > max || !inBody && utf8.RuneCountInString(s) > max {
				t.Fatalf("%s accepted %d bytes / %d characters, limit %d", name, len(s), utf8.RuneCountInString(s), max)
			}
		}
		check("Name", Name("f", s), MaxName, false)
		check("ContactName", ContactName("f", s), MaxName, false)
		check("Key", Key("f", s), MaxKey, false)
		check("Handle", Handle("f", s), MaxKey, false)
		check("ID", ID("f", s), MaxID, false)
		check("Email", Email("f", s), MaxEmail, false)
		check("URL", URL("f", s), MaxURL, false)
		check("Tag", Tag("f", s), MaxTag, false)
		check("Phone", Phone("f", s), 16, false)
		check("Body", Body("f", s), MaxBodyBytes, true)
	})
}
