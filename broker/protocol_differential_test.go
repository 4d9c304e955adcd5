package broker

import (
	"strings"
	"testing"
)

// protocolCases are request streams at the edges of RESP framing, where
// the request reader (reqreader.go) must do exactly what Redis's
// processMultibulkBuffer and processInlineBuffer do: number syntax
// (string2ll), the unchecked bytes after '\r' and after a bulk, skipped
// empty requests, inline quoting and escapes (sdssplitargs), the texts of
// the protocol errors, and the connection closing after them.
var protocolCases = map[string][]step{
	"bulk-trailer-unchecked": {{c: 0, raw: "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", reads: map[int]int{0: 2}}},
	"cr-then-any-byte":       {{c: 0, raw: "*2\rX$4\rYECHO\r\n$1\r\nz\r\n"}},
	"empty-requests-skipped": {{c: 0, raw: "*0\r\n*-1\r\n*-5\r\nPING\r\n"}},
	"split-requests":         {{c: 0, raw: "*2\r\n$4\r\nEC", reads: map[int]int{}}, {c: 0, raw: "HO\r\n$3\r\nabc\r\n"}},
	"count-leading-zero":     {{c: 0, raw: "*01\r\n$4\r\nPING\r\n", closed: true}},
	"count-plus":             {{c: 0, raw: "*+1\r\n$4\r\nPING\r\n", closed: true}},
	"count-minus-zero":       {{c: 0, raw: "*-0\r\n", closed: true}},
	"count-empty":            {{c: 0, raw: "*\r\n", closed: true}},
	"count-lf-only":          {{c: 0, raw: "*1\n$4\r\nPING\r\n", closed: true}},
	"count-int-max":          {{c: 0, raw: "*2147483648\r\n", closed: true}},
	"bulk-leading-zero":      {{c: 0, raw: "*1\r\n$04\r\nPING\r\n", closed: true}},
	"bulk-negative":          {{c: 0, raw: "*1\r\n$-1\r\n", closed: true}},
	"bulk-too-long-number":   {{c: 0, raw: "*1\r\n$123456789012345678901\r\n", closed: true}},
	"expected-dollar-cr":     {{c: 0, raw: "*1\r\n\r\n", closed: true}},
	"expected-dollar-lf":     {{c: 0, raw: "*1\r\n\n\r\n", closed: true}},
	"expected-dollar-byte":   {{c: 0, raw: "*1\r\n\xff3\r\n", closed: true}},
	"error-after-pipeline":   {{c: 0, raw: "PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n:1\r\n", reads: map[int]int{0: 3}, closed: true}},
	"too-big-mbulk-count":    {{c: 0, raw: "*" + strings.Repeat("1", 70<<10), closed: true}},
	"too-big-bulk-count":     {{c: 0, raw: "*1\r\n$" + strings.Repeat("1", 70<<10), closed: true}},
	"inline-escapes": {
		{c: 0, raw: "ECHO \"a\\x41\\n\\t\\\"b\\\\\"\r\n"}, {c: 0, raw: "ECHO 'it\\'s'\r\n"}, {c: 0, raw: "ECHO \"\"\r\n"},
		{c: 0, raw: "ECHO \"\\x4g\"\r\n"}, {c: 0, raw: "  ECHO \t x  \r\n"}, {c: 0, raw: "ECHO a\rb\r\n"},
		{c: 0, raw: "ECHO x\vy\r\n"}, {c: 0, raw: "\vECHO z\n"}, {c: 0, raw: "ECHO a\"b c\"\r\n"}, {c: 0, raw: "   \r\nPING\r\n"},
	},
	"inline-quote-then-text": {{c: 0, raw: "ECHO \"a\"b\r\n", closed: true}},
	"inline-single-open":     {{c: 0, raw: "ECHO 'abc\r\n", closed: true}},
	// (A longer line whose end arrives in the same read Redis may still
	// take: it checks what it buffered after each read. ordo refuses any
	// line over 64 KB, whatever the reads.)
	"inline-too-big": {{c: 0, raw: "ECHO " + strings.Repeat("a", 70<<10), closed: true}},
}

func TestProtocolAgainstRedis(t *testing.T) {
	for name, steps := range protocolCases {
		t.Run(name, func(t *testing.T) {
			want := runScript(t, redisServer(t), steps)
			got := runScript(t, startServer(t, nil).Addr().String(), steps)
			compareTranscripts(t, steps, want, got)
		})
	}
}

// Before a client authenticates, Redis bounds its requests to 10
// arguments and 16 KB bulks.
func TestUnauthenticatedRequestBoundsAgainstRedis(t *testing.T) {
	cases := map[string][]step{
		"count": {{c: 0, raw: "*11\r\n", closed: true}},
		"bulk":  {{c: 0, raw: "*2\r\n$4\r\nAUTH\r\n$16385\r\n", closed: true}},
		"small": {{c: 0, raw: "*10\r\n$4\r\nECHO\r\n" + strings.Repeat("$1\r\nx\r\n", 9)}, {c: 0, args: []string{"AUTH", "pw"}}, {c: 0, raw: "*12\r\n$4\r\nECHO\r\n" + strings.Repeat("$1\r\nx\r\n", 11)}},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			want := runScript(t, redisServer(t, "--requirepass", "pw"), steps)
			got := runScript(t, startServer(t, func(c *Config) { c.RequirePass = "pw" }).Addr().String(), steps)
			compareTranscripts(t, steps, want, got)
		})
	}
}
