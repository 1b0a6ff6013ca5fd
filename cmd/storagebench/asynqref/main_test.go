package main

import (
	"bytes"
	"strings"
	"testing"
)

// This module is outside storagegen's own (CI does not fetch asynq);
// run its tests with: cd cmd/storagebench/asynqref && go test .

func TestLoopbackOnly(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1:6379", "127.8.9.10:6379", "[::1]:6379", "localhost:6379",
		"redis://127.0.0.1:6379/2", "redis://user:secret@[::1]:6380", "rediss://localhost:6379",
	} {
		if _, err := loopbackOptions(s); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
	for _, s := range []string{
		"10.0.0.1:6379", "192.168.1.2:6379", "[::2]:6379", "0.0.0.0:6379", "[::]:6379",
		"example.com:6379", "redis://10.1.2.3:6379", "redis://user:secret@8.8.8.8:6379",
		"unix:///tmp/redis.sock", "127.0.0.1", "redis://127.0.0.1.example.com:6379",
	} {
		o, err := loopbackOptions(s)
		if err == nil {
			t.Errorf("%q accepted (dialling %s)", s, o.Addr)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the password: %v", s, err)
		}
	}
	o, err := loopbackOptions("localhost:6379")
	if err != nil || (!strings.HasPrefix(o.Addr, "127.") && o.Addr != "[::1]:6379") {
		t.Errorf("localhost dials %v (err %v), want the loopback address it was checked as", o, err)
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	for _, args := range [][]string{
		{}, {"-redis", "10.0.0.1:6379"}, {"-redis", "127.0.0.1:1", "-n", "0"},
		{"-redis", "127.0.0.1:1", "-c", "0"}, {"-redis", "127.0.0.1:1", "-timeout", "0s"},
		{"-redis", "127.0.0.1:1", "extra"}, {"-bogus"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, strings.NewReader(`{"run_id":"r"}`), &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2; stderr: %s", args, code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote to stdout: %s", args, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-redis", "127.0.0.1:1"}, strings.NewReader(`{"seq":"not a number SECRETPAYLOAD"}`), &stdout, &stderr); code != 2 {
		t.Errorf("a payload of another shape: exit %d, want 2", code)
	}
	if strings.Contains(stderr.String(), "SECRETPAYLOAD") {
		t.Errorf("the error shows the payload: %s", stderr.String())
	}
}
