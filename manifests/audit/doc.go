// Package audit gathers the facts a preinstall policy judges from a firmware tree — the file
// systems of its partitions, keyed by partition name — and judges them with manifests/policy. It
// knows nothing of image formats: firmware/image (or a directory on disk, or a test's fstest.MapFS)
// provides the file systems.
//
// What it reads, as the platform reads it at boot:
//
//   - the packages: every APK in the priv-app and app directories of system, vendor, odm, oem,
//     product and system_ext (an APK file, or a directory holding one), identified by the package
//     name in its manifest, never by file name; their order is PackageManager's scan order
//     (partitions as PackagePartitions lists them, priv-app before app), which decides which copy
//     of a duplicated package the platform keeps;
//   - the platform's permission definitions (/system/framework/framework-res.apk), to know which
//     requested permissions are privileged;
//   - SystemConfig files (etc/permissions, etc/sysconfig) of each partition: privapp-permissions
//     apply to the privileged apps of the same partition (vendor and odm together), as
//     SystemConfig keeps them apart; install-in-user-type from any partition;
//   - default-permissions files (etc/default-permissions) of system, vendor, odm, product and
//     system_ext;
//   - build.prop files in init's order, for the build fingerprint and
//     ro.control_privapp_permissions.
//
// Terms:
//
//   - copy: one APK on the image declaring a package. The used copy is the first in scan order.
//   - evidence: for each app, the partition, device path, SHA-256 and size of the used copy's
//     APK, its signers (certificate SHA-256), lineage, versionCode; for the image, the build
//     fingerprint and where it comes from; every rule with its result and detail.
//
// What a built image cannot show, and is therefore not judged: Soong/Make `overrides` that
// removed a package at build time (the package is simply absent, which app-present reports),
// runtime state (user-disabled apps, updates in /data), resource overlays that change
// config_userTypePackageWhitelistMode, and privapp files in /apex.
package audit
