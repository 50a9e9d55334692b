package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestSyncIDs(t *testing.T) {
	// The ids are the ASCII letters read little-endian (MKID in file_sync_protocol.h).
	if uint32(SyncSTAT) != 0x54415453 || uint32(SyncDATA) != 0x41544144 || uint32(SyncDNT2) != 0x32544e44 {
		t.Fatalf("ids: %#x %#x %#x", uint32(SyncSTAT), uint32(SyncDATA), uint32(SyncDNT2))
	}
	if SyncRCV2.String() != "RCV2" || SyncID(0x01020304).String() != "0x01020304" {
		t.Fatal(SyncRCV2.String(), SyncID(0x01020304).String())
	}
}

// TestSyncConversation plays a push, a pull, a stat and a listing through the writers of one side
// and the reader of the other.
func TestSyncConversation(t *testing.T) {
	var host bytes.Buffer // host -> device
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(WriteSyncRequest(&host, SyncSTA2, "/data/local/tmp/x"))
	must(WriteSyncRequest(&host, SyncSEND, SendV1Path("/data/local/tmp/a,b.txt", 0100644)))
	must(WriteData(&host, []byte("hello ")))
	must(WriteData(&host, []byte("world")))
	must(WriteDone(&host, 1700000000))
	must(WriteSyncRequest(&host, SyncSND2, "/sdcard/y"))
	must(WriteSendV2Setup(&host, 0100600, SyncFlagNone))
	must(WriteDone(&host, 5))
	must(WriteSyncRequest(&host, SyncRCV2, "/system/app/A/A.apk"))
	must(WriteRecvV2Setup(&host, SyncFlagNone))
	must(WriteSyncRequest(&host, SyncQUIT, ""))

	d := NewSyncReader(&host)
	req, err := d.ReadRequest()
	must(err)
	if req.ID != SyncSTA2 || req.Path != "/data/local/tmp/x" {
		t.Fatalf("%+v", req)
	}
	req, err = d.ReadRequest()
	must(err)
	path, mode, err := ParseSendV1Path(req.Path)
	must(err)
	if req.ID != SyncSEND || path != "/data/local/tmp/a,b.txt" || mode != 0100644 {
		t.Fatalf("%+v %q %o", req, path, mode)
	}
	var body []byte
	for {
		c, err := d.ReadChunk()
		must(err)
		if c.Done {
			if c.MTime != 1700000000 {
				t.Fatalf("mtime %d", c.MTime)
			}
			break
		}
		body = append(body, c.Data...)
	}
	if string(body) != "hello world" {
		t.Fatalf("body %q", body)
	}
	req, err = d.ReadRequest()
	must(err)
	mode, flags, err := d.ReadSendV2Setup()
	must(err)
	if req.ID != SyncSND2 || mode != 0100600 || flags != 0 {
		t.Fatalf("%+v %o %d", req, mode, flags)
	}
	if c, err := d.ReadChunk(); err != nil || !c.Done || c.MTime != 5 {
		t.Fatalf("%+v %v", c, err)
	}
	req, err = d.ReadRequest()
	must(err)
	if _, err := d.ReadRecvV2Setup(); err != nil || req.ID != SyncRCV2 {
		t.Fatalf("%+v %v", req, err)
	}
	if req, err := d.ReadRequest(); err != nil || req.ID != SyncQUIT {
		t.Fatalf("%+v %v", req, err)
	}
	if _, err := d.ReadRequest(); err != io.EOF {
		t.Fatalf("after QUIT: %v", err)
	}

	var dev bytes.Buffer // device -> host
	st := StatV2{Dev: 1, Ino: 2, Mode: 0100644, Nlink: 1, UID: 1000, GID: 1000, Size: 1 << 33, ATime: -1, MTime: 3, CTime: 4}
	must(WriteStatV2(&dev, SyncSTA2, st))
	must(WriteStatV1(&dev, StatV1{Mode: 040755, Size: 4096, MTime: 9}))
	must(WriteDent(&dev, Dent{Mode: 0100644, Size: 3, MTime: 7, Name: "a.apk"}))
	must(WriteListDone(&dev, false))
	must(WriteDentV2(&dev, DentV2{StatV2: st, Name: "b"}))
	must(WriteListDone(&dev, true))
	must(WriteData(&dev, []byte("apk")))
	must(WriteDone(&dev, 0))
	must(WriteOkay(&dev))
	must(WriteFail(&dev, "secure_mkdirs() failed: Permission denied"))

	h := NewSyncReader(&dev)
	if got, err := h.ReadStatV2(SyncSTA2); err != nil || got != st {
		t.Fatalf("stat v2: %+v %v", got, err)
	}
	if got, err := h.ReadStatV1(); err != nil || got.Mode != 040755 || got.Size != 4096 {
		t.Fatalf("stat v1: %+v %v", got, err)
	}
	if e, done, err := h.ReadDent(); err != nil || done || e.Name != "a.apk" || e.Size != 3 {
		t.Fatalf("dent: %+v %v %v", e, done, err)
	}
	if _, done, err := h.ReadDent(); err != nil || !done {
		t.Fatalf("dent done: %v %v", done, err)
	}
	if e, done, err := h.ReadDentV2(); err != nil || done || e.Name != "b" || e.StatV2 != st {
		t.Fatalf("dnt2: %+v %v %v", e, done, err)
	}
	if _, done, err := h.ReadDentV2(); err != nil || !done {
		t.Fatalf("dnt2 done: %v %v", done, err)
	}
	if c, err := h.ReadChunk(); err != nil || string(c.Data) != "apk" {
		t.Fatalf("data: %+v %v", c, err)
	}
	if c, err := h.ReadChunk(); err != nil || !c.Done {
		t.Fatalf("done: %+v %v", c, err)
	}
	must(h.ReadStatus())
	var fe *SyncFailError
	if err := h.ReadStatus(); !errors.As(err, &fe) || fe.Message != "secure_mkdirs() failed: Permission denied" {
		t.Fatalf("fail: %v", err)
	}
}

