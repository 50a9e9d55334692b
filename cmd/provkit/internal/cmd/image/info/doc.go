// Package info implements "provkit image info": what a firmware image is made of (input kind,
// partitions and their formats and sizes), the build fingerprint from its build.prop files, and
// its AVB state (which partitions no longer match their vbmeta).
package info
