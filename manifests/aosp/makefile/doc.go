// Package makefile scans GNU make files as AOSP uses them (product makefiles, AndroidProducts.mk,
// Android.mk) precisely enough to find statements and edit them without disturbing anything else.
//
// It is a scanner, not an interpreter: it splits a file into statements the way GNU make reads
// them and records where each one sits, byte for byte, so that an editor can insert or remove whole
// lines and leave every other byte as it was. Expansion of the few functions product makefiles use
// in paths and package lists is offered by Expand; anything it cannot expand is reported as
// unknown rather than guessed.
//
// Terms:
//   - Physical line: one line of the file, ending with "\n" (or the end of the file).
//   - Logical line: one or more physical lines joined by backslash-newline continuations. As in GNU
//     make, a line continues only when it ends with an odd number of backslashes immediately before
//     the newline: "a \   " followed by spaces is NOT continued (make keeps the backslash), and the
//     scanner reports such lines in Warnings because they are almost always a mistake.
//   - Statement (Stmt): one logical line classified as make classifies it: an assignment
//     (=, :=, ::=, ?=, +=, !=), a directive (ifeq/ifneq/ifdef/ifndef/else/endif, include/-include/
//     sinclude, export, ...), a define...endef block, a rule, a recipe line (a tab-led line that
//     follows a rule), an expression line such as "$(call inherit-product, ...)", a comment or a
//     blank line.
//   - Conditional context (Stmt.Cond): the chain of enclosing conditionals of a statement and the
//     branch of each it sits in, so a caller can tell an unconditional "PRODUCT_PACKAGES +=" from one
//     under "ifeq".
//
// A file that GNU make itself would reject for its structure (an endif without if, a missing endif,
// an unterminated define, unbalanced parentheses, a line that is neither an assignment nor a rule)
// is rejected with a *SyntaxError naming file:line and what was expected.
package makefile
