package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// NodeCPU is what the node's process spent over the measured window:
// process_cpu_seconds_total from its /metrics (the process collector reads
// /proc/self/stat, so user + system time of the node alone, PostgreSQL
// apart) before and after, against the writes acknowledged meanwhile.
type NodeCPU struct {
	CPUSeconds float64 `json:"cpu_s"`
	WindowS    float64 `json:"window_s"`
	Cores      float64 `json:"cores"`  // CPU seconds per second of window
	Writes     int64   `json:"writes"` // acknowledged writes (messages, call events, replies) in the window
	// USPerWrite is CPU µs per inbound write: every acknowledged REST write
	// is one command through the engine, with its fan-out.
	USPerWrite float64 `json:"us_per_write"`
	Profile    string  `json:"profile,omitempty"` // --profile: where the CPU profile was written
	// ToolCPUSeconds and ToolUSPerWrite are the load tool's own process
	// over the same window: on one machine it takes its share of the cores
	// the node and PostgreSQL use, so a run reports what it cost.
	ToolCPUSeconds float64 `json:"tool_cpu_s"`
	ToolUSPerWrite float64 `json:"tool_us_per_write"`
	Error          string  `json:"error,omitempty"`
}

// toolCPUSeconds is this process's user + system time so far.
func toolCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// cpuMetric is the Prometheus process collector's counter of CPU seconds.
const cpuMetric = "process_cpu_seconds_total"

// nodeCPUSeconds scrapes the node's /metrics for cpuMetric.
func (c *apiClient) nodeCPUSeconds(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: status %d", resp.StatusCode)
	}
	return parseCPUSeconds(io.LimitReader(resp.Body, maxBody))
}

// parseCPUSeconds finds cpuMetric's sample in the Prometheus text format.
func parseCPUSeconds(r io.Reader) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || name != cpuMetric {
			continue
		}
		// A sample line may end with a timestamp after the value.
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %s %q: %w", cpuMetric, value, err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read /metrics: %w", err)
	}
	return 0, fmt.Errorf("/metrics has no %s (the node's process collector is off or the OS has no /proc)", cpuMetric)
}

// captureProfile fetches the node's CPU profile over d from
// /debug/pprof/profile (admin token) and writes it to path.
func (c *apiClient) captureProfile(ctx context.Context, adminToken string, d time.Duration, path string) error {
	secs := max(int(math.Round(d.Seconds())), 1)
	// The server answers only after the profile's seconds.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", c.base, secs), nil)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("profile: GET /debug/pprof/profile: status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, maxBody)); err != nil {
		f.Close()
		return fmt.Errorf("--profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--profile %s: %w", path, err)
	}
	return nil
}

// measureNodeCPU samples the node's CPU seconds and the acknowledged writes
// at the start and at the end of the measured window, and with --profile
// captures the CPU profile over the same window. It returns when the
// window is over (or ctx ends).
func (r *runner) measureNodeCPU(ctx context.Context) *NodeCPU {
	out := &NodeCPU{Profile: r.cfg.ProfilePath}
	if err := (realClock{}).SleepUntil(ctx, r.measureStart); err != nil {
		out.Error = err.Error()
		return out
	}
	profDone := make(chan error, 1)
	if r.cfg.ProfilePath != "" {
		go func() {
			profDone <- r.api.captureProfile(ctx, r.cfg.AdminToken, r.cfg.Duration, r.cfg.ProfilePath)
		}()
	} else {
		profDone <- nil
	}
	cpu0, err0 := r.api.nodeCPUSeconds(ctx)
	w0, t0, tool0 := r.writes.Load(), time.Now(), toolCPUSeconds()
	sleepErr := (realClock{}).SleepUntil(ctx, r.end)
	cpu1, err1 := r.api.nodeCPUSeconds(ctx)
	w1, t1, tool1 := r.writes.Load(), time.Now(), toolCPUSeconds()
	// The tool's own figures need no scrape of the node.
	out.ToolCPUSeconds = roundMS(tool1 - tool0)
	if w := w1 - w0; w > 0 {
		out.ToolUSPerWrite = math.Round(1e6 * (tool1 - tool0) / float64(w))
	}
	errs := []error{err0, err1, sleepErr, <-profDone}
	if err := errors.Join(errs...); err != nil {
		out.Error = err.Error()
		if err0 != nil || err1 != nil || sleepErr != nil {
			return out
		}
	}
	out.CPUSeconds = roundMS(cpu1 - cpu0)
	out.WindowS = roundMS(t1.Sub(t0).Seconds())
	out.Writes = w1 - w0
	if out.WindowS > 0 {
		out.Cores = roundMS(out.CPUSeconds / out.WindowS)
	}
	if out.Writes > 0 {
		out.USPerWrite = math.Round(1e6 * (cpu1 - cpu0) / float64(out.Writes))
	}
	return out
}
