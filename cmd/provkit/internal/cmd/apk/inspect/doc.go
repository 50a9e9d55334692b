// Package inspect is "provkit apk inspect": it prints what an APK says about itself (package,
// versions, SDK levels, requested permissions, native ABIs, signer certificates) without a verdict.
package inspect
