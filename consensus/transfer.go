package consensus

// Leadership transfer (Raft thesis §3.10).
//
// The leader stops sequencing (proposals and forwards are queued, as
// during synchronisation), brings the target up to date, and sends it
// MsgTimeoutNow. The target campaigns at once — no bully round, no
// pre-vote — and its MsgCoordinator carries Transfer, which lets voters
// acknowledge it although they heard from a live leader (stickiness
// exists to protect a healthy leader from rivals; here that leader asked
// for the election). Everything else is an ordinary election: one
// acknowledgement per term, a majority of the configuration, the sync
// phase. The bully order does not apply, so a transfer to a lower ID
// works. Once the target leads, the old leader (a follower now)
// re-forwards its queued, tracked proposals to it like after any
// failover; forwarded ones are re-forwarded by their origins.
//
// Bounded: if the leader is still leader ElectionTicks after the request,
// it gives up and resumes sequencing (appending what it queued).

// sequencing reports whether this node assigns sequence numbers to new
// proposals now: a leader that synchronised its term and is not handing
// over.
func (n *Node) sequencing() bool {
	return n.role == Leader && n.sync == syncDone && n.transferee == 0
}

// TransferLeadership asks the leader to hand its leadership to voter to
// (0: the most up-to-date voter, ties to the higher ID). It returns
// ErrNotLeader at a node that is not a sequencing leader, ErrTransferring
// if a transfer is in progress, ErrUnknownMember if to is not another
// voter (or there is none). The outcome shows in SoftState/Status: a new
// leader, or, after ElectionTicks without one, this leader sequencing
// again (Status().Transferee back to 0).
func (n *Node) TransferLeadership(to NodeID) error {
	switch {
	case n.role != Leader || n.sync != syncDone:
		return ErrNotLeader
	case n.transferee != 0:
		return ErrTransferring
	}
	if to == 0 {
		to = n.bestTransferee()
	}
	if to == 0 || to == n.id || !n.isVoter(to) || n.prs[to] == nil {
		return ErrUnknownMember
	}
	n.transferee, n.transferElapsed = to, 0
	n.logf(LevelInfo, compElection, "Transferring leadership to node_%d", to)
	n.needBcast = true
	n.prs[to].forceSend = true
	n.maybeSendTimeoutNow()
	return nil
}

// bestTransferee returns the voter (other than this node) with the highest
// match, ties to the higher ID; 0 if none.
func (n *Node) bestTransferee() NodeID {
	var best NodeID
	var bm uint64
	for _, id := range n.voters() {
		if pr := n.prs[id]; id != n.id && pr != nil && (best == 0 || pr.match >= bm) {
			best, bm = id, pr.match
		}
	}
	return best
}

// maybeSendTimeoutNow sends MsgTimeoutNow once the transferee holds the
// whole log (and synced this term). It is repeated on every answer of the
// transferee while the transfer lasts (it may be lost; the target acts on
// it only once per term).
func (n *Node) maybeSendTimeoutNow() {
	pr := n.prs[n.transferee]
	if n.transferee == 0 || pr == nil || !pr.synced || pr.match != n.log.lastIndex() {
		return
	}
	n.send(Message{To: n.transferee, Type: MsgTimeoutNow})
}

// tickTransfer abandons a transfer that did not complete within an
// election timeout.
func (n *Node) tickTransfer() {
	if n.transferee == 0 {
		return
	}
	n.transferElapsed++
	if n.transferElapsed < n.cfg.ElectionTicks {
		return
	}
	n.logf(LevelWarn, compElection, "Leadership transfer to node_%d did not complete; sequencing again", n.transferee)
	n.transferee = 0
	n.resumeSequencing()
}

// resumeSequencing appends what waited while the leader was not sequencing:
// its own tracked proposals, then the queue (untracked and forwarded ones).
func (n *Node) resumeSequencing() {
	queued := n.queued
	n.queued = nil
	n.appendProposals(n.fwd.all(n.now))
	n.appendProposals(queued)
}

// handleTimeoutNow: the leader asks this node to campaign now.
func (n *Node) handleTimeoutNow(m Message) {
	if n.role != Follower || m.From != n.lead || !n.electable() || n.mustReach > 0 {
		return
	}
	n.logf(LevelInfo, compElection, "Received TIMEOUT_NOW from node_%d; campaigning", m.From)
	n.transferCampaign = true
	n.becomeCandidate()
}
