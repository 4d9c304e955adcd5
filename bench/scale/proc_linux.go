package scale

import "syscall"

// procAttr makes the kernel kill a node if the harness dies (even by
// kill -9), so an interrupted run leaves no broker processes behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
