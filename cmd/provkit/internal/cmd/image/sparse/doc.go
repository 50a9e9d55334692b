// Package sparse implements "provkit image sparse": convert a raw image to an Android sparse image
// as img2simg does.
package sparse
