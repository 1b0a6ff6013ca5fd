package runtime

import "syscall"

// childProcAttr makes a crash-test consumer die with the test binary, so a
// failed or interrupted test never leaves consumers running. Pdeathsig
// exists only on Linux.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
