package loadtest

import (
	"strings"
	"testing"
)

func TestParseCPUSeconds(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.34
process_cpu_seconds_total_other 99
`
	v, err := parseCPUSeconds(strings.NewReader(text))
	if err != nil || v != 12.34 {
		t.Fatalf("got %v, %v; want 12.34", v, err)
	}
	v, err = parseCPUSeconds(strings.NewReader("process_cpu_seconds_total 7 1700000000000\n"))
	if err != nil || v != 7 {
		t.Fatalf("with a timestamp: got %v, %v; want 7", v, err)
	}
	if _, err := parseCPUSeconds(strings.NewReader("go_goroutines 5\n")); err == nil {
		t.Fatal("no error for /metrics without the counter")
	}
	if _, err := parseCPUSeconds(strings.NewReader("process_cpu_seconds_total x\n")); err == nil {
		t.Fatal("no error for a value that is not a number")
	}
}
