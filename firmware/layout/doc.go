// Package layout places the read-only partitions of an Android firmware image where a running
// device mounts them, so that "/system/app/Foo/Foo.apk" or "/product/etc/permissions" can be found
// from the partitions' file systems without knowing how each image was built.
//
// Terms:
//
//   - partition file system: the fs.FS of one partition image as built (firmware/ext4 or
//     firmware/erofs over the partition's bytes), keyed by partition name (system, vendor, ...).
//   - mount point: where the device mounts a partition: /system, /system_ext, /product, /vendor,
//     /odm, /oem, /vendor_dlkm, /system_dlkm, /odm_dlkm.
//   - system-as-root (SAR): since Android 10 (and on A/B devices since 9) the system partition is
//     the root file system; its /system directory is what the device calls /system. A system
//     partition whose root has system/build.prop (or a system directory and no build.prop) is
//     system-as-root.
//   - nested partition: a device without a separate product, system_ext or vendor partition keeps
//     it as a directory of system (/system/product, /system/system_ext, /system/vendor); a device
//     without odm keeps it in vendor (/vendor/odm). A symbolic link there means the partition is
//     separate, and is not followed.
//   - device path: an absolute path as on the device ("/product/app/X/X.apk"); Resolve maps it to
//     a partition and a path inside that partition's mount point.
//
// Tree also loads the build.prop files in init's order (package buildprop) to name the build.
package layout
