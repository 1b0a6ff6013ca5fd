package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"
)

// The asynq reference (-asynq): github.com/hibiken/asynq processing the
// consume workload's n payloads at concurrency c, run by the program in
// the nested module cmd/storagebench/asynqref, so that asynq is never a
// dependency of storagegen's own module. storagebench builds it once
// (the go command fetches asynq through the module proxy the first time)
// and runs it once per round after the consume workload's rounds, against
// the same server with the same n, c and payload; its row gives asynq's
// items/s and typed Consume ÷ asynq, round by round.

// asynqResult is the reference's figures over the rounds.
type asynqResult struct {
	Name              string       `json:"name"`
	Command           string       `json:"command"` // as run, without the server's URL (passed in $REDIS_URL)
	Version           string       `json:"asynq_version"`
	Items             int          `json:"items"`
	Concurrency       int          `json:"concurrency"`
	OpsPerSec         float64      `json:"items_per_sec"` // median over rounds
	ServerUsecPerItem float64      `json:"server_usec_per_item"`
	Ratios            []float64    `json:"consume_ratios"` // typed Consume ÷ asynq items/s, per round
	Ratio             float64      `json:"consume_ratio"`  // their median
	Rounds            []asynqRound `json:"rounds"`
}

// asynqRound is one run of the reference: its JSON line, and the server's
// time from storagebench's INFO commandstats around the whole run
// (enqueue to done, as the typed Consume's counts push to ack, plus the
// reference's cleaning and polling).
type asynqRound struct {
	Items          int                `json:"items"`
	Seconds        float64            `json:"seconds"` // server start to the n-th task marked done
	ItemsPerSec    float64            `json:"items_per_sec"`
	HandlerSeconds float64            `json:"handler_seconds"` // server start to the n-th handler's return
	EnqueueSeconds float64            `json:"enqueue_seconds"` // not in Seconds
	Concurrency    int                `json:"concurrency"`
	Version        string             `json:"asynq_version"`
	ServerUsec     int64              `json:"server_usec"`
	CommandStat    map[string]cmdStat `json:"commandstats,omitempty"`
}

func asynqName(n, c int) string {
	return fmt.Sprintf("asynq (reference): processing %d tasks, concurrency %d", n, c)
}

// parseAsynqLine reads the reference's stdout: its last non-empty line is
// one JSON object, which must report n items at concurrency c, a positive
// time, and items/s that agree with them.
func parseAsynqLine(out []byte, n, c int) (asynqRound, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	var r asynqRound
	if last == "" {
		return r, errors.New("no result line on stdout")
	}
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		return r, fmt.Errorf("result line: %v", err)
	}
	switch {
	case r.Items != n:
		return r, fmt.Errorf("result line: %d items, want %d", r.Items, n)
	case r.Concurrency != c:
		return r, fmt.Errorf("result line: concurrency %d, want %d", r.Concurrency, c)
	case !(r.Seconds > 0) || !(r.HandlerSeconds > 0) || r.HandlerSeconds > r.Seconds:
		return r, fmt.Errorf("result line: seconds %v, handler seconds %v: want 0 < handler ≤ seconds", r.Seconds, r.HandlerSeconds)
	case math.Abs(r.ItemsPerSec*r.Seconds-float64(n)) > 0.01*float64(n):
		return r, fmt.Errorf("result line: %v items/s over %v s is not %d items", r.ItemsPerSec, r.Seconds, n)
	}
	return r, nil
}

// finish computes the medians and the per-round ratios against the typed
// Consume's rounds (round r of one against round r of the other).
func (a *asynqResult) finish(consume *workloadResult) {
	var ops, srv []float64
	a.Ratios = a.Ratios[:0]
	for i, r := range a.Rounds {
		ops = append(ops, r.ItemsPerSec)
		srv = append(srv, float64(r.ServerUsec)/float64(r.Items))
		if i < len(consume.Typed.Rounds) {
			a.Ratios = append(a.Ratios, consume.Typed.Rounds[i].opsPerSec()/r.ItemsPerSec)
		}
	}
	a.OpsPerSec, a.ServerUsecPerItem, a.Ratio = median(ops), median(srv), median(a.Ratios)
	if len(a.Rounds) > 0 {
		a.Version = a.Rounds[0].Version
	}
}

