package conversation

import "strings"

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

var optOutWords = map[string]bool{
	"STOP": true, "STOPALL": true, "UNSUBSCRIBE": true, "CANCEL": true,
	"END": true, "QUIT": true, "REVOKE": true, "OPTOUT": true,
}

var optInWords = map[string]bool{"START": true, "UNSTOP": true, "YES": true}

// ConsentKeyword reports whether an inbound message changes the contact's
// SMS consent, and to what (true: opted out). Only the sms channel counts,
// and only a body that is exactly a keyword once trimmed and case-folded.
func ConsentKeyword(ch Channel, body string) (optedOut, ok bool) {
	if ch != ChannelSMS {
		return false, false
	}
	w := strings.ToUpper(strings.TrimSpace(body))
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
