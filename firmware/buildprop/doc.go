// Package buildprop reads Android build.prop files (the property files init loads at boot) and
// works out the build fingerprint the way init does, so `provkit image info` and the image audit
// can name the build an image holds without booting it.
//
// Terms:
//
//   - property file: lines of "key=value"; blank lines and lines starting with '#' are ignored;
//     whitespace around key and value is dropped; "import <path> [filter]" pulls in another file
//     (recorded, not followed: the path is a device path).
//   - load order: init loads /system/build.prop, then system_ext, system_dlkm, vendor (default.prop
//     and build.prop), vendor_dlkm, odm_dlkm, odm and product, each from <partition>/etc/build.prop
//     (or the legacy <partition>/default.prop and build.prop). A later file overrides an earlier
//     one, "ro." properties included (PropertyLoadBootDefaults).
//   - fingerprint: ro.build.fingerprint. Since Android 11 it is usually not written in any file;
//     init derives it as brand/name/device:release/id/incremental:type/tags from ro.product.*
//     (themselves filled from ro.product.<partition>.* in ro.product.property_source_order) and
//     ro.build.*. Each partition also carries its own ro.<partition>.build.fingerprint.
//
// Parsing never fails on content: malformed lines are reported as problems with their line number.
// Files are bounded (MaxFileSize) so a hostile image cannot make the reader allocate without limit.
package buildprop
