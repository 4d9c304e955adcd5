//go:build !linux

package scale

import "syscall"

// procAttr: without Linux's parent-death signal, nodes are stopped only
// by the harness's own cleanup.
func procAttr() *syscall.SysProcAttr { return nil }
