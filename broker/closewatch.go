package broker

import (
	"errors"
	"net"

	"syscall"
	"time"
)

// watchClose reports, on the returned channel, that the peer closed conn
// while the client's command goroutine is busy blocking (XREAD BLOCK) and
// therefore not reading. It peeks at the socket without consuming data, so
// commands pipelined behind the blocking one are left for the command loop.
// Call the returned stop function before reading from conn again.
func watchClose(conn net.Conn) (closed <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	if cc, ok := conn.(*clientConn); ok {
		conn = cc.Conn
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return ch, func() {}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return ch, func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf [1]byte
		err := rc.Read(func(fd uintptr) bool {
			n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if errors.Is(err, syscall.EAGAIN) {
				return false // nothing yet: wait until readable
			}
			if err != nil || n == 0 {
				close(ch) // orderly shutdown or reset by the peer
			}
			return true // data is waiting (a pipelined command) or it closed
		})
		_ = err
	}()
	return ch, func() {
		// Wake the watcher (a past deadline makes its wait return), wait for
		// it, then clear the deadline for the command loop.
		conn.SetReadDeadline(time.Unix(1, 0))
		<-done
		conn.SetReadDeadline(time.Time{})
	}
}
