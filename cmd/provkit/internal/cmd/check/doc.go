// Package check implements `provkit check`: validate devices against a preinstall policy, many at
// once, and print a verdict per device (table, CSV or JSON).
package check
