package redistest

import (
	"os/exec"
	"runtime"
	"syscall"
)

// A redis-server must not outlive the test process that started it: a test
// that panics, or a goroutine's panic, ends the process before any cleanup
// runs. On Linux each server gets a parent-death signal (SIGKILL). The
// kernel sends it when the thread that forked the server exits, not the
// process, and the Go runtime ends a thread whose goroutine locked it and
// returned; so every server is started from one goroutine that locks its
// thread and never returns, and that thread lives as long as the process.

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

var starts = make(chan startReq)

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: this thread is the servers' parent
		for r := range starts {
			r.done <- r.cmd.Start()
		}
	}()
}

// startCmd starts cmd so that it is killed when this process ends.
func startCmd(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	starts <- startReq{cmd, done}
	return <-done
}
