// Package unidiff renders the difference between two texts as a unified diff, the format
// `diff -u` and `git diff` print and `patch` applies, so a reviewer can read provkit's changes to a
// build tree before anything is written.
//
// Terms:
//   - Hunk: a run of changed lines with up to Context unchanged lines around it, introduced by
//     "@@ -a,b +c,d @@" where a/c are 1-based start lines and b/d line counts in the old/new text.
//   - Edit script: the shortest sequence of line deletions and insertions turning old into new
//     (Myers' O(ND) algorithm).
package unidiff
