package glob

import (
	"sort"
	"strings"
)

// Index holds glob patterns, each with a value, and finds the patterns
// that match a string without trying every pattern, so that the cost of a
// PUBLISH grows with the patterns that could match its channel rather than
// with all PSUBSCRIBE patterns (Redis tries them all).
//
// A string can only match a pattern that starts with the pattern's literal
// prefix (see LiteralPrefix), so patterns are grouped by literal prefix and
// a lookup tries only the groups keyed by a prefix of the string: one map
// lookup per distinct prefix length no longer than the string, then
// Match on each pattern of the groups found. Patterns that start with a
// metacharacter ("*foo") share the empty prefix and are tried one by one.
// A byte trie would read the string once instead of once per length, but
// costs a node per byte; real pattern sets ("user:<id>:*") have a handful
// of prefix lengths, and hashing that many substrings is cheaper.
//
// The zero Index is empty and ready to use. It is not safe for concurrent
// use: its owner locks.
type Index[V any] struct {
	groups  map[string]map[string]V // literal prefix → pattern → value
	lengths []int                   // distinct lengths of the prefixes in groups, ascending
	perLen  map[int]int             // how many groups have a prefix of each length
	size    int
}

// LiteralPrefix returns the bytes that every string matching pattern
// starts with: the pattern up to its first '*', '?' or '[', with '\'
// escapes decoded ("a\*b*" gives "a*b"; a trailing '\' matches itself, as
// in Redis).
func LiteralPrefix(pattern string) string {
	i := strings.IndexAny(pattern, `*?[\`)
	if i < 0 {
		return pattern
	}
	if pattern[i] != '\\' {
		return pattern[:i]
	}
	b := []byte(pattern[:i])
	for ; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*', '?', '[':
			return string(b)
		case '\\':
			if i+1 < len(pattern) {
				i++
			}
			b = append(b, pattern[i])
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// Len is the number of patterns.
func (x *Index[V]) Len() int { return x.size }

// Get returns pattern's value.
func (x *Index[V]) Get(pattern string) (V, bool) {
	v, ok := x.groups[LiteralPrefix(pattern)][pattern]
	return v, ok
}

// Set adds pattern with value v, or replaces its value.
func (x *Index[V]) Set(pattern string, v V) {
	if x.groups == nil {
		x.groups = map[string]map[string]V{}
		x.perLen = map[int]int{}
	}
	p := LiteralPrefix(pattern)
	g := x.groups[p]
	if g == nil {
		g = map[string]V{}
		x.groups[p] = g
		if x.perLen[len(p)]++; x.perLen[len(p)] == 1 {
			i := sort.SearchInts(x.lengths, len(p))
			x.lengths = append(x.lengths, 0)
			copy(x.lengths[i+1:], x.lengths[i:])
			x.lengths[i] = len(p)
		}
	}
	if _, ok := g[pattern]; !ok {
		x.size++
	}
	g[pattern] = v
}

// Delete removes pattern; an emptied group goes with it, so churn leaves
// nothing behind.
func (x *Index[V]) Delete(pattern string) {
	p := LiteralPrefix(pattern)
	g := x.groups[p]
	if _, ok := g[pattern]; !ok {
		return
	}
	delete(g, pattern)
	x.size--
	if len(g) > 0 {
		return
	}
	delete(x.groups, p)
	if x.perLen[len(p)]--; x.perLen[len(p)] == 0 {
		delete(x.perLen, len(p))
		i := sort.SearchInts(x.lengths, len(p))
		x.lengths = append(x.lengths[:i], x.lengths[i+1:]...)
	}
}

// Match calls fn for every pattern that matches s (by Match), in no
// particular order (Redis's order is its hash table's, as arbitrary).
func (x *Index[V]) Match(s string, fn func(pattern string, v V)) {
	for _, n := range x.lengths {
		if n > len(s) {
			return
		}
		for pat, v := range x.groups[s[:n]] {
			if Match(pat, s) {
				fn(pat, v)
			}
		}
	}
}
