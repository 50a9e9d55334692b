package aosp

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/provkit/provkit/manifests/aosp/makefile"
)

// ProductRef is a product makefile declared in an AndroidProducts.mk.
type ProductRef struct {
	Name     string // the product name: "name:" prefix, or the file name without .mk
	Makefile string // relative to the tree root
	Declared Loc    // the AndroidProducts.mk line
}

// productDirs are where device makers keep AndroidProducts.mk files (build/ holds AOSP's generic
// products, which are never the one to patch).
var productDirs = []string{"device", "vendor", "product"}

// maxProductsDepth bounds how deep under device/ and vendor/ AndroidProducts.mk files are looked for.
const maxProductsDepth = 5

// findProducts reads every AndroidProducts.mk under device/, vendor/ and product/ and returns the
// product makefiles they declare in PRODUCT_MAKEFILES.
func findProducts(t *tree) ([]ProductRef, error) {
	var refs []ProductRef
	err := t.walk(productDirs, func(rel string) error {
		if path.Base(rel) != "AndroidProducts.mk" || strings.Count(rel, "/") > maxProductsDepth {
			return nil
		}
		r, err := readProductsFile(t, rel)
		refs = append(refs, r...)
		return err
	})
	sort.SliceStable(refs, func(i, j int) bool { return refs[i].Makefile < refs[j].Makefile })
	return refs, err
}

// aospProducts is where AOSP declares its generic products (aosp_arm64, sdk_phone64_arm64, ...):
// looked at only for a product named explicitly, never to pick the default.
const aospProducts = "build/make/target/product/AndroidProducts.mk"

// readProductsFile returns the product makefiles one AndroidProducts.mk declares in
// PRODUCT_MAKEFILES (under every branch of its conditions).
func readProductsFile(t *tree, rel string) ([]ProductRef, error) {
	var refs []ProductRef
	src, err := t.read(rel)
	if err != nil {
		return nil, err
	}
	f, err := makefile.Parse(rel, src)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", rel, err)
	}
	e := &evaluator{t: t, vars: map[string]string{"LOCAL_DIR": path.Dir(rel)}, chain: &Chain{}}
	for k, v := range defaultVars {
		e.vars[k] = v
	}
	env := mkEnv{e: e, dir: path.Dir(rel)}
	for i := range f.Stmts {
		s := &f.Stmts[i]
		if s.Kind != makefile.Assign {
			continue
		}
		if s.Name != "PRODUCT_MAKEFILES" {
			if s.Op == ":=" {
				if v, ok := makefile.Expand(s.Value, env); ok {
					e.vars[s.Name] = v
				}
			}
			continue
		}
		for _, w := range makefile.Words(s.Value) {
			x, ok := makefile.Expand(w, env)
			if !ok {
				continue
			}
			for _, word := range strings.Fields(x) {
				name, file, found := strings.Cut(word, ":")
				if !found {
					file = word
					name = strings.TrimSuffix(path.Base(word), ".mk")
				}
				refs = append(refs, ProductRef{Name: name, Makefile: path.Clean(file), Declared: Loc{rel, s.Line}})
			}
		}
	}
	return refs, nil
}

// resolveProduct finds the product makefile: the one named (a path relative to the tree, or a
// product name declared in an AndroidProducts.mk), or the only one the tree declares.
func resolveProduct(t *tree, want string) (string, error) {
	if want != "" && strings.HasSuffix(want, ".mk") {
		p := path.Clean(strings.TrimPrefix(filepath.ToSlash(want), "./"))
		if !inTree(p) {
			return "", fmt.Errorf("finding product makefile: %s is %w %s; give a path relative to the tree root", want, ErrOutsideTree, t.root)
		}
		if !t.exists(p) {
			return "", fmt.Errorf("finding product makefile: %s does not exist in the tree (give a path relative to the tree root, or a product name)", p)
		}
		return p, nil
	}
	refs, err := findProducts(t)
	if err != nil {
		return "", err
	}
	if want != "" && t.exists(aospProducts) {
		// AOSP's own products (aosp_arm64, ...) answer only to their name.
		found := false
		for _, r := range refs {
			found = found || r.Name == want
		}
		if !found {
			more, err := readProductsFile(t, aospProducts)
			if err != nil {
				return "", err
			}
			refs = append(refs, more...)
		}
	}
	var names []string
	for _, r := range refs {
		names = append(names, fmt.Sprintf("%s (%s)", r.Name, r.Makefile))
		if want != "" && r.Name == want {
			if !inTree(r.Makefile) {
				return "", fmt.Errorf("finding product %s: %s declares %s, which is %w", want, r.Declared, r.Makefile, ErrOutsideTree)
			}
			if !t.exists(r.Makefile) {
				return "", fmt.Errorf("finding product %s: %s declares %s, which does not exist", want, r.Declared, r.Makefile)
			}
			return r.Makefile, nil
		}
	}
	switch {
	case want != "":
		return "", fmt.Errorf("finding product %q: no AndroidProducts.mk under device/, vendor/, product/ or %s declares it (declared: %s); pass --product <path/to/product.mk>", want, path.Dir(aospProducts), orNone(names))
	case len(refs) == 0:
		return "", fmt.Errorf("finding the product: no AndroidProducts.mk under device/, vendor/ or product/ declares PRODUCT_MAKEFILES; pass --product <path/to/product.mk>")
	case len(refs) > 1:
		return "", fmt.Errorf("finding the product: the tree declares %d products: %s; choose one with --product <name> (or run lunch, which sets TARGET_PRODUCT)", len(refs), strings.Join(names, ", "))
	}
	if !inTree(refs[0].Makefile) {
		return "", fmt.Errorf("finding the product: %s declares %s, which is %w", refs[0].Declared, refs[0].Makefile, ErrOutsideTree)
	}
	if !t.exists(refs[0].Makefile) {
		return "", fmt.Errorf("finding the product: %s declares %s, which does not exist", refs[0].Declared, refs[0].Makefile)
	}
	return refs[0].Makefile, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
