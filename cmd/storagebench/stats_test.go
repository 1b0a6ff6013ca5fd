package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1}, 2},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, 1, 9}, 1},
	} {
		in := append([]float64(nil), tc.in...)
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !cmp.Equal(in, tc.in) {
			t.Errorf("median changed its input to %v", tc.in)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2, 3), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{hundred, 50, 50 * time.Millisecond},
		{hundred, 99, 99 * time.Millisecond},
		{hundred, 100, 100 * time.Millisecond},
		{append(hundred, 1000*time.Millisecond), 99, 100 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tc.in), tc.p, got, tc.want)
		}
	}
}

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_lpush:calls=20000,usec=31234,usec_per_call=1.56,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|id:calls=64,usec=40,usec_per_call=0.62,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_evalsha:calls=3,usec=90,usec_per_call=30.00,rejected_calls=1,failed_calls=0\r\n" +
		"\r\n# CPU\r\nused_cpu_sys:1.234567\r\n"
	got, err := parseCommandStats(info)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]cmdStat{"lpush": {20000, 31234}, "client|id": {64, 40}, "evalsha": {3, 90}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseCommandStats (-want +got):\n%s", diff)
	}
	if v := infoField(info, "used_cpu_sys"); v != "1.234567" {
		t.Errorf("infoField = %q", v)
	}
	for _, bad := range []string{
		"cmdstat_get:calls=x,usec=1",
		"cmdstat_get:calls=1",
	} {
		if _, err := parseCommandStats(bad); err == nil {
			t.Errorf("parseCommandStats(%q): no error", bad)
		}
	}
}

func TestServerUsec(t *testing.T) {
	before := map[string]cmdStat{"lpush": {10, 100}, "info": {2, 50}}
	plain := map[string]cmdStat{"lpush": {110, 300}, "brpop": {100, 150}, "info": {2, 50}}
	d := statsDelta(before, plain)
	if diff := cmp.Diff(map[string]cmdStat{"lpush": {100, 200}, "brpop": {100, 150}}, d); diff != "" {
		t.Errorf("statsDelta (-want +got):\n%s", diff)
	}
	if got := serverUsec(d); got != 350 {
		t.Errorf("serverUsec without scripts = %d, want 350", got)
	}
	// A script's own usec holds the calls it made; their entries are not
	// counted again.
	scripted := map[string]cmdStat{
		"evalsha": {200, 5000}, "hset": {200, 400}, "lpush": {100, 100}, "zadd": {100, 200},
		"blmove": {5, 20}, "client|unblock": {3, 6},
	}
	if got := serverUsec(scripted); got != 5026 {
		t.Errorf("serverUsec with scripts = %d, want 5026", got)
	}
	// A reset in between: the later figures are taken alone.
	if d := statsDelta(map[string]cmdStat{"get": {50, 500}}, map[string]cmdStat{"get": {5, 20}}); d["get"] != (cmdStat{5, 20}) {
		t.Errorf("statsDelta after a reset = %v", d)
	}
}

func TestParseRedisBenchmark(t *testing.T) {
	out := "\rSET: rps=0.0 (overall: 0.0) avg_msec=-nan (overall: -nan)\r          \r" +
		"SET: 909090.94 requests per second, p50=0.735 msec\n" +
		"\rGET: 1000000.00 requests per second, p50=0.535 msec\n" +
		"\rLPUSH: 833333.31 requests per second, p50=1.023 msec\n\n"
	want := map[string]float64{"SET": 909090.94, "GET": 1000000, "LPUSH": 833333.31}
	if diff := cmp.Diff(want, parseRedisBenchmark(out)); diff != "" {
		t.Errorf("parseRedisBenchmark (-want +got):\n%s", diff)
	}
}
