// Package selinux reads SELinux file_contexts files (the text form Android ships as
// etc/selinux/plat_file_contexts, product_file_contexts, vendor_file_contexts, ...) and answers
// "which label does this path get", the way libselinux's file backend (selabel_lookup) does.
//
// Terms:
//
//   - spec: one line "<regex> [<file type>] <context>". The regex is POSIX/PCRE-style and anchored at
//     both ends (it must match the whole path). The optional file type restricts the spec to one kind
//     of file: "--" regular file, "-d" directory, "-l" symlink, "-c" character device, "-b" block
//     device, "-s" socket, "-p" FIFO. The context "<<none>>" means "leave unlabelled".
//   - meta characters: . ^ $ ? * + | [ ( { (a backslash escapes the next character). A spec without
//     any is a literal path.
//
// Lookup order (libselinux's sort_specs + lookup): literal specs are moved after the regex specs,
// each group keeping file order; the list is then searched from its end, and the first spec whose
// regex matches the whole path and whose file type fits wins. So a literal path beats any regex, and
// among regexes the last one in the file (or the last file loaded) wins.
package selinux
