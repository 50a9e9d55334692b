package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SyncID is a sync protocol message id: four ASCII letters read as a little-endian uint32.
type SyncID uint32

func mkid(s string) SyncID { return SyncID(binary.LittleEndian.Uint32([]byte(s))) }

// Sync message ids (file_sync_protocol.h).
var (
	SyncSTAT = mkid("STAT") // lstat, v1 reply
	SyncSTA2 = mkid("STA2") // stat, v2 reply (follows symlinks)
	SyncLST2 = mkid("LST2") // lstat, v2 reply
	SyncLIST = mkid("LIST") // list a directory, DENT replies
	SyncLIS2 = mkid("LIS2") // list a directory, DNT2 replies
	SyncDENT = mkid("DENT") // v1 directory entry
	SyncDNT2 = mkid("DNT2") // v2 directory entry
	SyncSEND = mkid("SEND") // push: "path,mode" then DATA..., DONE(mtime)
	SyncSND2 = mkid("SND2") // push v2: path, then a SND2 setup (mode, flags), then DATA..., DONE
	SyncRECV = mkid("RECV") // pull: DATA..., DONE
	SyncRCV2 = mkid("RCV2") // pull v2: path, then a RCV2 setup (flags)
	SyncDONE = mkid("DONE")
	SyncDATA = mkid("DATA")
	SyncOKAY = mkid("OKAY")
	SyncFAIL = mkid("FAIL")
	SyncQUIT = mkid("QUIT")
)

// String returns the id's four letters, or its hex value when they are not printable.
func (id SyncID) String() string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(id))
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("0x%08x", uint32(id))
		}
	}
	return string(b[:])
}

// Sync protocol limits.
const (
	// SyncDataMax is the largest DATA chunk (64 KiB).
	SyncDataMax = 64 * 1024
	// SyncMaxPath is the longest path a request may carry.
	SyncMaxPath = 1024
	// SyncMaxFailMessage bounds the message of a FAIL reply.
	SyncMaxFailMessage = SyncDataMax
	// SyncMaxName bounds a directory entry's name (Linux NAME_MAX is 255; allow some slack).
	SyncMaxName = 4096
)

// SND2/RCV2 flags (sync_send_v2.flags, sync_recv_v2.flags).
const (
	SyncFlagNone   uint32 = 0
	SyncFlagBrotli uint32 = 1
	SyncFlagLZ4    uint32 = 2
	SyncFlagZstd   uint32 = 4
	SyncFlagDryRun uint32 = 0x80000000
)

// Sizes of the fixed sync records.
const (
	syncHeaderSize = 8
	statV1Size     = 16
	statV2Size     = 72
	dentV1Size     = 20
	dentV2Size     = 76
)

// ErrSyncProtocol is wrapped by errors about malformed or unexpected sync messages.
var ErrSyncProtocol = errors.New("sync protocol error")

// SyncFailError is a FAIL reply: the device's message says what went wrong.
type SyncFailError struct{ Message string }

func (e *SyncFailError) Error() string { return "device replied FAIL: " + e.Message }

// StatV1 is a v1 (STAT) reply: all zero when the path does not exist.
type StatV1 struct {
	Mode  uint32
	Size  uint32
	MTime uint32
}

// StatV2 is a v2 (STA2/LST2) reply, and the metadata of a DNT2 entry. Error is an errno (Linux
// numbering), 0 on success.
type StatV2 struct {
	Error uint32
	Dev   uint64
	Ino   uint64
	Mode  uint32
	Nlink uint32
	UID   uint32
	GID   uint32
	Size  uint64
	ATime int64
	MTime int64
	CTime int64
}

// Dent is one directory entry of a LIST (v1) reply.
type Dent struct {
	Mode  uint32
	Size  uint32
	MTime uint32
	Name  string
}

// DentV2 is one directory entry of a LIS2 reply.
type DentV2 struct {
	StatV2
	Name string
}

