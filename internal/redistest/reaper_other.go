//go:build !linux

package redistest

import "os/exec"

// startCmd starts cmd. Outside Linux there is no parent-death signal: a
// test process that dies without running its cleanup leaves its servers
// running (Close and Main's stop still end them on a normal exit).
func startCmd(cmd *exec.Cmd) error { return cmd.Start() }
