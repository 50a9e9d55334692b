// Package sim is the `provkit sim` command: it starts simulated Android devices on loopback (see
// provision/sim), prints where they listen, and serves until interrupted.
package sim
