//go:build !linux

package runtime

import "syscall"

// childProcAttr is nil where there is no Pdeathsig: a consumer of an
// interrupted crash test ends by itself within two minutes.
func childProcAttr() *syscall.SysProcAttr { return nil }
