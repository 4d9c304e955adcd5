package metrics

import (
	"strconv"

	"github.com/ordo-broker/ordo/broker/replica"
	"github.com/ordo-broker/ordo/consensus"
	"github.com/prometheus/client_golang/prometheus"
)

// nodeCollector reads the node's counters and state at scrape time.
type nodeCollector struct{ m *Metrics }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The node's metrics other than the histograms (see README, "Metrics and
// health").
var (
	// Publishing and delivery (replica.Stats).
	descPublishes     = desc("ordo_publishes_total", "Publishes from this node's clients acknowledged: committed on a majority and delivered.")
	descPublishErrors = desc("ordo_publish_errors_total", "Publishes from this node's clients answered with an error, by reason (no_leader, not_sequenced, unconfirmed, shutting_down, storage, refused).", "reason")
	descApplied       = desc("ordo_messages_applied_total", "Committed messages applied (indexed and fanned out) on this node.")
	descDeliveries    = desc("ordo_deliveries_total", "Messages handed to this node's subscribers, one per receiving subscription.")

	// Front end.
	descClients        = desc("ordo_connected_clients", "Connected clients (peer links excluded).")
	descPubsubClients  = desc("ordo_pubsub_clients", "Clients with at least one subscription.")
	descChannels       = desc("ordo_pubsub_channels", "Channels with at least one subscriber on this node.")
	descPatterns       = desc("ordo_pubsub_patterns", "Patterns with at least one subscriber on this node.")
	descShardChannels  = desc("ordo_pubsub_shard_channels", "Shard channels with at least one subscriber on this node.")
	descConnections    = desc("ordo_connections_received_total", "Client connections accepted.")
	descRejected       = desc("ordo_rejected_connections_total", "Client connections refused because max_clients was reached.")
	descCommands       = desc("ordo_commands_processed_total", "Commands executed.")
	descInputBytes     = desc("ordo_net_input_bytes_total", "Bytes read from clients.")
	descOutputBytes    = desc("ordo_net_output_bytes_total", "Bytes written to clients.")
	descSlowSubscriber = desc("ordo_slow_subscriber_disconnects_total", "Subscribers disconnected because their output buffer passed a pubsub_output_buffer limit.")

	// Consensus.
	descTerm          = desc("ordo_term", "Current election term.")
	descRole          = desc("ordo_role", "1 for this node's current role (leader, follower, candidate), 0 for the others.", "role")
	descLeader        = desc("ordo_leader_id", "Id of the leader this node knows (0: none known).")
	descLeaderChanges = desc("ordo_leader_changes_total", "Times this node saw leadership pass to another node (the first leader it sees, itself included, counts).")
	descLastSeq       = desc("ordo_last_seq", "Sequence number of the newest message in this node's log.")
	descCommitSeq     = desc("ordo_commit_seq", "Sequence number of the newest committed message this node knows of.")
	descVoters        = desc("ordo_voters", "Voting members in the configuration in force.")
	descMemberLag     = desc("ordo_member_lag_entries", "Log entries a member is behind the leader (reported by the leader only).", "member")
	descMemberUp      = desc("ordo_member_reachable", "1 if the leader heard from the member within a leader timeout (reported by the leader only).", "member")

	// Log.
	descWALBytes    = desc("ordo_wal_size_bytes", "Bytes in the log's segment files.")
	descWALSegments = desc("ordo_wal_segments", "Segment files in the log.")
	descWALFailed   = desc("ordo_wal_failed", "1 while the log cannot be written (publishes are refused until it is reopened).")
)

var roles = []consensus.Role{consensus.Leader, consensus.Follower, consensus.Candidate}

// Describe sends nothing: the collector is unchecked, so its label sets
// (the members) may change between scrapes.
func (c nodeCollector) Describe(chan<- *prometheus.Desc) {}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.m.frontEnd != nil {
		fe := c.m.frontEnd()
		gauge(descClients, float64(fe.Clients))
		gauge(descPubsubClients, float64(fe.PubsubClients))
		gauge(descChannels, float64(fe.Channels))
		gauge(descPatterns, float64(fe.Patterns))
		gauge(descShardChannels, float64(fe.ShardChannels))
		counter(descConnections, fe.ConnectionsReceived)
		counter(descRejected, fe.RejectedConnections)
		counter(descCommands, fe.Commands)
		counter(descInputBytes, fe.InputBytes)
		counter(descOutputBytes, fe.OutputBytes)
		counter(descSlowSubscriber, fe.SlowSubscriberDisconnects)
	}
	r := c.m.replica.Load()
	if r == nil {
		return
	}
	rs := r.Stats()
	counter(descPublishes, rs.PublishesAcked.Load())
	for reason := range replica.NumFailReasons {
		counter(descPublishErrors, rs.PublishErrorsBy[reason].Load(), reason.String())
	}
	counter(descApplied, rs.MessagesApplied.Load())
	counter(descDeliveries, rs.Deliveries.Load())
	counter(descLeaderChanges, rs.LeaderChanges.Load())

	st, broken := r.Status()
	gauge(descTerm, float64(st.Term))
	for _, role := range roles {
		gauge(descRole, b2f(st.Role == role), role.String())
	}
	gauge(descLeader, float64(st.Leader))
	gauge(descLastSeq, float64(st.LastSeq))
	gauge(descCommitSeq, float64(st.CommitSeq))
	voters := 0
	for _, mb := range r.Members() {
		if mb.Voter {
			voters++
		}
		if mb.Known && !mb.Self {
			id := strconv.FormatUint(mb.ID, 10)
			gauge(descMemberLag, float64(mb.Lag), id)
			gauge(descMemberUp, b2f(mb.Active), id)
		}
	}
	gauge(descVoters, float64(voters))

	log := r.Store()
	gauge(descWALBytes, float64(log.Size()))
	gauge(descWALSegments, float64(log.Segments()))
	gauge(descWALFailed, b2f(broken != nil))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
