package loadtest

import "testing"

// Under overload the real server retries a command internally (a cluster
// try times out while the command waits in a busy conversation's mailbox)
// and answers the retry from its replay: the right message, answered as
// new, beside the conversation's summary as it is by then, past the
// message's own version. That is no duplicate; counting the summary's
// version as the write's made two writes claim one version.
func TestAnswerWithLaterSummaryIsNotADuplicate(t *testing.T) {
	s := newFakeServer(t, fakeFaults{answerAhead: true})
	cfg := quickConfig(s)
	// Few conversations, so most answers wait for another write of theirs.
	cfg.Inboxes, cfg.Contacts = 1, 2
	cfg.CallShare, cfg.ReplyShare, cfg.ResendShare = 0.3, 0, 0.1
	cfg.SearchSample = 0
	rep := runOK(t, cfg)
	c := rep.Counters
	if c.SummaryAhead == 0 {
		t.Fatalf("no answer carried a later summary; the fault was not exercised: %+v", c)
	}
	if c.Duplicates != 0 || c.LostUpdates != 0 || c.Errors != 0 {
		t.Errorf("counters = %+v, want no duplicates, lost updates or errors", c)
	}
	if err := rep.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// A write applied by the server whose answer the tool never sees (timeout,
// dropped connection) is retried with the same external_id or client_id
// and answered 200 with the original: correct server behaviour, reported as
// retries_answered_duplicate, never as a duplicate or an error.
func TestRetryOfUnseenWriteIsNotADuplicate(t *testing.T) {
	s := newFakeServer(t, fakeFaults{lostFirstAnswer: true})
	cfg := quickConfig(s)
	cfg.Rate = 100
	cfg.CallShare, cfg.ReplyShare, cfg.ResendShare = 0, 0.3, 0.2
	cfg.SearchSample = 0
	rep := runOK(t, cfg)
	c := rep.Counters
	writes := rep.Throughput.Messages + rep.Throughput.Replies
	if writes == 0 || c.RetriesAnsweredDuplicate != writes {
		t.Errorf("retries answered duplicate = %d, want one per message and reply (%d)", c.RetriesAnsweredDuplicate, writes)
	}
	if c.Duplicates != 0 || c.LostUpdates != 0 || c.Errors != 0 {
		t.Errorf("counters = %+v, want no duplicates, lost updates or errors", c)
	}
	if err := rep.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if rep.Throughput.Resends == 0 {
		t.Error("no re-send exercised")
	}
}