// Chunk is one message of a file body: a DATA chunk, or the DONE that ends it (carrying the mtime
// in a SEND; zero in a RECV).
type Chunk struct {
	Done  bool
	MTime uint32
	Data  []byte
}

// SyncRequest is a request as the device reads it.
type SyncRequest struct {
	ID   SyncID
	Path string
}

// --- writers --------------------------------------------------------------------------------

func appendHeader(b []byte, id SyncID, n uint32) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(id))
	return binary.LittleEndian.AppendUint32(b, n)
}

func write(w io.Writer, b []byte, what string) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing sync %s: %w", what, err)
	}
	return nil
}

// WriteSyncRequest writes a request: id, path length, path. QUIT takes an empty path.
func WriteSyncRequest(w io.Writer, id SyncID, path string) error {
	if len(path) > SyncMaxPath {
		return fmt.Errorf("writing sync %s request: path of %d bytes, max %d: %w", id, len(path), SyncMaxPath, ErrSyncProtocol)
	}
	return write(w, append(appendHeader(nil, id, uint32(len(path))), path...), id.String()+" request")
}

// WriteSendV2Setup writes the record that follows a SND2 request: mode and flags.
func WriteSendV2Setup(w io.Writer, mode, flags uint32) error {
	b := appendHeader(nil, SyncSND2, mode)
	return write(w, binary.LittleEndian.AppendUint32(b, flags), "SND2 setup")
}

// WriteRecvV2Setup writes the record that follows a RCV2 request: flags.
func WriteRecvV2Setup(w io.Writer, flags uint32) error {
	return write(w, appendHeader(nil, SyncRCV2, flags), "RCV2 setup")
}

// WriteData writes one DATA chunk of at most SyncDataMax bytes.
func WriteData(w io.Writer, data []byte) error {
	if len(data) > SyncDataMax {
		return fmt.Errorf("writing sync DATA of %d bytes, max %d: %w", len(data), SyncDataMax, ErrSyncProtocol)
	}
	return write(w, append(appendHeader(make([]byte, 0, syncHeaderSize+len(data)), SyncDATA, uint32(len(data))), data...), "DATA")
}

// WriteDone writes DONE: the end of a file body (mtime in a SEND, 0 in a RECV).
func WriteDone(w io.Writer, mtime uint32) error {
	return write(w, appendHeader(nil, SyncDONE, mtime), "DONE")
}

// WriteOkay writes the OKAY that ends a successful SEND.
func WriteOkay(w io.Writer) error { return write(w, appendHeader(nil, SyncOKAY, 0), "OKAY") }

// WriteFail writes FAIL with a message (truncated to SyncMaxFailMessage).
func WriteFail(w io.Writer, msg string) error {
	if len(msg) > SyncMaxFailMessage {
		msg = msg[:SyncMaxFailMessage]
	}
	return write(w, append(appendHeader(nil, SyncFAIL, uint32(len(msg))), msg...), "FAIL")
}

// WriteStatV1 writes a STAT reply.
func WriteStatV1(w io.Writer, st StatV1) error {
	b := appendHeader(nil, SyncSTAT, st.Mode)
	b = binary.LittleEndian.AppendUint32(b, st.Size)
	b = binary.LittleEndian.AppendUint32(b, st.MTime)
	return write(w, b, "STAT reply")
}

func appendStatV2(b []byte, st StatV2) []byte {
	b = binary.LittleEndian.AppendUint32(b, st.Error)
	b = binary.LittleEndian.AppendUint64(b, st.Dev)
	b = binary.LittleEndian.AppendUint64(b, st.Ino)
	b = binary.LittleEndian.AppendUint32(b, st.Mode)
	b = binary.LittleEndian.AppendUint32(b, st.Nlink)
	b = binary.LittleEndian.AppendUint32(b, st.UID)
	b = binary.LittleEndian.AppendUint32(b, st.GID)
	b = binary.LittleEndian.AppendUint64(b, st.Size)
	b = binary.LittleEndian.AppendUint64(b, uint64(st.ATime))
	b = binary.LittleEndian.AppendUint64(b, uint64(st.MTime))
	return binary.LittleEndian.AppendUint64(b, uint64(st.CTime))
}