// asynqRow is the reference's table row: the typed Consume's items/s, in
// the plain column asynq's, then typed Consume ÷ asynq and the server's
// time per item of each.
func asynqRow(a *asynqResult, consume *workloadResult) string {
	return fmt.Sprintf("| %s\t| %s\t| %s\t| %.2f\t| —\t| —\t| %.2f / %.2f\t|\n",
		a.Name, rate(consume.Typed.OpsPerSec), rate(a.OpsPerSec), a.Ratio,
		consume.Typed.ServerUsecPerItem, a.ServerUsecPerItem)
}

// asynqNote explains the row under the table.
func asynqNote(a *asynqResult) string {
	return fmt.Sprintf("asynq %s (reference row): the \"plain\" column is asynq's items/s and the ratio typed Consume ÷ asynq, both timed until the last item is acked (asynq: marked done); `%s`\n",
		a.Version, a.Command)
}

// runAsynq builds the reference and runs it once per round.
func runAsynq(ctx context.Context, e *env, consume *workloadResult, prog *progress) (*asynqResult, error) {
	cfg := e.cfg
	dir, err := asynqRefDir()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "storagebench-asynq-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "asynqref")
	payload := filepath.Join(tmp, "payload.json")
	if err := os.WriteFile(payload, mustEncode(e.item(0)), 0o600); err != nil {
		return nil, err
	}

	prog.show("asynq reference: go build (fetches asynq through the module proxy the first time)")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(bctx, "go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build in %s: %v\n%s", dir, err, bytes.TrimSpace(out))
	}

	args := []string{"-n", strconv.Itoa(cfg.n), "-c", strconv.Itoa(cfg.c), "-payload", payload, "-timeout", cfg.timeout.String()}
	a := &asynqResult{
		Name: asynqName(cfg.n, cfg.c), Items: cfg.n, Concurrency: cfg.c,
		Command: "cd cmd/storagebench/asynqref && go run . " + strings.Replace(strings.Join(args, " "), payload, "PAYLOAD-FILE", 1) + " (server in $REDIS_URL)",
	}
	for r := range cfg.rounds {
		prog.show("asynq reference: round %d/%d", r+1, cfg.rounds)
		round, err := runAsynqOnce(ctx, e, bin, args, prog)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", r+1, err)
		}
		a.Rounds = append(a.Rounds, round)
	}
	a.finish(consume)
	return a, nil
}

func runAsynqOnce(ctx context.Context, e *env, bin string, args []string, prog *progress) (asynqRound, error) {
	if err := e.clear(ctx); err != nil {
		return asynqRound{}, err
	}
	before, _, _, err := e.serverStats(ctx)
	if err != nil {
		return asynqRound{}, err
	}
	// The reference has its own -timeout for its work; this one also
	// bounds its start and its shutdown.
	rctx, cancel := context.WithTimeout(ctx, e.cfg.timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, bin, args...)
	cmd.Env = append(os.Environ(), "REDIS_URL="+e.cfg.url) // not in argv: it may hold a password
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if stderr.Len() > 0 && runErr == nil {
		prog.done()
		io.Copy(prog.w, &stderr) // asynq's warnings
	}
	if runErr != nil {
		return asynqRound{}, fmt.Errorf("%v: %s", runErr, bytes.TrimSpace(stderr.Bytes()))
	}
	round, err := parseAsynqLine(stdout.Bytes(), e.cfg.n, e.cfg.c)
	if err != nil {
		return round, err
	}
	after, _, _, err := e.serverStats(ctx)
	if err != nil {
		return round, err
	}
	round.CommandStat = statsDelta(before, after)
	round.ServerUsec = serverUsec(round.CommandStat)
	return round, nil
}

// asynqRefDir finds the nested module: beside this file when storagebench
// runs from its source (go run), else under the main module's root that
// the go command reports for the working directory.
func asynqRefDir() (string, error) {
	var tried []string
	if _, file, _, ok := goruntime.Caller(0); ok && filepath.IsAbs(file) {
		d := filepath.Join(filepath.Dir(file), "asynqref")
		if isModule(d) {
			return d, nil
		}
		tried = append(tried, d)
	}
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			d := filepath.Join(filepath.Dir(gomod), "cmd", "storagebench", "asynqref")
			if isModule(d) {
				return d, nil
			}
			tried = append(tried, d)
		}
	}
	return "", fmt.Errorf("cannot find the module cmd/storagebench/asynqref (tried %s): run storagebench from storagegen's repository", strings.Join(tried, ", "))
}

func isModule(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil && st.Mode().IsRegular()
}
