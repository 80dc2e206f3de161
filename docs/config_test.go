package docs

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"crewmail/config"
)

// A documented key is a table row whose first cell is the key in backticks, with its table
// (`smtp.listen`, or `hostname` at the top level); the second cell, when it starts with a
// backtick, is its default written as TOML.
var (
	keyRow  = regexp.MustCompile("^\\|\\s*`([a-z_][a-z0-9_.]*)`\\s*\\|([^|]*)\\|")
	heading = regexp.MustCompile(`^#{2,}\s+(.*)$`)
	tableIn = regexp.MustCompile(`\[([a-z_][a-z0-9_.]*)\]`)
	literal = regexp.MustCompile("^`([^`]*)`")
)

type docKey struct {
	line    int
	table   string // the [table] of the section it is in; "" at the top level
	dflt    string // the default as written, "" when the row states none
	hasDflt bool
}

// documented reads the keys of config.md.
func documented(t *testing.T) map[string]docKey {
	t.Helper()
	data, err := os.ReadFile("config.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]docKey{}
	section, inSection := "", false
	for i, line := range strings.Split(string(data), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			inSection = true
			section = ""
			if tm := tableIn.FindStringSubmatch(m[1]); tm != nil {
				section = tm[1]
			}
			continue
		}
		m := keyRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key, cell := m[1], strings.TrimSpace(m[2])
		if !inSection {
			t.Errorf("config.md:%d: key %s stands before any section heading", i+1, key)
		}
		if prev, ok := keys[key]; ok {
			t.Errorf("config.md:%d: key %s is documented twice (also on line %d)", i+1, key, prev.line)
		}
		k := docKey{line: i + 1, table: section}
		if lm := literal.FindStringSubmatch(cell); lm != nil {
			k.dflt, k.hasDflt = lm[1], true
		}
		keys[key] = k
	}
	return keys
}

// defaults returns every key of config.Default() by its dotted name, with the value its TOML
// encoding gives (int64, float64, bool, string; durations as strings).
func defaults(t *testing.T) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(config.Default()); err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if _, err := toml.Decode(buf.String(), &tree); err != nil {
		t.Fatalf("decode the encoded defaults: %v\n%s", err, buf.String())
	}
	flat := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			flat[prefix+k] = v
		}
	}
	walk("", tree)
	return flat
}

// Every key of the configuration is in config.md, in the section of its table, and every key
// config.md documents exists.
func TestConfigDocumentsEveryKey(t *testing.T) {
	doc, real := documented(t), defaults(t)
	if len(real) < 20 {
		t.Fatalf("config.Default() has only %d keys: %v", len(real), real)
	}
	for _, key := range sortedKeys(real) {
		if _, ok := doc[key]; !ok {
			table, _ := tableOf(key)
			where := "the top-level table"
			if table != "" {
				where = "the section ## `[" + table + "]`"
			}
			t.Errorf("config.md does not document %s (default %s): add a row | `%s` | `%s` | … | to %s",
				key, tomlValue(real[key]), key, tomlValue(real[key]), where)
		}
	}
	for _, key := range sortedKeys(doc) {
		k := doc[key]
		if _, ok := real[key]; !ok {
			t.Errorf("config.md:%d documents %s, which is not a key of the configuration", k.line, key)
			continue
		}
		if table, _ := tableOf(key); table != k.table {
			t.Errorf("config.md:%d documents %s in the section of [%s], not of [%s]", k.line, key, k.table, table)
		}
	}
}

// The defaults config.md states are those of config.Default().
func TestConfigDocumentsDefaults(t *testing.T) {
	doc, real := documented(t), defaults(t)
	for _, key := range sortedKeys(doc) {
		k := doc[key]
		want, ok := real[key]
		if !ok || !k.hasDflt {
			continue
		}
		var v struct{ V any }
		if _, err := toml.Decode("V = "+k.dflt, &v); err != nil {
			t.Errorf("config.md:%d: the default of %s, %s, is not a TOML value: %v", k.line, key, k.dflt, err)
			continue
		}
		if !sameValue(v.V, want) {
			t.Errorf("config.md:%d: %s defaults to %s, not %s", k.line, key, tomlValue(want), k.dflt)
		}
	}
}

// sameValue compares a documented default with the real one. Durations may be written in
// any form Go reads ("168h" is "168h0m0s").
func sameValue(doc, real any) bool {
	if reflect.DeepEqual(doc, real) {
		return true
	}
	ds, ok1 := doc.(string)
	rs, ok2 := real.(string)
	if !ok1 || !ok2 || ds == "" || rs == "" {
		return false
	}
	dd, err1 := time.ParseDuration(ds)
	rd, err2 := time.ParseDuration(rs)
	return err1 == nil && err2 == nil && dd == rd
}

func TestSameValue(t *testing.T) {
	for _, c := range []struct {
		doc, real any
		want      bool
	}{
		{"168h", "168h0m0s", true},
		{"10m", "10m0s", true},
		{"1h", "168h0m0s", false},
		{"", "", true},
		{"", "0s", false},
		{"08:00", "08:00", true},
		{int64(25), int64(25), true},
		{int64(3), 3.0, false},
		{3.0, 3.0, true},
		{false, false, true},
		{"false", false, false},
	} {
		if got := sameValue(c.doc, c.real); got != c.want {
			t.Errorf("sameValue(%#v, %#v) = %v, want %v", c.doc, c.real, got, c.want)
		}
	}
}

// The parser finds what the rows say, so the tests above cannot pass by reading nothing.
func TestDocumentedParsesRows(t *testing.T) {
	doc := documented(t)
	for key, want := range map[string]docKey{
		"hostname":               {table: "", dflt: `"localhost"`, hasDflt: true},
		"smtp.max_header_bytes":  {table: "smtp", dflt: "1048576", hasDflt: true},
		"delivery.smarthost_tls": {table: "delivery", dflt: `"opportunistic"`, hasDflt: true},
	} {
		got, ok := doc[key]
		if !ok {
			t.Errorf("config.md: no row for %s", key)
			continue
		}
		got.line = 0
		if got != want {
			t.Errorf("config.md row for %s read as %+v, want %+v", key, got, want)
		}
	}
}

func tableOf(key string) (table, name string) {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

func tomlValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprint(v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
