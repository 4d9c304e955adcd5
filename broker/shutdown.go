package broker

import (
	"time"

	"github.com/ordo-broker/ordo/broker/logging"
)

// shuttingDownError answers work a draining node refuses: a PUBLISH (never
// sequenced, so sending it to another member cannot duplicate it) and any
// command of a connection opened after the shutdown began.
// clients.NotDelivered recognises the text.
const shuttingDownError = "TRYAGAIN node is shutting down: not sequenced, send it to another member"

// clientFlushGrace bounds how long a graceful shutdown waits for clients
// to read their last replies before it closes their connections.
const clientFlushGrace = 2 * time.Second

// beginPublish admits a PUBLISH unless the node is draining; an admitted
// one must be ended by endPublish once its reply is known. Counting before
// checking the flag (both sequentially consistent) means Shutdown, which
// sets the flag before it reads the count, never misses a publish it
// admitted.
func (s *Server) beginPublish() bool {
	s.inflight.Add(1)
	if s.draining.Load() {
		s.inflight.Add(-1)
		return false
	}
	return true
}

func (s *Server) endPublish() { s.inflight.Add(-1) }

// Shutdown stops the node gracefully (SIGTERM, SIGINT, SHUTDOWN), logging
// each step:
//
//  1. it refuses new work: new PUBLISHes and new connections get
//     shuttingDownError (peer links are still accepted: a hand-over
//     needs them);
//  2. it waits for the publishes already admitted to be answered — each
//     is answered by its commit or, at the latest, by the publish timeout;
//  3. a leader hands its leadership over (with LeaveOnShutdown the node
//     leaves the cluster instead), so the cluster does not wait a leader
//     timeout;
//  4. it stops listening and closes each client connection once its
//     queued replies are written (bounded by clientFlushGrace);
//  5. it stops the replica, which syncs and closes the log.
//
// So a client never sees a bare EOF for a publish that was stored. It is
// safe to call concurrently and more than once (later calls wait for the
// first and return its result); Close during a Shutdown waits for it.
func (s *Server) Shutdown() error {
	s.shutOnce.Do(func() { s.shutErr = s.drain() })
	return s.shutErr
}

func (s *Server) drain() error {
	s.log.Logf(logging.Info, "node", "Shutting down: refusing new work")
	s.draining.Store(true)
	n := s.inflight.Load()
	s.log.Logf(logging.Info, "node", "Waiting for %d in-flight publishes", n)
	// Every admitted publish is answered within the publish timeout (the
	// replica fails it then), so this wait ends by itself; the bound is a
	// backstop.
	if !s.waitPublishes(s.cfg.PublishTimeout + time.Second) {
		s.log.Logf(logging.Warn, "node", "%d publishes still unanswered; they fail as the log closes", s.inflight.Load())
	}
	if s.cfg.LeaveOnShutdown {
		if err := s.replica.Leave(s.leaveTimeout()); err != nil {
			s.log.Logf(logging.Warn, "membership", "Could not leave the cluster before shutdown: %v; stopping as a member (it will catch up when it comes back)", err)
		} else {
			s.log.Logf(logging.Info, "membership", "Left the cluster")
		}
	} else {
		s.replica.HandOff(min(s.cfg.LeaderTimeout, time.Second)) // logs "Handed leadership to node_N"
	}
	err := s.stop(clientFlushGrace)
	if err == nil {
		s.log.Logf(logging.Info, "storage", "Log synced")
	} else {
		s.log.Logf(logging.Error, "storage", "Closing the log failed: %v", err)
	}
	s.log.Logf(logging.Info, "node", "Stopped")
	return err
}

// waitPublishes waits until no admitted publish is unanswered, or limit.
// Polling is enough: it runs once, at shutdown.
func (s *Server) waitPublishes(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for s.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// refuseDraining answers a connection opened during a shutdown and closes
// it.
func (s *Server) refuseDraining(c interface {
	Write([]byte) (int, error)
	SetWriteDeadline(time.Time) error
	Close() error
}) {
	s.stats.rejected.Add(1)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte("-" + shuttingDownError + "\r\n"))
	c.Close()
}

// finishClients closes every client connection once what is queued for it
// has been written, waiting at most grace, then closes the rest.
// Subscriptions end first, or a subscriber's output would never drain
// while messages keep committing (it resumes from its last seq on
// another member).
func (s *Server) finishClients(grace time.Duration) {
	cs := s.allClients()
	for _, c := range cs {
		s.reg.dropClient(c)
		c.finish()
	}
	deadline := time.After(grace)
	for _, c := range cs {
		select {
		case <-c.quit:
		case <-deadline:
			c.close()
		}
	}
}
