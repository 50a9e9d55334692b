// Package audit implements "provkit image audit": judge a firmware image (partition image, super
// image, factory zip, OTA payload or a directory of images) against a preinstall policy and print
// the verdict with its evidence.
package audit
