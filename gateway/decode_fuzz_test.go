package gateway

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzRESTBodies: every REST body decoder with its validation either
// refuses a body with invalid_argument or accepts values that encode to
// JSON PostgreSQL takes; it never panics.
func FuzzRESTBodies(f *testing.F) {
	for _, s := range []string{
		`{"contact":{"phone":"+14155550100"},"body":"hi"}`,
		`{"contact":{"handle":"v\u0000"},"body":"hi"}`,
		`{"contact":{"email":"a@example.com","name":"A\u001fB"},"body":"x","channel":"chat","external_id":"e"}`,
		`{"contact":{"phone":"+14155550100"},"call_id":"c1","state":"ringing","recording_url":"https://r.example.com/1"}`,
		`{"body":"hi\u0000","kind":"note","client_id":"c"}`,
		`{"status":"closed","assignee_id":null,"tags_add":["vip"],"tags_remove":["\u007f"]}`,
		"{\"body\":\"\xff\"}",
		`{"body":"a"} {"body":"b"}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ins := []interface{ validate() error }{&inboundIn{}, &callIn{}, &replyIn{}, &updateValidator{}}
		for _, in := range ins {
			err := decodeJSON(raw, in)
			if err == nil {
				err = in.validate()
			}
			if err != nil {
				if ae := asAPIError(err); ae.Code != codeInvalid {
					t.Fatalf("%T: %v answered %s, want invalid_argument", in, err, ae.Code)
				}
				continue
			}
			enc, err := json.Marshal(in)
			if err != nil {
				t.Fatalf("%T: re-encode: %v", in, err)
			}
			if bytes.Contains(enc, []byte(`\u0000`)) || !utf8.Valid(enc) {
				t.Fatalf("%T accepted %q, which PostgreSQL would refuse: %s", in, raw, enc)
			}
		}
	})
}

// updateValidator gives updateIn the validate method the other bodies have.
type updateValidator struct{ updateIn }

func (u *updateValidator) validate() error {
	_, err := u.toCommand()
	return err
}
