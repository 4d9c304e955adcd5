package glob

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func TestLiteralPrefix(t *testing.T) {
	for pattern, want := range map[string]string{
		"":             "",
		"abc":          "abc",
		"user:1:*":     "user:1:",
		"*foo":         "",
		"h?llo":        "h",
		"h[ae]llo":     "h",
		`h\*llo`:       "h*llo",
		`a\*b*c`:       "a*b",
		`a\\*`:         `a\`,
		`ab\`:          `ab\`,
		`\`:            `\`,
		`x\[y[z]`:      "x[y",
		`open[ab`:      "open",
		`\?\*\[\]\\q*`: `?*[]\q`,
	} {
		if got := LiteralPrefix(pattern); got != want {
			t.Errorf("LiteralPrefix(%q) = %q, want %q", pattern, got, want)
		}
	}
}

// Pattern and channel bytes: metacharacters, escapes, class syntax and a
// few letters, so that random strings often match random patterns.
const (
	patternBytes = `ab:*?[]^-\`
	channelBytes = `ab:*?[]^-\c`
)

func randString(r *rand.Rand, alphabet string, maxLen int) string {
	b := make([]byte, r.IntN(maxLen+1))
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// randChannel is a random string, or one derived from a pattern (its
// literal prefix followed by random bytes), which matches far more often.
func randChannel(r *rand.Rand, patterns []string) string {
	if len(patterns) > 0 && r.IntN(2) == 0 {
		p := patterns[r.IntN(len(patterns))]
		return LiteralPrefix(p) + randString(r, channelBytes, 4)
	}
	return randString(r, channelBytes, 8)
}

func indexMatches(x *Index[int], s string) []string {
	var got []string
	x.Match(s, func(p string, v int) {
		if v != len(p) {
			panic(fmt.Sprintf("value of %q is %d", p, v))
		}
		got = append(got, p)
	})
	sort.Strings(got)
	return got
}

func bruteMatches(patterns map[string]bool, s string) []string {
	var want []string
	for p := range patterns {
		if Match(p, s) {
			want = append(want, p)
		}
	}
	sort.Strings(want)
	return want
}

// checkConsistent verifies the index's bookkeeping against the patterns
// it should hold: every group non-empty and keyed by its patterns' literal
// prefix, the length counts and sorted lengths exactly those of the groups.
func checkConsistent(t *testing.T, x *Index[int], live map[string]bool) {
	t.Helper()
	if x.Len() != len(live) {
		t.Fatalf("Len() = %d, want %d", x.Len(), len(live))
	}
	prefixes := map[string]bool{}
	for p := range live {
		prefixes[LiteralPrefix(p)] = true
		if v, ok := x.Get(p); !ok || v != len(p) {
			t.Fatalf("Get(%q) = %d, %v", p, v, ok)
		}
	}
	if len(x.groups) != len(prefixes) {
		t.Fatalf("%d groups, want %d (one per distinct prefix)", len(x.groups), len(prefixes))
	}
	perLen := map[int]int{}
	for prefix, g := range x.groups {
		if len(g) == 0 {
			t.Fatalf("empty group %q left behind", prefix)
		}
		for p := range g {
			if !live[p] || LiteralPrefix(p) != prefix {
				t.Fatalf("group %q holds %q", prefix, p)
			}
		}
		perLen[len(prefix)]++
	}
	if len(perLen) != len(x.perLen) {
		t.Fatalf("perLen = %v, want %v", x.perLen, perLen)
	}
	var lengths []int
	for n, k := range perLen {
		if x.perLen[n] != k {
			t.Fatalf("perLen = %v, want %v", x.perLen, perLen)
		}
		lengths = append(lengths, n)
	}
	sort.Ints(lengths)
	if !slices.Equal(lengths, x.lengths) {
		t.Fatalf("lengths = %v, want %v", x.lengths, lengths)
	}
}

// TestIndexMatchesBruteForce: under random subscribe/unsubscribe churn the
// index finds exactly the patterns Match accepts, and its bookkeeping
// stays exact (nothing left behind once patterns go).
func TestIndexMatchesBruteForce(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, seed))
		var x Index[int]
		live := map[string]bool{}
		var added []string
		for step := 0; step < 600; step++ {
			switch {
			case r.IntN(3) > 0 || len(added) == 0:
				p := randString(r, patternBytes, 7)
				if r.IntN(4) == 0 {
					// A realistic literal prefix in front.
					p = "user:" + randString(r, "0123", 2) + ":" + p
				}
				x.Set(p, len(p))
				live[p] = true
				added = append(added, p)
			default:
				// Delete a pattern added before (maybe already gone) or
				// one never added.
				p := added[r.IntN(len(added))]
				if r.IntN(5) == 0 {
					p = randString(r, patternBytes, 7)
				}
				x.Delete(p)
				delete(live, p)
			}
			pats := make([]string, 0, len(live))
			for p := range live {
				pats = append(pats, p)
			}
			for i := 0; i < 5; i++ {
				s := randChannel(r, pats)
				if got, want := indexMatches(&x, s), bruteMatches(live, s); !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: Match(%q) = %q, brute force %q", seed, step, s, got, want)
				}
			}
			if step%50 == 0 {
				checkConsistent(t, &x, live)
			}
		}
		checkConsistent(t, &x, live)
		for _, p := range added {
			x.Delete(p)
			delete(live, p)
		}
		checkConsistent(t, &x, live)
		if len(x.groups) != 0 || len(x.perLen) != 0 || len(x.lengths) != 0 || x.Len() != 0 {
			t.Fatalf("seed %d: emptied index still holds %v %v %v", seed, x.groups, x.perLen, x.lengths)
		}
	}
}

// FuzzIndex: for any pattern and string, the index holding that pattern
// (among a few fixed others) agrees with Match.
func FuzzIndex(f *testing.F) {
	for _, s := range [][2]string{{"h?llo", "hello"}, {`a\*b*`, "a*bc"}, {`ab\`, `ab\`}, {"open[ab", "opena"}, {"*", ""}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		var x Index[int]
		live := map[string]bool{pattern: true, "*": true, "a*": true, `\a?`: true}
		for p := range live {
			x.Set(p, len(p))
		}
		if got, want := indexMatches(&x, s), bruteMatches(live, s); !slices.Equal(got, want) {
			t.Fatalf("Match(%q) = %q, brute force %q", s, got, want)
		}
	})
}

// BenchmarkIndexMatch: finding the patterns that match a channel among n
// patterns user:<id>:* (channels user:<id>:events, ids in [0, 10n)), by
// the index and by trying every pattern as Redis does.
//
//	go test -run XXX -bench IndexMatch ./broker/glob
func BenchmarkIndexMatch(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		var x Index[int]
		patterns := make([]string, n)
		for i := range patterns {
			patterns[i] = fmt.Sprintf("user:%d:*", i)
			x.Set(patterns[i], i)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		channels := make([]string, 1024)
		for i := range channels {
			channels[i] = fmt.Sprintf("user:%d:events", rng.IntN(10*n))
		}
		b.Run(fmt.Sprintf("index/patterns=%d", n), func(b *testing.B) {
			found := 0
			for i := 0; b.Loop(); i++ {
				x.Match(channels[i%len(channels)], func(string, int) { found++ })
			}
		})
		b.Run(fmt.Sprintf("every-pattern/patterns=%d", n), func(b *testing.B) {
			found := 0
			for i := 0; b.Loop(); i++ {
				s := channels[i%len(channels)]
				for _, p := range patterns {
					if Match(p, s) {
						found++
					}
				}
			}
		})
	}
}
