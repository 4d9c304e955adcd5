package broker

import "testing"

func TestIndexRanges(t *testing.T) {
	for _, c := range []struct {
		in   []uint64
		want string
	}{
		{nil, ""},
		{[]uint64{33}, "33"},
		{[]uint64{33, 34}, "33-34"},
		{[]uint64{1, 3, 4, 5, 9}, "1,3-5,9"},
	} {
		if got := indexRanges(c.in); got != c.want {
			t.Errorf("indexRanges(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
