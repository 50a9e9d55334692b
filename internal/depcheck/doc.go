// Package depcheck holds no code, only a test that enforces the layering of DESIGN.md: the domain
// floors (firmware, manifests, provision) never import cobra or a progress-bar library, never write
// to os.Stdout, never exit the process; firmware never imports manifests or provision, and manifests
// never imports provision.
package depcheck
