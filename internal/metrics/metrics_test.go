package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newCounter() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "things_total", Help: "Things."})
}

func TestRegisterNamespacesAndShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := Register(reg, newCounter())
	second := Register(reg, newCounter())
	if first != second {
		t.Fatal("a second registration of the same metric returned a new collector; want the registered one")
	}
	second.Add(2)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP switchboard_things_total Things.
# TYPE switchboard_things_total counter
switchboard_things_total 2
`), "switchboard_things_total"); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterNilRegistry(t *testing.T) {
	c := newCounter()
	if got := Register(nil, c); got != c {
		t.Fatal("nil registry: want the collector back unregistered")
	}
}

func TestRegisterConflictPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	Register(reg, newCounter())
	defer func() {
		if recover() == nil {
			t.Fatal("a different metric under a registered name did not panic")
		}
	}()
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "things_total", Help: "Other."}))
}
