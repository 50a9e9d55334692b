package cmdutil

import "testing"

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 rules"}, {1, "1 rule"}, {2, "2 rules"}, {-1, "-1 rules"}} {
		if got := Count(c.n, "rule", "rules"); got != c.want {
			t.Errorf("Count(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
