package conversation

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ContactKey is the stable identity of a contact within an inbox: its phone,
// else email (case-folded), else chat handle.
func ContactKey(c Contact) string {
	switch {
	case c.Phone != "":
		return "phone:" + c.Phone
	case c.Email != "":
		return "email:" + strings.ToLower(c.Email)
	default:
		return "handle:" + c.Handle
	}
}

// ID is the conversation id of (inbox, contact). It is derived rather than
// allocated so that the first two messages of a new contact, racing, reach
// the same virtual actor instead of creating two conversations.
func ID(inboxID, contactKey string) string {
	return "cv_" + digest(inboxID+"\x00"+contactKey)
}

// ContactID is the contact's id within an inbox, derived for the same reason.
func ContactID(inboxID, contactKey string) string {
	return "ct_" + digest(inboxID+"\x00"+contactKey)
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return idEncoding.EncodeToString(sum[:15])
}
