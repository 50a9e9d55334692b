// Package termtext makes untrusted text safe to show on a terminal. A string that came from a phone
// (a build fingerprint, a model name, an error a device sent), an image or a policy may hold control
// characters and escape sequences that would erase lines, move the cursor, set the window title or
// hide text; Visible turns every such character into a visible escape (`\x1b`, `\n`, `\u202e`) so
// that what a person reads is what the string holds. It is for human output only: JSON and CSV
// writers encode for their own languages.
package termtext
