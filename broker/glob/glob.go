// Package glob is Redis's glob matching (PSUBSCRIBE patterns, ACL key and
// channel patterns, CONFIG GET).
package glob

// Match reports whether str matches the Redis glob pattern, exactly as
// Redis's stringmatchlen (util.c) does: '*', '?', '[...]' classes with
// ranges and '^' negation, and '\' escapes. Matching is byte-wise and
// case-sensitive, as PSUBSCRIBE's is.
func Match(pattern, str string) bool {
	skipLongerMatches := false
	return stringMatch(pattern, str, &skipLongerMatches, 0)
}

// nesting bounds recursion on patterns like "****...": Redis gives up at
// 1000 levels and reports no match.
func stringMatch(p, s string, skipLongerMatches *bool, nesting int) bool {
	if nesting > 1000 {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if stringMatch(p[1:], s, skipLongerMatches, nesting+1) {
					return true
				}
				if *skipLongerMatches {
					return false
				}
				s = s[1:]
			}
			// No match for the rest of the pattern in any suffix: a longer
			// prefix for this '*' cannot help either.
			*skipLongerMatches = true
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			match := false
			for {
				if len(p) == 0 {
					break
				}
				if p[0] == '\\' && len(p) >= 2 {
					p = p[1:]
					if p[0] == s[0] {
						match = true
					}
				} else if p[0] == ']' {
					break
				} else if len(p) >= 3 && p[1] == '-' {
					start, end := p[0], p[2]
					if start > end {
						start, end = end, start
					}
					p = p[2:]
					if s[0] >= start && s[0] <= end {
						match = true
					}
				} else if p[0] == s[0] {
					match = true
				}
				p = p[1:]
			}
			if len(p) == 0 {
				// Unterminated class: Redis steps back so the final
				// increment leaves the pattern empty.
				p = " "
			}
			if not {
				match = !match
			}
			if !match {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}
