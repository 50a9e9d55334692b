package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/provkit/provkit/cmd/provkit/internal/iostreams"
	"github.com/provkit/provkit/cmd/provkit/internal/root"
)

// Command is how a developer regenerates the pages; the drift test quotes it.
const Command = "go run ./cmd/provkit/internal/gendocs"

// manDate is the date in every man page's footer. It is fixed so that regenerating produces the
// same bytes on any day; the version line of "provkit --version" is what identifies a build.
var manDate = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("out", "docs", "`<dir>` that receives cli/ and man/")
	flag.Parse()
	if err := Generate(*out); err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %v\n", err)
		os.Exit(1)
	}
}

// Generate writes dir/cli/*.md and dir/man/*.1, removing pages of commands that no longer exist.
func Generate(dir string) error {
	cliDir, manDir := filepath.Join(dir, "cli"), filepath.Join(dir, "man")
	for _, d := range []string{cliDir, manDir} {
		if err := clean(d); err != nil {
			return err
		}
	}
	if err := doc.GenMarkdownTreeCustom(tree(nil), cliDir, func(string) string { return "" }, func(name string) string { return name }); err != nil {
		return fmt.Errorf("writing markdown pages: %w", err)
	}
	hdr := &doc.GenManHeader{Title: "PROVKIT", Section: "1", Source: "provkit", Manual: "provkit manual", Date: &manDate}
	if err := doc.GenManTree(tree(manText), hdr, manDir); err != nil {
		return fmt.Errorf("writing man pages: %w", err)
	}
	return nil
}

// tree is provkit's command tree as the reference shows it, without a "generated on <date>"
// footer. A non-nil text rewrites each command's Use, Short and Long (the man pages pass them
// through a Markdown renderer).
func tree(text func(string) string) *cobra.Command {
	ios, _, _, _ := iostreams.Test()
	cmd := root.NewCmdRoot(ios)
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		if text != nil {
			c.Use, c.Short, c.Long = text(c.Use), text(c.Short), text(c.Long)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(cmd)
	return cmd
}

// clean creates d, or removes the generated pages already in it (provkit*.md, provkit*.1) so a
// removed command's page disappears too.
func clean(d string) error {
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(d)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "provkit") && (strings.HasSuffix(n, ".md") || strings.HasSuffix(n, ".1")) {
			if err := os.Remove(filepath.Join(d, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// manText makes plain help text survive the Markdown renderer behind the man pages: "<file>"
// placeholders are not taken for HTML tags nor "*"/"_" for emphasis, and indented lines (the EXIT
// STATUS block, lists of examples) stay lines instead of being joined into one paragraph.
func manText(s string) string {
	esc := strings.NewReplacer(`\`, `\\`, "<", `\<`, ">", `\>`, "*", `\*`, "_", `\_`, "`", "\\`")
	lines := strings.Split(s, "\n")
	var b strings.Builder
	inBlock := false
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		indented := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		switch {
		case indented && strings.TrimSpace(l) != "":
			if !inBlock && i > 0 && strings.TrimSpace(lines[i-1]) != "" {
				b.WriteByte('\n')
			}
			inBlock = true
			b.WriteString("    " + l)
		default:
			if inBlock && strings.TrimSpace(l) != "" {
				b.WriteByte('\n')
			}
			inBlock = inBlock && strings.TrimSpace(l) == ""
			b.WriteString(esc.Replace(l))
		}
	}
	return b.String()
}
