package main

import (
	"bufio"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not changed.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value that at least p% of the values
// are less than or equal to. It returns 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// cmdStat is one command's line of INFO commandstats.
type cmdStat struct {
	Calls int64 `json:"calls"`
	Usec  int64 `json:"usec"`
}

// parseCommandStats reads the reply of INFO commandstats: lines such as
//
//	cmdstat_lpush:calls=20000,usec=31234,usec_per_call=1.56,rejected_calls=0,failed_calls=0
//
// keyed by command name ("lpush", "client|id"). Other lines are skipped.
func parseCommandStats(info string) (map[string]cmdStat, error) {
	stats := map[string]cmdStat{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, fields, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		var st cmdStat
		var seen int
		for f := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			var dst *int64
			switch k {
			case "calls":
				dst = &st.Calls
			case "usec":
				dst = &st.Usec
			default:
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("commandstats: %s: %s=%q is not an integer", name, k, v)
			}
			*dst = n
			seen++
		}
		if seen != 2 {
			return nil, fmt.Errorf("commandstats: line %q lacks calls or usec", line)
		}
		stats[name] = st
	}
	return stats, sc.Err()
}

// statsDelta returns after − before per command, leaving out commands
// that were not called in between.
func statsDelta(before, after map[string]cmdStat) map[string]cmdStat {
	d := map[string]cmdStat{}
	for name, a := range after {
		b := before[name] // a CONFIG RESETSTAT in between would make this negative; then take after alone
		if a.Calls < b.Calls {
			b = cmdStat{}
		}
		if a.Calls > b.Calls {
			d[name] = cmdStat{Calls: a.Calls - b.Calls, Usec: a.Usec - b.Usec}
		}
	}
	return d
}

// scriptCommands run Lua. Redis counts the commands a script calls under
// their own names as well as inside the script's own usec.
var scriptCommands = []string{"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"}

// topLevelOnly are commands that no script of the runtime calls: blocking
// pops (a script may not block), connection and server commands. When
// scripts ran, they are the only non-script entries that clients sent.
var topLevelOnly = []string{
	"blmove", "brpop", "blpop", "brpoplpush", "blmpop", "bzpopmin", "bzpopmax", "bzmpop",
	"hello", "ping", "auth", "select", "info", "quit", "reset",
}

// serverUsec sums the server time of a commandstats delta without
// counting anything twice. Redis reports a command that a script calls
// both in the script's usec and in its own entry; so when the delta holds
// script calls, the entries of data commands are taken to be those calls
// and left out. That is exact for what storagebench runs: the runtime's
// at-least-once path sends no data command outside a script, and no run
// mixes it with another workload.
func serverUsec(delta map[string]cmdStat) int64 {
	scripts := false
	for _, s := range scriptCommands {
		if delta[s].Calls > 0 {
			scripts = true
		}
	}
	var sum int64
	for name, st := range delta {
		if scripts && !slices.Contains(scriptCommands, name) && !slices.Contains(topLevelOnly, name) &&
			!strings.HasPrefix(name, "client|") && !strings.HasPrefix(name, "script|") && !strings.HasPrefix(name, "config|") {
			continue
		}
		sum += st.Usec
	}
	return sum
}

// infoField returns the value of field in an INFO reply ("redis_version",
// "used_cpu_user"), or "".
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// parseRedisBenchmark reads redis-benchmark -q output: per test a line
// such as "LPUSH: 512820.53 requests per second, p50=1.215 msec", possibly
// after progress text ending in \r. It returns requests per second by test
// name.
func parseRedisBenchmark(out string) map[string]float64 {
	res := map[string]float64{}
	for line := range strings.FieldsFuncSeq(out, func(r rune) bool { return r == '\n' || r == '\r' }) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok || strings.Contains(name, " ") {
			continue
		}
		num, tail, ok := strings.Cut(rest, " ")
		if !ok || !strings.HasPrefix(tail, "requests per second") {
			continue
		}
		if v, err := strconv.ParseFloat(num, 64); err == nil {
			res[name] = v
		}
	}
	return res
}
