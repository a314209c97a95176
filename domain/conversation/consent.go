package conversation

import (
	"strings"

	"golang.org/x/text/cases"
)

// SMS consent (opt-out): carriers require that a contact who texts STOP
// receives no further messages until they text START. The keywords are the
// industry's standard set.

// ErrOptedOut: a reply of kind message to a contact who opted out of SMS.
// The gateway answers it with 409 conflict and this message, written for the
// agent who tried to send.
type ErrOptedOut struct{}

func (ErrOptedOut) Error() string {
	return "the contact opted out of text messages (they replied STOP); they must text START before you can message them again — internal notes still work"
}

// The keywords, case-folded.
var optOutWords = map[string]bool{
	"stop": true, "stopall": true, "unsubscribe": true, "cancel": true,
	"end": true, "quit": true, "revoke": true, "optout": true,
}

var optInWords = map[string]bool{"start": true, "unstop": true, "yes": true}

// maxKeywordBytes bounds what is folded: no keyword, however it is spelled
// in other cases or ligatures, takes more. An ASCII body is a keyword only
// at a keyword's length ("unsubscribe" is the longest).
const (
	maxKeywordBytes      = 48
	maxASCIIKeywordBytes = len("unsubscribe")
)

// ConsentKeyword reports whether an inbound message changes the contact's
// SMS consent, and to what (true: opted out). Only the sms channel counts,
// and only a body that is exactly a keyword once trimmed and case-folded.
func ConsentKeyword(ch Channel, body string) (optedOut, ok bool) {
	if ch != ChannelSMS {
		return false, false
	}
	w := strings.TrimSpace(body)
	if ascii(w) {
		// Folding ASCII is lower-casing: no folder, no allocation for
		// the common message, which is no keyword.
		if len(w) > maxASCIIKeywordBytes {
			return false, false
		}
		w = strings.ToLower(w)
	} else {
		if len(w) > maxKeywordBytes {
			return false, false
		}
		// Unicode full case folding, as the contract says: "ﬆop" is
		// stop, but the dotless "quıt" is not quit (upper-casing would
		// make it QUIT).
		w = cases.Fold().String(w)
	}
	switch {
	case optOutWords[w]:
		return true, true
	case optInWords[w]:
		return false, true
	}
	return false, false
}

// applyConsent records a consent keyword of an inbound message on the
// summary's contact. It derives from the event alone, so replaying the
// journal rebuilds the same consent.
func applyConsent(sum *Summary, it *Item) {
	if out, ok := ConsentKeyword(it.Channel, it.Body); ok {
		sum.Contact.OptedOut = out
	}
}

// checkConsent refuses a reply of kind message to a contact who opted out.
func checkConsent(s *State, kind ItemKind) error {
	if kind == KindMessage && s.Summary.Contact.OptedOut {
		return ErrOptedOut{}
	}
	return nil
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
