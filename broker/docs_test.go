package broker

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/ordo-broker/ordo/clients/resp"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite commanddocs.json from redis-server's COMMAND DOCS")

// docsExtra are commands whose documentation is recorded although ordo's
// table may not have them yet (other parts of the front end add them).
var docsExtra = []string{"acl", "cluster"}

func toDoc(v resp.Value) docNode {
	switch v.Kind {
	case resp.BulkString:
		return docNode{kind: '$', str: string(v.Str)}
	case resp.SimpleString:
		return docNode{kind: '+', str: string(v.Str)}
	case resp.Integer:
		return docNode{kind: ':', num: v.Num}
	}
	n := docNode{kind: byte(v.Kind)}
	for _, e := range v.Elems {
		n.elems = append(n.elems, toDoc(e))
	}
	return n
}

// fetchDocs returns COMMAND DOCS name from a server, in RESP3.
func fetchDocs(t *testing.T, c *respConn, name string) (docNode, bool) {
	v := c.Do("COMMAND", "DOCS", name)
	if v.Kind != resp.Map {
		t.Fatalf("COMMAND DOCS %s: %v", name, v)
	}
	if len(v.Elems) == 0 {
		return docNode{}, false
	}
	return toDoc(v.Elems[1]), true
}

// sortSubcommands orders a container's subcommands by name (Redis lists
// them in hash table order, which changes from run to run).
func sortSubcommands(d docNode) docNode {
	for i := 0; i+1 < len(d.elems); i += 2 {
		if d.elems[i].str != "subcommands" {
			continue
		}
		m := d.elems[i+1].elems
		type pair struct{ k, v docNode }
		var ps []pair
		for j := 0; j+1 < len(m); j += 2 {
			ps = append(ps, pair{m[j], m[j+1]})
		}
		sort.Slice(ps, func(a, b int) bool { return ps[a].k.str < ps[b].k.str })
		sorted := docNode{kind: '%'}
		for _, p := range ps {
			sorted.elems = append(sorted.elems, p.k, p.v)
		}
		d.elems = slices.Clone(d.elems)
		d.elems[i+1] = sorted
	}
	return d
}

// fields returns a doc map's field, without its subcommands.
func fields(d docNode) (map[string]docNode, map[string]docNode) {
	out, subs := map[string]docNode{}, map[string]docNode{}
	for i := 0; i+1 < len(d.elems); i += 2 {
		if d.elems[i].str == "subcommands" {
			m := d.elems[i+1].elems
			for j := 0; j+1 < len(m); j += 2 {
				subs[m[j].str] = m[j+1]
			}
			continue
		}
		out[d.elems[i].str] = d.elems[i+1]
	}
	return out, subs
}

// For every command ordo shares with Redis, COMMAND DOCS answers what
// redis-server does (summary, since, group, arguments ...), for the
// command and each subcommand ordo serves.
func TestCommandDocsMatchRedis(t *testing.T) {
	r := dial(t, redisServer(t))
	r.do("HELLO", "3")
	o := dial(t, startServer(t, nil).Addr().String())
	o.do("HELLO", "3")
	names := append([]string(nil), docsExtra...)
	for n := range commandTable {
		if !slices.Contains(docsExtra, n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	recorded := map[string]docNode{}
	for _, n := range names {
		d, ok := fetchDocs(t, r, n)
		if !ok {
			continue
		}
		d = sortSubcommands(d)
		recorded[n] = d
		_, subs := fields(d)
		for sn, sd := range subs {
			recorded[sn] = sd
		}
	}
	if *updateDocs {
		keys := make([]string, 0, len(recorded))
		for k := range recorded {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b bytes.Buffer
		b.WriteString("{\n")
		for i, k := range keys {
			kj, _ := json.Marshal(k)
			vj, err := json.Marshal(recorded[k])
			if err != nil {
				t.Fatal(err)
			}
			b.Write(kj)
			b.WriteString(": ")
			b.Write(vj)
			if i < len(keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("}\n")
		if err := os.WriteFile("commanddocs.json", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, n := range names {
		want, inRedis := recorded[n]
		if inRedis && !reflect.DeepEqual(redisDocs[n], want) {
			t.Errorf("commanddocs.json is stale for %s: run go test ./broker -run TestCommandDocsMatchRedis -update-docs", n)
		}
		if commandTable[n] == nil {
			continue
		}
		got, ok := fetchDocs(t, o, n)
		if !ok {
			t.Errorf("ordo has no COMMAND DOCS for %s", n)
			continue
		}
		if !inRedis {
			continue
		}
		gf, gsubs := fields(got)
		wf, wsubs := fields(want)
		if !reflect.DeepEqual(gf, wf) {
			t.Errorf("COMMAND DOCS %s differs from Redis's:\n got  %v\n want %v", n, gf, wf)
		}
		for sn, sd := range gsubs {
			if w, ok := wsubs[sn]; ok && !reflect.DeepEqual(sd, w) {
				t.Errorf("COMMAND DOCS %s differs from Redis's:\n got  %v\n want %v", sn, sd, w)
			}
		}
		if len(gsubs) != len(commandTable[n].subs) {
			t.Errorf("COMMAND DOCS %s documents %d subcommands, ordo serves %d", n, len(gsubs), len(commandTable[n].subs))
		}
	}
	// The arguments are what redis-cli builds its hints from.
	if got := o.Do("COMMAND", "DOCS", "publish").String(); got != "" {
		t.Fatalf("unexpected scalar %q", got)
	}
	pf, _ := fields(toDoc(o.Do("COMMAND", "DOCS", "publish").Elems[1]))
	if pf["since"].str != "2.0.0" || len(pf["arguments"].elems) != 2 {
		t.Errorf("PUBLISH docs: since %q, %d arguments", pf["since"].str, len(pf["arguments"].elems))
	}
}
