// Package iostreams is the command layer's view of the terminal: where data goes (Out), where
// progress, logs and errors go (ErrOut), and whether each is a terminal. Commands receive an
// *IOStreams instead of touching os.Stdout, so tests can run them against buffers (see Test).
package iostreams
