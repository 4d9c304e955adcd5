package broker

import "github.com/ordo-broker/ordo/broker/glob"

// globMatch is Redis's glob matching (see package glob).
func globMatch(pattern, str string) bool { return glob.Match(pattern, str) }
