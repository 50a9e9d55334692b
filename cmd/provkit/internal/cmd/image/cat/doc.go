// Package cat implements "provkit image cat": write a file from inside a firmware image to stdout.
package cat
