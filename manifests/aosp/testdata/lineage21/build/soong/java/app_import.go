// Stand-in for Soong's java/app_import.go: provkit only checks that it exists (the Soong of the
// tree knows android_app_import), it never reads it.
package java
