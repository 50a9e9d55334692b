package cmdutil

import (
	"fmt"

	"github.com/spf13/cobra"
)

// ExactArgs is cobra.ExactArgs returning a usage error (exit 2).
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return FlagErrorf("%s takes exactly %s (%s), got %d; see '%s --help'", cmd.CommandPath(), Count(n, "argument", "arguments"), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}

// MinimumArgs is cobra.MinimumNArgs returning a usage error (exit 2).
func MinimumArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return FlagErrorf("%s needs at least %s (%s); see '%s --help'", cmd.CommandPath(), Count(n, "argument", "arguments"), what, cmd.CommandPath())
		}
		return nil
	}
}

// NoArgs is cobra.NoArgs returning a usage error (exit 2).
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("%s takes no arguments, got %q; see '%s --help'", cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return nil
}

// GroupCommand makes cmd (a command that only holds subcommands) print its help when run bare and
// fail with a usage error when given an unknown subcommand.
func GroupCommand(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return FlagErrorf("unknown command %q for %q; see '%s --help'", args[0], c.CommandPath(), c.CommandPath())
		}
		return c.Help()
	}
	return cmd
}

// ExitStatus formats the EXIT STATUS block that ends every command's help. Each line is "code
// meaning".
func ExitStatus(lines ...string) string {
	s := "\nEXIT STATUS\n"
	for _, l := range lines {
		s += "  " + l + "\n"
	}
	return s
}

// Unique returns ss without repeats, in first-seen order: a device named twice on the command
// line is handled, and counted, once.
func Unique(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Count is n with the noun that agrees with it: Count(1, "rule", "rules") is "1 rule",
// Count(2, "rule", "rules") "2 rules". Every summary line counts with it.
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
