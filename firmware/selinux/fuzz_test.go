package selinux

import (
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("/a(/.*)? -d u:object_r:a:s0\n/a/b <<none>>\n")
	f.Add("/a\\ u:a:b:c\n#x\n\n")
	f.Add("/(((( u:a:b:c")
	f.Fuzz(func(t *testing.T, s string) {
		c := &Contexts{}
		if err := c.Parse(strings.NewReader(s), "fuzz"); err != nil {
			return
		}
		for _, p := range []string{"/", "/a", "/product/app/x.apk", s} {
			for _, ty := range []FileType{Any, Regular, Dir} {
				c.Lookup(p, ty)
			}
		}
	})
}