// WriteStatV2 writes a STA2 or LST2 reply (id says which request it answers).
func WriteStatV2(w io.Writer, id SyncID, st StatV2) error {
	if id != SyncSTA2 && id != SyncLST2 {
		return fmt.Errorf("writing v2 stat reply with id %s: %w", id, ErrSyncProtocol)
	}
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, statV2Size), uint32(id))
	return write(w, appendStatV2(b, st), id.String()+" reply")
}

// WriteDent writes one LIST entry.
func WriteDent(w io.Writer, d Dent) error {
	b := appendHeader(nil, SyncDENT, d.Mode)
	b = binary.LittleEndian.AppendUint32(b, d.Size)
	b = binary.LittleEndian.AppendUint32(b, d.MTime)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d.Name)))
	return write(w, append(b, d.Name...), "DENT")
}

// WriteDentV2 writes one LIS2 entry.
func WriteDentV2(w io.Writer, d DentV2) error {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, dentV2Size+len(d.Name)), uint32(SyncDNT2))
	b = appendStatV2(b, d.StatV2)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d.Name)))
	return write(w, append(b, d.Name...), "DNT2")
}

// WriteListDone ends a LIST (v2=false) or LIS2 (v2=true) reply: a DONE record the size of an entry.
func WriteListDone(w io.Writer, v2 bool) error {
	n := dentV1Size
	if v2 {
		n = dentV2Size
	}
	b := make([]byte, n)
	binary.LittleEndian.PutUint32(b, uint32(SyncDONE))
	return write(w, b, "list DONE")
}

// --- reader ---------------------------------------------------------------------------------

// SyncReader decodes sync messages from one stream, for either side. Every length read from the
// stream is checked against the protocol's limits before anything is allocated. Data slices it
// returns are valid until the next call.
type SyncReader struct {
	r   io.Reader
	off int64
	buf []byte
}

// NewSyncReader returns a SyncReader over r.
func NewSyncReader(r io.Reader) *SyncReader { return &SyncReader{r: r} }

// Offset returns the number of bytes consumed so far.
func (s *SyncReader) Offset() int64 { return s.off }

func (s *SyncReader) readFull(n int, what string) ([]byte, error) {
	if cap(s.buf) < n {
		s.buf = make([]byte, n, max(n, 256))
	}
	b := s.buf[:n]
	got, err := io.ReadFull(s.r, b)
	s.off += int64(got)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if got == 0 && err == io.EOF && what == "request" {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("reading sync %s at offset %d: got %d of %d bytes: %w", what, s.off-int64(got), got, n, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("reading sync %s at offset %d: %w", what, s.off-int64(got), err)
	}
	return b, nil
}

func (s *SyncReader) header(what string) (SyncID, uint32, error) {
	b, err := s.readFull(syncHeaderSize, what)
	if err != nil {
		return 0, 0, err
	}
	return SyncID(binary.LittleEndian.Uint32(b)), binary.LittleEndian.Uint32(b[4:]), nil
}

func (s *SyncReader) fail(n uint32, at int64) error {
	if n > SyncMaxFailMessage {
		return fmt.Errorf("reading sync FAIL at offset %d: message of %d bytes, max %d: %w", at, n, SyncMaxFailMessage, ErrSyncProtocol)
	}
	b, err := s.readFull(int(n), "FAIL message")
	if err != nil {
		return err
	}
	return &SyncFailError{Message: string(b)}
}

// ReadRequest reads a request as the device does. It returns io.EOF when the stream ends cleanly
// between requests. Requests other than the known ones are an error.
func (s *SyncReader) ReadRequest() (SyncRequest, error) {
	at := s.off
	id, n, err := s.header("request")
	if err != nil {
		return SyncRequest{}, err
	}
	switch id {
	case SyncSTAT, SyncSTA2, SyncLST2, SyncLIST, SyncLIS2, SyncSEND, SyncSND2, SyncRECV, SyncRCV2, SyncQUIT:
	default:
		return SyncRequest{}, fmt.Errorf("reading sync request at offset %d: unknown id %s: %w", at, id, ErrSyncProtocol)
	}
	if n > SyncMaxPath {
		return SyncRequest{}, fmt.Errorf("reading sync %s request at offset %d: path of %d bytes, max %d: %w", id, at, n, SyncMaxPath, ErrSyncProtocol)
	}
	p, err := s.readFull(int(n), id.String()+" path")
	if err != nil {
		return SyncRequest{}, err
	}
	return SyncRequest{ID: id, Path: string(p)}, nil
}

// ReadSendV2Setup reads the record that follows a SND2 request.
func (s *SyncReader) ReadSendV2Setup() (mode, flags uint32, err error) {
	at := s.off
	b, err := s.readFull(12, "SND2 setup")
	if err != nil {
		return 0, 0, err
	}
	if id := SyncID(binary.LittleEndian.Uint32(b)); id != SyncSND2 {
		return 0, 0, fmt.Errorf("reading SND2 setup at offset %d: id %s: %w", at, id, ErrSyncProtocol)
	}
	return binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:]), nil
}

