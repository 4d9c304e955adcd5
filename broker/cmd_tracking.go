package broker

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Client-side caching (CLIENT TRACKING and friends). ordo has no keys, so
// there is never anything to invalidate: the commands keep and report the
// state exactly as Redis does, so that client libraries that turn
// tracking on at connect (rueidis: CLIENT TRACKING ON OPTIN) work.

// tracking is a client's CLIENT TRACKING state, owned by its command
// goroutine.
type tracking struct {
	on, bcast, optin, optout, noloop bool
	caching                          bool // CLIENT CACHING YES|NO, for the next command
	redirect                         int64
	prefixes                         map[string]struct{}
}

// afterCommand is Redis's per-command bookkeeping (resetClient): CLIENT
// REPLY SKIP covers exactly one command, and CLIENT CACHING the next
// command or transaction.
func (c *client) afterCommand(top *command) {
	c.replies.commandDone()
	if c.multi == nil && (top == nil || top.name != "client") {
		c.tracking.caching = false
	}
}

func cmdClientTracking(c *client, args [][]byte) {
	var (
		redirect                     int64
		bcast, optin, optout, noloop bool
		prefixes                     []string
	)
	for j := 3; j < len(args); j++ {
		more := len(args) - 1 - j
		switch opt := strings.ToLower(string(args[j])); {
		case opt == "redirect" && more > 0:
			j++
			if redirect != 0 {
				c.w.Error("ERR A client can only redirect to a single other client")
				return
			}
			id, err := strconv.ParseInt(string(args[j]), 10, 64)
			if err != nil {
				c.w.Error("ERR value is not an integer or out of range")
				return
			}
			// Redis requires the target to exist now, though it may go
			// away later.
			if !c.srv.clientExists(id) {
				c.w.Error("ERR The client ID you want redirect to does not exist")
				return
			}
			redirect = id
		case opt == "bcast":
			bcast = true
		case opt == "optin":
			optin = true
		case opt == "optout":
			optout = true
		case opt == "noloop":
			noloop = true
		case opt == "prefix" && more > 0:
			j++
			prefixes = append(prefixes, string(args[j]))
		default:
			c.w.Error("ERR syntax error")
			return
		}
	}
	t := &c.tracking
	switch strings.ToLower(string(args[2])) {
	case "on":
		switch {
		case !bcast && len(prefixes) > 0:
			c.w.Error("ERR PREFIX option requires BCAST mode to be enabled")
			return
		case t.on && t.bcast != bcast:
			c.w.Error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.")
			return
		case bcast && (optin || optout):
			c.w.Error("ERR OPTIN and OPTOUT are not compatible with BCAST")
			return
		case optin && optout:
			c.w.Error("ERR You can't specify both OPTIN mode and OPTOUT mode")
			return
		case optin && t.optout || optout && t.optin:
			c.w.Error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.")
			return
		}
		if bcast && !c.prefixesDisjoint(prefixes) {
			return
		}
		t.on, t.bcast, t.optin, t.optout, t.noloop = true, bcast, optin, optout, noloop
		t.redirect = redirect
		if bcast {
			if t.prefixes == nil {
				t.prefixes = map[string]struct{}{}
			}
			if len(prefixes) == 0 {
				prefixes = []string{""}
			}
			for _, p := range prefixes {
				t.prefixes[p] = struct{}{}
			}
		}
	case "off":
		c.tracking = tracking{}
	default:
		c.w.Error("ERR syntax error")
		return
	}
	c.w.OK()
}

// prefixesDisjoint is Redis's check that no two BCAST prefixes of a
// client overlap (one a prefix of the other), with its errors.
func (c *client) prefixesDisjoint(prefixes []string) bool {
	overlap := func(a, b string) bool {
		n := min(len(a), len(b))
		return a[:n] == b[:n]
	}
	existing := make([]string, 0, len(c.tracking.prefixes))
	for p := range c.tracking.prefixes {
		existing = append(existing, p)
	}
	sort.Strings(existing)
	for i, p := range prefixes {
		for _, e := range existing {
			if overlap(e, p) {
				c.w.Error(fmt.Sprintf("ERR Prefix '%s' overlaps with an existing prefix '%s'. Prefixes for a single client must not overlap.", p, e))
				return false
			}
		}
		for _, q := range prefixes[i+1:] {
			if overlap(p, q) {
				c.w.Error(fmt.Sprintf("ERR Prefix '%s' overlaps with another provided prefix '%s'. Prefixes for a single client must not overlap.", p, q))
				return false
			}
		}
	}
	return true
}

func cmdClientCaching(c *client, args [][]byte) {
	t := &c.tracking
	if !t.on {
		c.w.Error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
		return
	}
	switch strings.ToLower(string(args[2])) {
	case "yes":
		if !t.optin {
			c.w.Error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
			return
		}
	case "no":
		if !t.optout {
			c.w.Error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
			return
		}
	default:
		c.w.Error("ERR syntax error")
		return
	}
	t.caching = true
	c.w.OK()
}

func (t *tracking) redirection() int64 {
	if !t.on {
		return -1
	}
	return t.redirect
}

func cmdClientGetredir(c *client, _ [][]byte) { c.w.Int(c.tracking.redirection()) }

func cmdClientTrackinginfo(c *client, _ [][]byte) {
	t := &c.tracking
	flags := []string{"off"}
	if t.on {
		flags[0] = "on"
	}
	if t.bcast {
		flags = append(flags, "bcast")
	}
	if t.optin {
		flags = append(flags, "optin")
		if t.caching {
			flags = append(flags, "caching-yes")
		}
	}
	if t.optout {
		flags = append(flags, "optout")
		if t.caching {
			flags = append(flags, "caching-no")
		}
	}
	if t.noloop {
		flags = append(flags, "noloop")
	}
	c.w.Map(3)
	c.w.BulkString("flags")
	c.w.Set(len(flags))
	for _, f := range flags {
		c.w.BulkString(f)
	}
	c.w.BulkString("redirect")
	c.w.Int(t.redirection())
	c.w.BulkString("prefixes")
	ps := make([][]byte, 0, len(t.prefixes))
	for p := range t.prefixes {
		ps = append(ps, []byte(p))
	}
	sort.Slice(ps, func(i, j int) bool { return bytes.Compare(ps[i], ps[j]) < 0 })
	c.w.Array(len(ps))
	for _, p := range ps {
		c.w.Bulk(p)
	}
}

func (s *Server) clientExists(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.clients[id]
	return ok
}
