package gateway

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/domain/conversation"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func validPhone(p string) bool { return e164.MatchString(p) }

type contactIn struct {
	Phone  string `json:"phone"`
	Email  string `json:"email"`
	Handle string `json:"handle"`
	Name   string `json:"name"`
}

// validateContact requires exactly one identifier, well formed.
func validateContact(c *contactIn) error {
	if c == nil {
		return errorf(codeInvalid, "contact is required")
	}
	n := 0
	for _, v := range []string{c.Phone, c.Email, c.Handle} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return errorf(codeInvalid, "contact needs exactly one of phone, email or handle")
	}
	switch {
	case c.Phone != "" && !validPhone(c.Phone):
		return errorf(codeInvalid, "contact.phone must be an E.164 number like +14155550100")
	case c.Email != "":
		if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
			return errorf(codeInvalid, "contact.email is not a valid address")
		}
	case c.Handle != "" && (len(c.Handle) > 128 || strings.TrimSpace(c.Handle) == ""):
		return errorf(codeInvalid, "contact.handle must be 1 to 128 characters")
	}
	if len(c.Name) > 200 || !utf8.ValidString(c.Name) {
		return errorf(codeInvalid, "contact.name must be at most 200 bytes of UTF-8")
	}
	return nil
}

func validateBody(body string) error {
	switch {
	case strings.TrimSpace(body) == "":
		return errorf(codeInvalid, "body must not be empty")
	case len(body) > conversation.MaxBodyBytes:
		return errorf(codeInvalid, "body is over 16 KiB")
	case !utf8.ValidString(body):
		return errorf(codeInvalid, "body must be UTF-8")
	}
	return nil
}

func validName(field, v string) error {
	if strings.TrimSpace(v) == "" || len(v) > 200 {
		return errorf(codeInvalid, "%s must be 1 to 200 characters", field)
	}
	return nil
}

func validKey(field, v string) error {
	if len(v) > 200 {
		return errorf(codeInvalid, "%s must be at most 200 characters", field)
	}
	return nil
}
