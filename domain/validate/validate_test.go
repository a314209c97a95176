package validate

import (
	"errors"
	"strings"
	"testing"
)

// badStrings are the API's (docs/api.md) bad input for every string field: what each rule
// must refuse whatever its length limit.
var badStrings = map[string]string{
	"NUL":             "a\x00b",
	"unit separator":  "a\x1fb",
	"escape":          "a\x1bb",
	"DEL":             "a\x7fb",
	"line feed":       "a\nb",
	"invalid UTF-8":   "a\xffb",
	"truncated UTF-8": "a\xe2\x82",
}

func TestEveryRuleRefusesBadStrings(t *testing.T) {
	rules := map[string]func(string, string) error{
		"Name": Name, "ContactName": ContactName, "Key": Key, "Handle": Handle, "ID": ID,
		"Email": Email, "URL": URL, "Tag": Tag, "Phone": Phone,
		"Text": func(f, v string) error { return Text(f, v, 1000) },
	}
	for rname, rule := range rules {
		for bname, bad := range badStrings {
			err := rule("field", bad)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s(%q) [%s]: %v, want ErrInvalid", rname, bad, bname, err)
			}
		}
	}
}

func TestRules(t *testing.T) {
	cases := []struct {
		name string
		err  error
		ok   bool
	}{
		{"name", Name("name", "Support"), true},
		{"name unicode 200 chars", Name("name", strings.Repeat("é", 200)), true},
		{"name 201 chars", Name("name", strings.Repeat("x", 201)), false},
		{"name blank", Name("name", "  "), false},
		{"name empty", Name("name", ""), false},
		{"contact name empty", ContactName("contact.name", ""), true},
		{"contact name 201", ContactName("contact.name", strings.Repeat("x", 201)), false},
		{"email", Email("email", "a@example.com"), true},
		{"email display name", Email("email", "A <a@example.com>"), false},
		{"email 254", Email("email", strings.Repeat("a", 64)+"@"+strings.Repeat("b", 185)+".com"), true},
		{"email 255", Email("email", strings.Repeat("a", 64)+"@"+strings.Repeat("b", 186)+".com"), false},
		{"email 9000", Email("email", strings.Repeat("a", 9000)+"@example.com"), false},
		{"key empty", Key("external_id", ""), true},
		{"key 128", Key("external_id", strings.Repeat("k", 128)), true},
		{"key 129", Key("external_id", strings.Repeat("k", 129)), false},
		{"handle 128", Handle("contact.handle", strings.Repeat("h", 128)), true},
		{"handle empty", Handle("contact.handle", ""), false},
		{"handle 129", Handle("contact.handle", strings.Repeat("h", 129)), false},
		{"id", ID("assignee_id", "ag_123"), true},
		{"id empty", ID("assignee_id", ""), false},
		{"id long", ID("assignee_id", strings.Repeat("a", 129)), false},
		{"phone", Phone("phone", "+14155550100"), true},
		{"phone no plus", Phone("phone", "14155550100"), false},
		{"phone letters", Phone("phone", "+1415555CALL"), false},
		{"url https", URL("recording_url", "https://rec.example.com/a.mp3"), true},
		{"url http", URL("recording_url", "http://rec.example.com/a.mp3"), true},
		{"url relative", URL("recording_url", "/a.mp3"), false},
		{"url ftp", URL("recording_url", "ftp://example.com/a"), false},
		{"url with a space", URL("recording_url", "https://rec.example.com/a b.mp3"), false},
		{"url no host", URL("recording_url", "https:///a"), false},
		{"url a port without a host", URL("recording_url", "http://:19203/a"), false},
		{"url a port without a host, https", URL("recording_url", "https://:443/"), false},
		{"url empty brackets", URL("recording_url", "https://[]:443/"), false},
		{"url host and port", URL("recording_url", "https://rec.example.com:8443/a"), true},
		{"url javascript", URL("recording_url", "javascript:alert(1)"), false},
		{"url 2048", URL("recording_url", "https://e.com/"+strings.Repeat("a", 2048-14)), true},
		{"url 2049", URL("recording_url", "https://e.com/"+strings.Repeat("a", 2049-14)), false},
		{"tag", Tag("tag", "vip"), true},
		{"tag 64 chars", Tag("tag", strings.Repeat("ü", 64)), true},
		{"tag 65 chars", Tag("tag", strings.Repeat("t", 65)), false},
		{"tag empty", Tag("tag", ""), false},
		{"tags", Tags("tags_add", []string{"a", "b"}), true},
		{"tags one bad", Tags("tags_add", []string{"a", "b\x1f"}), false},
		{"body", Body("body", "hello"), true},
		{"body with tab newline cr", Body("body", "line 1\r\n\tline 2"), true},
		{"body 16 KiB", Body("body", strings.Repeat("x", MaxBodyBytes)), true},
		{"body over 16 KiB", Body("body", strings.Repeat("x", MaxBodyBytes+1)), false},
		{"body empty", Body("body", ""), false},
		{"body blank", Body("body", " \n\t"), false},
		{"body NUL", Body("body", "hi\x00"), false},
		{"body vertical tab", Body("body", "hi\vthere"), false},
		{"body DEL", Body("body", "hi\x7f"), false},
		{"body invalid UTF-8", Body("body", "hi\xc3"), false},
		{"enum", OneOf("kind", "note", "message", "note"), true},
		{"enum unknown", OneOf("kind", "email", "message", "note"), false},
	}
	for _, c := range cases {
		if (c.err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, c.err, c.ok)
		}
		if c.err != nil && !errors.Is(c.err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", c.name, c.err)
		}
	}
}

func TestErrorNamesTheField(t *testing.T) {
	err := Key("contact.handle", "a\x00")
	var ve *Error
	if !errors.As(err, &ve) || ve.Field != "contact.handle" || !strings.HasPrefix(err.Error(), "contact.handle ") {
		t.Fatalf("error %v does not name its field", err)
	}
}
