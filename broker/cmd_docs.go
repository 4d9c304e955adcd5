package broker

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// COMMAND DOCS: for the commands ordo shares with Redis, Redis's own
// documentation (summary, since, group, complexity, arguments, history),
// recorded from redis-server in commanddocs.json, so that redis-cli shows
// the same argument hints; a container's subcommands are those ordo
// serves. ordo's own commands and subcommands carry ordoDocs.
// Regenerate the file with
//
//	go test ./broker -run TestCommandDocsMatchRedis -update-docs

//go:embed commanddocs.json
var redisDocsJSON []byte

var redisDocs = func() map[string]docNode {
	m := map[string]docNode{}
	if err := json.Unmarshal(redisDocsJSON, &m); err != nil {
		panic("broker: commanddocs.json: " + err.Error())
	}
	return m
}()

// docNode is one value of a COMMAND DOCS reply. In JSON a bulk string is
// a string, an integer a number, and anything else an array headed by
// its RESP type: ["%", k, v, ...] (map), ["*", ...], ["~", ...], ["+", s].
type docNode struct {
	kind  byte
	str   string
	num   int64
	elems []docNode
}

func (n docNode) MarshalJSON() ([]byte, error) {
	switch n.kind {
	case '$':
		return json.Marshal(n.str)
	case ':':
		return json.Marshal(n.num)
	case '+':
		return json.Marshal([]string{"+", n.str})
	}
	out := []any{string(n.kind)}
	for _, e := range n.elems {
		out = append(out, e)
	}
	return json.Marshal(out)
}

func (n *docNode) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*n = nodeFrom(v)
	return nil
}

func nodeFrom(v any) docNode {
	switch x := v.(type) {
	case string:
		return docNode{kind: '$', str: x}
	case float64:
		return docNode{kind: ':', num: int64(x)}
	case []any:
		kind := x[0].(string)[0]
		if kind == '+' {
			return docNode{kind: '+', str: x[1].(string)}
		}
		n := docNode{kind: kind}
		for _, e := range x[1:] {
			n.elems = append(n.elems, nodeFrom(e))
		}
		return n
	}
	panic(fmt.Sprintf("broker: commanddocs.json: unexpected %T", v))
}

// ordoDocs document what Redis does not have.
var ordoDocs = map[string][2]string{
	"status":              {"Returns this node's role, term, leader and log positions (ordo).", "server"},
	"cluster|members":     {"Lists the cluster's members with their roles, states and lag (ordo).", "cluster"},
	"cluster|leave":       {"Removes this node from the cluster gracefully (ordo).", "cluster"},
	"cluster|remove":      {"Removes a member from the cluster (ordo).", "cluster"},
	"cluster|stepdown":    {"Makes the leader hand its leadership over (ordo).", "cluster"},
	"cluster|accept-loss": {"Gives up log entries no member holds intact any more, so a halted leader resumes sequencing (ordo).", "cluster"},
}

func writeDoc(w *replyBuf, n docNode) {
	switch n.kind {
	case '$':
		w.BulkString(n.str)
	case ':':
		w.Int(n.num)
	case '+':
		w.Simple(n.str)
	case '%':
		w.Map(len(n.elems) / 2)
		for _, e := range n.elems {
			writeDoc(w, e)
		}
	case '~':
		w.Set(len(n.elems))
		for _, e := range n.elems {
			writeDoc(w, e)
		}
	default:
		w.Array(len(n.elems))
		for _, e := range n.elems {
			writeDoc(w, e)
		}
	}
}

// docFor is a command's (or subcommand's, fullName "client|list")
// documentation, its subcommands limited to those ordo serves.
func docFor(cmd *command) docNode {
	d, ok := redisDocs[cmd.fullName]
	if !ok {
		od, known := ordoDocs[cmd.fullName]
		if !known {
			od = [2]string{"An ordo command.", "server"}
		}
		d = docNode{kind: '%', elems: []docNode{
			{kind: '$', str: "summary"}, {kind: '$', str: od[0]},
			{kind: '$', str: "since"}, {kind: '$', str: Version},
			{kind: '$', str: "group"}, {kind: '$', str: od[1]},
		}}
	}
	if cmd.subs == nil {
		return d
	}
	var subs []docNode
	names := make([]string, 0, len(cmd.subs))
	for n := range cmd.subs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sc := cmd.subs[n]
		subs = append(subs, docNode{kind: '$', str: sc.fullName}, subDoc(d, sc))
	}
	out := docNode{kind: '%'}
	for i := 0; i+1 < len(d.elems); i += 2 {
		if d.elems[i].str != "subcommands" {
			out.elems = append(out.elems, d.elems[i], d.elems[i+1])
		}
	}
	out.elems = append(out.elems, docNode{kind: '$', str: "subcommands"}, docNode{kind: '%', elems: subs})
	return out
}

// subDoc finds a subcommand's documentation in its container's.
func subDoc(parent docNode, sc *command) docNode {
	for i := 0; i+1 < len(parent.elems); i += 2 {
		if parent.elems[i].str != "subcommands" {
			continue
		}
		m := parent.elems[i+1].elems
		for j := 0; j+1 < len(m); j += 2 {
			if m[j].str == sc.fullName {
				return m[j+1]
			}
		}
	}
	return docFor(sc)
}

func cmdCommandDocs(c *client, args [][]byte) {
	var cmds []*command
	if len(args) > 2 {
		for _, a := range args[2:] {
			if cmd := commandTable[strings.ToLower(string(a))]; cmd != nil {
				cmds = append(cmds, cmd)
			}
		}
	} else {
		cmds = sortedCommands()
	}
	c.w.Map(len(cmds))
	for _, cmd := range cmds {
		c.w.BulkString(cmd.name)
		writeDoc(&c.w, docFor(cmd))
	}
}
