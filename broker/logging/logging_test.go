package logging

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// The text format prints the guide's lines, whatever fields a line
// carries; JSON gives each field its own key.
func TestFormatsAndFields(t *testing.T) {
	var text, js bytes.Buffer
	for _, c := range []struct {
		w      *bytes.Buffer
		format string
	}{{&text, "text"}, {&js, "json"}} {
		n := NewNode(NewLogger(c.w, c.format, Debug), 2)
		n.Logf(Info, "storage", "Loaded %d messages from log", 10)
		n.SetTerm(7)
		n.WithSeq(42).Logf(Warn, "ordering", "Delivering seq_no=%d", 42)
		n.Raw(Info, "election.2", "Starting election for term %d", 8)
		n.Raw(Info, "election.3", "qualified by another node")
	}
	want := []string{
		` - storage.2 - INFO - Loaded 10 messages from log$`,
		` - ordering.2 - WARNING - Delivering seq_no=42$`,
		` - election.2 - INFO - Starting election for term 8$`,
		` - election.3 - INFO - qualified by another node$`,
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	for i, w := range want {
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}` + w).MatchString(lines[i]) {
			t.Errorf("text line %d: %q, want ...%s", i, lines[i], w)
		}
	}
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(m["time"].(string)) {
			t.Errorf("time %q: want UTC with milliseconds", m["time"])
		}
		delete(m, "time")
		got = append(got, m)
	}
	wantJSON := []map[string]any{
		{"level": "INFO", "msg": "Loaded 10 messages from log", "component": "storage", "node": 2.0},
		{"level": "WARN", "msg": "Delivering seq_no=42", "component": "ordering", "node": 2.0, "term": 7.0, "seq": 42.0},
		{"level": "INFO", "msg": "Starting election for term 8", "component": "election", "node": 2.0, "term": 7.0},
		{"level": "INFO", "msg": "qualified by another node", "component": "election.3", "term": 7.0},
	}
	for i, w := range wantJSON {
		g, _ := json.Marshal(got[i])
		e, _ := json.Marshal(w)
		if !bytes.Equal(g, e) {
			t.Errorf("JSON line %d: %s, want %s", i, g, e)
		}
	}
}
