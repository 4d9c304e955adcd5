package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/ordo-broker/ordo/broker"
)

// listenNode opens the node's listeners, before broker.New opens (and
// locks) the data directory: a port in use then fails at once, with
// nothing on disk touched, rather than after recovering the log. plain
// is nil with tls_only, secure without tls_port. cfg.Port becomes the
// port chosen for --port 0.
func listenNode(cfg *broker.Config) (plain, secure net.Listener, err error) {
	if !cfg.TLS.Only {
		addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
		if plain, err = net.Listen("tcp", addr); err != nil {
			return nil, nil, fmt.Errorf("cannot serve on %s: %v", addr, err)
		}
		cfg.Port = plain.Addr().(*net.TCPAddr).Port
	}
	if cfg.TLS.Port != 0 {
		addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.TLS.Port))
		if secure, err = net.Listen("tcp", addr); err != nil {
			if plain != nil {
				plain.Close()
			}
			return nil, nil, fmt.Errorf("cannot serve TLS on %s: %v", addr, err)
		}
	}
	return plain, secure, nil
}

// closeListeners closes what listenNode opened (a node that failed to
// start).
func closeListeners(lns ...net.Listener) {
	for _, ln := range lns {
		if ln != nil {
			ln.Close()
		}
	}
}