// ReadRecvV2Setup reads the record that follows a RCV2 request.
func (s *SyncReader) ReadRecvV2Setup() (flags uint32, err error) {
	at := s.off
	id, flags, err := s.header("RCV2 setup")
	if err != nil {
		return 0, err
	}
	if id != SyncRCV2 {
		return 0, fmt.Errorf("reading RCV2 setup at offset %d: id %s: %w", at, id, ErrSyncProtocol)
	}
	return flags, nil
}

// ReadChunk reads one message of a file body: DATA (at most SyncDataMax bytes) or DONE. A FAIL
// (a device refusing a RECV) is returned as *SyncFailError.
func (s *SyncReader) ReadChunk() (Chunk, error) {
	at := s.off
	id, n, err := s.header("file chunk")
	if err != nil {
		return Chunk{}, err
	}
	switch id {
	case SyncDATA:
		if n > SyncDataMax {
			return Chunk{}, fmt.Errorf("reading sync DATA at offset %d: %d bytes, max %d: %w", at, n, SyncDataMax, ErrSyncProtocol)
		}
		b, err := s.readFull(int(n), "DATA")
		if err != nil {
			return Chunk{}, err
		}
		return Chunk{Data: b}, nil
	case SyncDONE:
		return Chunk{Done: true, MTime: n}, nil
	case SyncFAIL:
		return Chunk{}, s.fail(n, at)
	}
	return Chunk{}, fmt.Errorf("reading sync file chunk at offset %d: unexpected id %s: %w", at, id, ErrSyncProtocol)
}

// ReadStatus reads the reply that ends a SEND: nil for OKAY, *SyncFailError for FAIL.
func (s *SyncReader) ReadStatus() error {
	at := s.off
	id, n, err := s.header("status")
	if err != nil {
		return err
	}
	switch id {
	case SyncOKAY:
		return nil
	case SyncFAIL:
		return s.fail(n, at)
	}
	return fmt.Errorf("reading sync status at offset %d: unexpected id %s: %w", at, id, ErrSyncProtocol)
}

// ReadStatV1 reads a STAT reply.
func (s *SyncReader) ReadStatV1() (StatV1, error) {
	at := s.off
	b, err := s.readFull(statV1Size, "STAT reply")
	if err != nil {
		return StatV1{}, err
	}
	if id := SyncID(binary.LittleEndian.Uint32(b)); id != SyncSTAT {
		return StatV1{}, fmt.Errorf("reading STAT reply at offset %d: id %s: %w", at, id, ErrSyncProtocol)
	}
	return StatV1{Mode: binary.LittleEndian.Uint32(b[4:]), Size: binary.LittleEndian.Uint32(b[8:]), MTime: binary.LittleEndian.Uint32(b[12:])}, nil
}

