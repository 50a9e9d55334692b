// Package blueprint parses Blueprint files (Android.bp), the module definitions Soong builds from,
// into a syntax tree that keeps the byte offset of everything, so provkit can find modules and
// their properties and add text without disturbing a byte of the rest.
//
// Terms:
//   - Module: "type { prop: value, ... }", e.g. android_app_import { name: "Max", ... }. Its name is
//     the string of its "name" property.
//   - Property: "name: value" inside a module or a map; a trailing comma is allowed.
//   - Assignment: a file-level variable, "name = value" or "name += value", usable by name later.
//   - Value (Expr): a string ("..." or `...`), an integer, true/false, a list [a, b,], a map
//     { k: v, }, a variable reference, a "+" concatenation of values of one type, "unset", or a
//     Soong select(condition, { pattern: value, ... }).
//   - soong_namespace: a module type with no name that makes its directory a Soong namespace;
//     modules below it are visible to products only when the directory is listed in
//     PRODUCT_SOONG_NAMESPACES.
//
// Comments ("//" to the end of the line, "/* ... */") are kept in File.Comments with their offsets.
// A file that is not valid Blueprint gets a *SyntaxError naming file:line:column and what was
// expected there; the parser never guesses.
package blueprint
