// Package unsparse implements "provkit image unsparse": expand an Android sparse image to a raw
// image as simg2img does.
package unsparse
