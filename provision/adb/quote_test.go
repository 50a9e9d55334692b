package adb

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestQuote has a real POSIX shell split Quote's output back into arguments.
func TestQuote(t *testing.T) {
	args := []string{"pm", "path", "ru.oneme.app", "", "a b", "it's", `$HOME`, "`id`", "x;reboot", "tab\there", "new\nline", `back\slash`, "*", "--user=0"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/bin/sh", "-c", `for a in `+Quote(args...)+`; do printf '<%s>' "$a"; done`).Output()
	if err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	var want strings.Builder
	for _, a := range args {
		want.WriteString("<" + a + ">")
	}
	if string(out) != want.String() {
		t.Fatalf("the shell saw\n%q\nwant\n%q", out, want.String())
	}
	if Quote("pm", "list", "packages") != "pm list packages" {
		t.Fatalf("plain words were quoted: %s", Quote("pm", "list", "packages"))
	}
}
