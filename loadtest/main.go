package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Main is `switchboard loadtest`: it parses args (without the subcommand
// name), runs the scenario with a progress line a second on stderr, prints
// the summary on stdout, writes --json, and returns the exit status: 0 pass,
// 1 failed (a correctness counter not zero, a figure missing, a threshold
// missed, or the run could not be carried out), 2 usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "switchboard loadtest: %v\n", ue.err)
		fmt.Fprintln(stderr, "run 'switchboard loadtest -h' for the flags")
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchboard loadtest: %v\n", err)
		return 2
	}

	rep, err := Run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard loadtest: %v\n", err)
		return 1
	}
	code := 0
	if cfg.JSONPath != "" {
		if err := writeJSONFile(rep, cfg.JSONPath, stdout); err != nil {
			fmt.Fprintf(stderr, "switchboard loadtest: %v\n", err)
			code = 1
		}
	}
	out := stdout
	if cfg.JSONPath == "-" {
		// Keep stdout pure JSON for scripts.
		out = stderr
	}
	if err := rep.WriteSummary(out); err != nil {
		fmt.Fprintf(stderr, "switchboard loadtest: write summary: %v\n", err)
		code = 1
	}
	if !rep.OK {
		code = 1
	}
	return code
}

func writeJSONFile(rep *Report, path string, stdout io.Writer) error {
	if path == "-" {
		return rep.WriteJSON(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("--json %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--json %s: %w", path, err)
	}
	return nil
}
