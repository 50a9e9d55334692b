package adb

import (
	"fmt"
	"strings"
)

// InstallError is the package manager's refusal: "Failure [INSTALL_FAILED_...: message]".
type InstallError struct {
	Code    string // INSTALL_FAILED_VERSION_DOWNGRADE, INSTALL_PARSE_FAILED_NO_CERTIFICATES, ...
	Message string // the rest of the package manager's text
	Output  string // the whole output, verbatim
}

func (e *InstallError) Error() string {
	if e.Message == "" {
		return "package manager refused the APK: " + e.Code
	}
	return fmt.Sprintf("package manager refused the APK: %s: %s", e.Code, e.Message)
}

// ParseInstallOutput interprets what `pm install` / `cmd package install` print: nil for
// "Success", an *InstallError for "Failure [CODE: message]" or "Failure [CODE]", and a plain error
// quoting the output otherwise (e.g. "Error: Unable to open file").
func ParseInstallOutput(out string) error {
	text := strings.TrimSpace(strings.ReplaceAll(out, "\r", ""))
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "Success" || strings.HasPrefix(line, "Success:") {
			return nil
		}
		if rest, ok := strings.CutPrefix(line, "Failure ["); ok {
			body := strings.TrimSuffix(rest, "]")
			code, msg, _ := strings.Cut(body, ":")
			return &InstallError{Code: strings.TrimSpace(code), Message: strings.TrimSpace(msg), Output: text}
		}
		if rest, ok := strings.CutPrefix(line, "Failure"); ok {
			return &InstallError{Code: "INSTALL_FAILED_UNKNOWN", Message: strings.TrimSpace(strings.Trim(rest, " :[]")), Output: text}
		}
	}
	if text == "" {
		return fmt.Errorf("package manager printed nothing (no Success line)")
	}
	return fmt.Errorf("package manager did not report success: %q", truncate(text, 400))
}
