// Package line implements `provkit line run` (an unattended factory station) and `provkit line
// serve` (the plant's live dashboard over the ledger). The station itself is provision/line; this
// package parses flags, draws the terminal status area and prints verdict lines.
package line
