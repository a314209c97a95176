package webhooks

import (
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// errWebhookGone: the webhook was deleted; its deliveries went with it.
var errWebhookGone = errors.New("webhooks: webhook deleted")

// checkAsk is a lane's read of its webhook right before an attempt.
type checkAsk struct {
	webhook string
	answer  chan checkAnswer // capacity 1
}

type checkAnswer struct {
	url    string
	sealed []byte
	err    error
}

// check reads j's webhook right before its attempt, so that no attempt
// starts after the webhook's delete was answered. The reads of all lanes
// that ask meanwhile are one statement: one query per attempt cost a
// round trip of a busy pool per delivery and capped the lanes' pace.
func (d *Deliverer) check(r *run, j *job) error {
	a := checkAsk{webhook: j.webhook, answer: make(chan checkAnswer, 1)}
	select {
	case r.checks <- a:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	select {
	case ans := <-a.answer:
		if ans.err != nil {
			return ans.err
		}
		j.url, j.sealed = ans.url, ans.sealed
		return nil
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

// checkLoop answers the asks: every ask waiting when a read starts is
// answered by that read, which starts after the ask was made.
func (d *Deliverer) checkLoop(r *run) {
	for {
		var asks []checkAsk
		select {
		case <-r.ctx.Done():
			return
		case a := <-r.checks:
			asks = append(asks, a)
		}
	more:
		for {
			select {
			case a := <-r.checks:
				asks = append(asks, a)
			default:
				break more
			}
		}
		ids := make([]string, len(asks))
		for i, a := range asks {
			ids[i] = a.webhook
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		eps, err := d.readWebhooks(r, ids)
		for _, a := range asks {
			ans := checkAnswer{err: err}
			if err == nil {
				if ep, ok := eps[a.webhook]; ok {
					ans.url, ans.sealed = ep.url, ep.sealed
				} else {
					ans.err = errWebhookGone
				}
			}
			a.answer <- ans
		}
	}
}

type endpoint struct {
	url    string
	sealed []byte
}

func (d *Deliverer) readWebhooks(r *run, ids []string) (map[string]endpoint, error) {
	rows, err := d.pool.Query(r.ctx, endpointsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	eps := map[string]endpoint{}
	var id string
	var ep endpoint
	if _, err := pgx.ForEachRow(rows, []any{&id, &ep.url, &ep.sealed}, func() error { eps[id] = ep; return nil }); err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	return eps, nil
}