func decodeStatV2(b []byte) StatV2 {
	le := binary.LittleEndian
	return StatV2{
		Error: le.Uint32(b[0:]), Dev: le.Uint64(b[4:]), Ino: le.Uint64(b[12:]), Mode: le.Uint32(b[20:]),
		Nlink: le.Uint32(b[24:]), UID: le.Uint32(b[28:]), GID: le.Uint32(b[32:]), Size: le.Uint64(b[36:]),
		ATime: int64(le.Uint64(b[44:])), MTime: int64(le.Uint64(b[52:])), CTime: int64(le.Uint64(b[60:])),
	}
}

// ReadStatV2 reads a STA2 or LST2 reply; want is the request's id.
func (s *SyncReader) ReadStatV2(want SyncID) (StatV2, error) {
	at := s.off
	b, err := s.readFull(statV2Size, want.String()+" reply")
	if err != nil {
		return StatV2{}, err
	}
	if id := SyncID(binary.LittleEndian.Uint32(b)); id != want {
		return StatV2{}, fmt.Errorf("reading %s reply at offset %d: id %s: %w", want, at, id, ErrSyncProtocol)
	}
	return decodeStatV2(b[4:]), nil
}

func (s *SyncReader) name(n uint32, at int64) (string, error) {
	if n > SyncMaxName {
		return "", fmt.Errorf("reading directory entry at offset %d: name of %d bytes, max %d: %w", at, n, SyncMaxName, ErrSyncProtocol)
	}
	b, err := s.readFull(int(n), "entry name")
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ReadDent reads one LIST reply record: an entry, or done=true at the end of the listing.
func (s *SyncReader) ReadDent() (d Dent, done bool, err error) {
	at := s.off
	b, err := s.readFull(dentV1Size, "DENT")
	if err != nil {
		return Dent{}, false, err
	}
	le := binary.LittleEndian
	switch id := SyncID(le.Uint32(b)); id {
	case SyncDONE:
		return Dent{}, true, nil
	case SyncDENT:
	default:
		return Dent{}, false, fmt.Errorf("reading LIST reply at offset %d: id %s: %w", at, id, ErrSyncProtocol)
	}
	d = Dent{Mode: le.Uint32(b[4:]), Size: le.Uint32(b[8:]), MTime: le.Uint32(b[12:])}
	d.Name, err = s.name(le.Uint32(b[16:]), at)
	return d, false, err
}

// ReadDentV2 reads one LIS2 reply record: an entry, or done=true at the end of the listing.
func (s *SyncReader) ReadDentV2() (d DentV2, done bool, err error) {
	at := s.off
	b, err := s.readFull(dentV2Size, "DNT2")
	if err != nil {
		return DentV2{}, false, err
	}
	le := binary.LittleEndian
	switch id := SyncID(le.Uint32(b)); id {
	case SyncDONE:
		return DentV2{}, true, nil
	case SyncDNT2:
	default:
		return DentV2{}, false, fmt.Errorf("reading LIS2 reply at offset %d: id %s: %w", at, id, ErrSyncProtocol)
	}
	d = DentV2{StatV2: decodeStatV2(b[4:])}
	d.Name, err = s.name(le.Uint32(b[72:]), at)
	return d, false, err
}

// SendV1Path returns the argument of a v1 SEND request: "path,mode" with mode in decimal (the file
// type bits included, as adb sends them).
func SendV1Path(path string, mode uint32) string { return fmt.Sprintf("%s,%d", path, mode) }

// ParseSendV1Path splits a v1 SEND argument into path and mode. adbd splits at the last comma, so a
// path may itself contain commas.
func ParseSendV1Path(arg string) (path string, mode uint32, err error) {
	i := strings.LastIndexByte(arg, ',')
	if i < 0 {
		return "", 0, fmt.Errorf("parsing SEND argument %q: no \",mode\": %w", arg, ErrSyncProtocol)
	}
	m, err := strconv.ParseUint(arg[i+1:], 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("parsing SEND argument %q: mode: %w: %w", arg, ErrSyncProtocol, err)
	}
	return arg[:i], uint32(m), nil
}