func TestSyncLimits(t *testing.T) {
	if err := WriteData(io.Discard, make([]byte, SyncDataMax+1)); !errors.Is(err, ErrSyncProtocol) {
		t.Fatalf("oversized DATA written: %v", err)
	}
	if err := WriteSyncRequest(io.Discard, SyncSTAT, string(make([]byte, SyncMaxPath+1))); !errors.Is(err, ErrSyncProtocol) {
		t.Fatalf("oversized path written: %v", err)
	}
	hdr := func(id SyncID, n uint32) []byte { return appendHeader(nil, id, n) }
	tests := []struct {
		name string
		in   []byte
		read func(*SyncReader) error
		want error
	}{
		{"huge DATA", hdr(SyncDATA, 1<<31), func(s *SyncReader) error { _, err := s.ReadChunk(); return err }, ErrSyncProtocol},
		{"huge path", hdr(SyncSTAT, 1<<20), func(s *SyncReader) error { _, err := s.ReadRequest(); return err }, ErrSyncProtocol},
		{"unknown request", hdr(mkid("ZZZZ"), 0), func(s *SyncReader) error { _, err := s.ReadRequest(); return err }, ErrSyncProtocol},
		{"huge FAIL", hdr(SyncFAIL, 1<<30), func(s *SyncReader) error { return s.ReadStatus() }, ErrSyncProtocol},
		{"truncated DATA", append(hdr(SyncDATA, 10), "abc"...), func(s *SyncReader) error { _, err := s.ReadChunk(); return err }, io.ErrUnexpectedEOF},
		{"truncated header", []byte("DAT"), func(s *SyncReader) error { _, err := s.ReadChunk(); return err }, io.ErrUnexpectedEOF},
		{"wrong stat id", append(hdr(SyncDENT, 0), make([]byte, 8)...), func(s *SyncReader) error { _, err := s.ReadStatV1(); return err }, ErrSyncProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.read(NewSyncReader(bytes.NewReader(tt.in))); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func FuzzSyncDeviceSide(f *testing.F) {
	var b bytes.Buffer
	_ = WriteSyncRequest(&b, SyncSEND, "/sdcard/a,33188")
	_ = WriteData(&b, []byte("abc"))
	_ = WriteDone(&b, 1)
	_ = WriteSyncRequest(&b, SyncSND2, "/x")
	_ = WriteSendV2Setup(&b, 0644, 0)
	_ = WriteSyncRequest(&b, SyncRCV2, "/y")
	_ = WriteRecvV2Setup(&b, 0)
	_ = WriteSyncRequest(&b, SyncQUIT, "")
	f.Add(b.Bytes())
	f.Add([]byte("LIST\x05\x00\x00\x00/data"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := NewSyncReader(bytes.NewReader(in))
		for range 64 {
			req, err := s.ReadRequest()
			if err != nil {
				return
			}
			if len(req.Path) > SyncMaxPath {
				t.Fatalf("path of %d bytes accepted", len(req.Path))
			}
			switch req.ID {
			case SyncSND2:
				if _, _, err := s.ReadSendV2Setup(); err != nil {
					return
				}
				fallthrough
			case SyncSEND:
				for range 64 {
					c, err := s.ReadChunk()
					if err != nil {
						return
					}
					if len(c.Data) > SyncDataMax {
						t.Fatalf("chunk of %d bytes accepted", len(c.Data))
					}
					if c.Done {
						break
					}
				}
			case SyncRCV2:
				if _, err := s.ReadRecvV2Setup(); err != nil {
					return
				}
			}
			if s.Offset() > int64(len(in)) {
				t.Fatalf("offset %d past input of %d", s.Offset(), len(in))
			}
		}
	})
}

func FuzzSyncHostSide(f *testing.F) {
	var b bytes.Buffer
	_ = WriteStatV1(&b, StatV1{Mode: 1})
	_ = WriteStatV2(&b, SyncSTA2, StatV2{Size: 5})
	_ = WriteDent(&b, Dent{Name: "x"})
	_ = WriteListDone(&b, false)
	_ = WriteDentV2(&b, DentV2{Name: "y"})
	_ = WriteListDone(&b, true)
	_ = WriteData(&b, []byte("data"))
	_ = WriteDone(&b, 0)
	_ = WriteOkay(&b)
	_ = WriteFail(&b, "no such file")
	f.Add(b.Bytes(), uint8(0))
	f.Add([]byte("FAIL\x03\x00\x00\x00abc"), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, order uint8) {
		s := NewSyncReader(bytes.NewReader(in))
		for i := range 32 {
			var err error
			switch (int(order) + i) % 6 {
			case 0:
				_, err = s.ReadStatV1()
			case 1:
				_, err = s.ReadStatV2(SyncSTA2)
			case 2:
				_, _, err = s.ReadDent()
			case 3:
				_, _, err = s.ReadDentV2()
			case 4:
				var c Chunk
				c, err = s.ReadChunk()
				if len(c.Data) > SyncDataMax {
					t.Fatalf("chunk of %d bytes accepted", len(c.Data))
				}
			case 5:
				err = s.ReadStatus()
			}
			if err != nil {
				var fe *SyncFailError
				if errors.As(err, &fe) && len(fe.Message) > SyncMaxFailMessage {
					t.Fatalf("FAIL message of %d bytes accepted", len(fe.Message))
				}
				return
			}
		}
	})
}
