// Package testpg starts a real PostgreSQL server for tests: Debian's initdb into a fresh
// temporary directory, run as an unprivileged user (PostgreSQL refuses to run as root; under root
// the server runs as "nobody" through runuser), listening only on a unix socket in that
// directory, stopped and removed by Stop. Each test gets its own database on the shared server.
//
// A missing PostgreSQL skips the test, or fails it under PROVKIT_REQUIRE_TOOLS=1 (see
// internal/testtool).
package testpg
