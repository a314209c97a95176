package indexer

import (
	"math/rand/v2"
	"time"
)

// backoff is exponential with "equal jitter": each wait is between half and
// all of min·2ⁿ (capped at max), so retries from many failures spread out
// yet still grow.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 30)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.n++
	half := d / 2
	return half + rand.N(d-half+1)
}

func (b *backoff) reset() { b.n = 0 }
