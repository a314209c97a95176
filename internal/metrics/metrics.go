// Package metrics is the one place Switchboard's Prometheus metrics get their
// namespace and are registered, so that every package's names share one
// prefix (a bare appends_total would collide with other programs' metrics in
// a shared Prometheus) and registration behaves the same everywhere.
package metrics

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every Switchboard metric: set it as the Namespace of
// the collector's Opts, so the name on /metrics is switchboard_<Name>.
const Namespace = "switchboard"

// Register registers c on reg and returns it. When a collector with the same
// description is already registered — a second writer, indexer or engine in
// one process, as in tests — it returns that one instead, so both instances
// count into the same series. A nil reg leaves c unregistered (tests that do
// not look at metrics). Any other registration error is a programming error
// (two different metrics under one name) and panics, as MustRegister does.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("metrics: register: %v", err))
	}
	return c
}
