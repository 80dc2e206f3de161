package config

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the config parser: an error that names the file, or a
// configuration that passes validation, never a panic.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		c := Default()
		if err := c.parse("fuzz.toml", text); err != nil {
			if !strings.Contains(err.Error(), "fuzz.toml") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("parse accepted a configuration that Validate refuses: %v", err)
		}
	})
}
