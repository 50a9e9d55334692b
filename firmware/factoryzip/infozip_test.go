package factoryzip

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provkit/provkit/internal/testtool"
)

// TestInfoZIPArchives opens factory zips written by Info-ZIP's zip (the kind of tool release scripts
// use), stored (-0) and deflated (-9), nested the way Google's factory zips are.
func TestInfoZIPArchives(t *testing.T) {
	testtool.Require(t, "zip")
	imgs := realImages(t)
	for _, level := range []string{"-0", "-9"} {
		t.Run(level, func(t *testing.T) {
			dir := t.TempDir()
			build := filepath.Join(dir, "oriole-up1a.220901.001")
			inner := filepath.Join(dir, "inner")
			os.MkdirAll(build, 0o755)
			os.MkdirAll(inner, 0o755)
			os.WriteFile(filepath.Join(inner, "android-info.txt"), []byte(androidInfo), 0o644)
			for n, b := range imgs {
				os.WriteFile(filepath.Join(inner, n), b, 0o644)
			}
			run := func(dir string, args ...string) {
				cmd := exec.Command("zip", args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("zip %v: %v\n%s", args, err, out)
				}
			}
			run(inner, append([]string{"-q", level, filepath.Join(build, "image-oriole-up1a.220901.001.zip")}, sortedKeys(map[string][]byte{"android-info.txt": nil, "boot.img": nil, "system.img": nil, "vbmeta.img": nil, "super_empty.img": nil})...)...)
			os.WriteFile(filepath.Join(build, "bootloader-oriole-slider-1.2.img"), []byte("bl"), 0o644)
			run(dir, "-q", "-r", level, "factory.zip", "oriole-up1a.220901.001")
			z, err := os.ReadFile(filepath.Join(dir, "factory.zip"))
			if err != nil {
				t.Fatal(err)
			}
			a, err := Open(bytes.NewReader(z), int64(len(z)), &Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if a.Device != "oriole" || len(a.Images) != 4 || a.AndroidInfo.Board() != "oriole" {
				t.Fatalf("archive %+v", a)
			}
			for name, want := range imgs {
				rd, err := a.OpenImage(name)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(io.NewSectionReader(rd, 0, rd.Size()))
				if !bytes.Equal(got, want) {
					t.Fatalf("%s differs", name)
				}
			}
			if level == "-0" && a.Images[0].Compressed {
				t.Fatalf("stored archive reported compressed: %+v", a.Images[0])
			}
			if !strings.HasPrefix(a.Files[0].Name, "bootloader-") {
				t.Fatalf("files %+v", a.Files)
			}
		})
	}
}
