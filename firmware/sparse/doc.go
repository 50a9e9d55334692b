// Package sparse reads and writes Android sparse images, the format of libsparse (`img2simg`,
// `simg2img`, fastboot) described in AOSP's `sparse_format.h`.
//
// Terms:
//
//   - A sparse image is a file header followed by chunks. It describes an expanded (raw) image of
//     TotalBlocks blocks of BlockSize bytes.
//   - The file header records its own size (FileHeaderSize, 28 in version 1.0) and the chunk header
//     size (ChunkHeaderSize, 12); longer headers are allowed and their extra bytes skipped.
//   - A chunk covers a run of whole blocks of the expanded image. A RAW chunk carries the bytes; a
//     FILL chunk carries one 4-byte pattern repeated over its blocks; a DONT_CARE chunk carries
//     nothing and reads as zeros; a CRC32 chunk covers no blocks and carries the CRC-32 (IEEE) of the
//     whole expanded image up to that point, DONT_CARE blocks counted as zeros.
//
// Open indexes the chunk headers once (reading nothing else) and returns an Image: an io.ReaderAt
// over the expanded image that reads only the RAW bytes a caller asks for, and serves FILL and
// DONT_CARE chunks without allocation. CRC32 chunks can only be checked by reading everything in
// order: WriteTo and Verify do that. Write produces a sparse image from a raw one the way img2simg
// does (whole blocks of one repeated 32-bit word become FILL chunks) so that simg2img accepts it
// and expands it back byte for byte.
package sparse
