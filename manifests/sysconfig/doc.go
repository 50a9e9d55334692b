// Package sysconfig reads the XML configuration files Android's system server reads from the
// read-only partitions at boot, as firmware images carry them:
//
//   - SystemConfig files (etc/permissions/*.xml and etc/sysconfig/*.xml, root element
//     <permissions> or <config>): <privapp-permissions package> with <permission name> and
//     <deny-permission name> children (the privileged-permission allowlist), and
//     <install-in-user-type package> with <install-in user-type> and <do-not-install-in
//     user-type> children (which user types a preinstalled package is installed for, the
//     "preinstalled-packages" sysconfig files).
//   - default-permissions files (etc/default-permissions/*.xml, <exceptions> with <exception
//     package> and <permission name fixed whitelisted> children): runtime permissions granted to
//     a system app on first boot by DefaultPermissionGrantPolicy.
//
// ParseConfig and ParseDefaultPermissions read as the platform does (for the image audit);
// Packages lists the elements of either kind of file that name a package, strictly (for provkit
// patch, which scans a build tree's permission files before adding its own).
//
// Terms:
//
//   - entry: one element the platform acts on, with the file and line it was read from, so every
//     verdict can point at the line that decides it.
//   - problem: something the platform would skip or stop at, as "file:line: what". Like Android's
//     pull parser, reading stops at the first XML syntax error and keeps the entries before it; a
//     file whose root is not <permissions> or <config> contributes nothing (SystemConfig throws).
//
// The XML is read with encoding/xml in strict mode: comments, processing instructions, CDATA,
// character references and single-quoted attributes are handled; files over MaxFileSize and
// elements nested deeper than MaxDepth are refused.
package sysconfig
