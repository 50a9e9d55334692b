// Package ls implements "provkit image ls": list the partitions of a firmware image, or the files
// of a directory inside one, without mounting or expanding anything.
package ls
