package main

import (
	"bufio"
	"net"
	"syscall"
	"time"
)

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
	sigTerm = syscall.SIGTERM
)

func dialQuiet(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
