// Package samplefacts is for tests only: it loads firmware/testdata/samples/facts.tsv, the facts that
// independent decoders read from the real firmware samples (one row: file, key, value), and checks the
// provenance rows every sample carries (size, sha256, git blob id, source repository and licence), so
// that each format package's table test can assert every fact of the files it owns. LoadFile reads
// other files of the same format (package sparse keeps its own samples' facts beside them).
//
// Terms: a sample is one real artifact under testdata/samples, named by its path relative to that
// directory (e.g. "aosp-system-core/super.img"); a fact is one row of facts.tsv about a sample.
package samplefacts
