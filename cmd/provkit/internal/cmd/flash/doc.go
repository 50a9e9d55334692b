// Package flash is the "provkit flash" command: flags to options, then provision/flash does the work.
package flash
