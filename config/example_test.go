package config

import (
	"bufio"
	"encoding"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

const examplePath = "../crewmail.example.toml"

// The example file documents the real defaults: loading it changes nothing.
func TestExampleIsDefault(t *testing.T) {
	got, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not show the defaults:\n got %+v\nwant %+v", examplePath, got, want)
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(\"\") = %+v, want the defaults", c)
	}
}

// keys returns the dotted TOML name of every leaf key of a struct type, e.g. "smtp.listen".
func keys(typ reflect.Type, prefix string) []string {
	textType := reflect.TypeFor[encoding.TextUnmarshaler]()
	var out []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textType) {
			out = append(out, keys(f.Type, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	return out
}

// Every key of Config is in the example, in its table, right under a comment that explains it
// (keys that go together, such as tls_cert and tls_key, may share one), so the documentation
// and the code stay in step. Keys the example has and Config lacks fail TestExampleIsDefault.
func TestExampleDocumentsEveryKey(t *testing.T) {
	var c Config
	md, err := toml.DecodeFile(examplePath, &c)
	if err != nil {
		t.Fatal(err)
	}
	all := keys(reflect.TypeFor[Config](), "")
	if len(all) < 20 {
		t.Fatalf("found only %d keys in Config: %v", len(all), all)
	}
	lines := readLines(t, examplePath)
	keyLine := regexp.MustCompile(`^([a-z0-9_]+)\s*=`)
	table := ""
	documented := map[string]bool{} // dotted key → has a comment above it
	for i, line := range lines {
		if m := regexp.MustCompile(`^\[([a-z_.]+)\]\s*$`).FindStringSubmatch(line); m != nil {
			table = m[1] + "."
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		j := i - 1
		for j >= 0 && keyLine.MatchString(lines[j]) {
			j--
		}
		documented[table+m[1]] = j >= 0 && strings.HasPrefix(lines[j], "#")
	}
	for _, k := range all {
		if !md.IsDefined(strings.Split(k, ".")...) {
			t.Errorf("%s does not set %s: add it with its default and a comment", examplePath, k)
			continue
		}
		if !documented[k] {
			t.Errorf("%s: %s has no comment right above it", examplePath, k)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// The configuration baked into the container image must load.
func TestDockerConfig(t *testing.T) {
	c, err := Load("../contrib/docker.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/data" {
		t.Errorf("data_dir = %q, want the volume /data", c.DataDir)
	}
	if c.SMTP.Listen != "0.0.0.0:2525" || c.HTTP.Listen != "0.0.0.0:8025" {
		t.Errorf("listen on %q and %q, want 0.0.0.0:2525 and 0.0.0.0:8025 (the EXPOSEd ports)", c.SMTP.Listen, c.HTTP.Listen)
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crewmail.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A wrong config stops start-up with one line that names the key at fault.
func TestLoadErrorNamesKey(t *testing.T) {
	tests := []struct {
		name, text, key string
	}{
		{"unknown key", "[smtp]\nlisen = \"x\"\n", "smtp.lisen"},
		{"unknown top-level key", "hostnme = \"mail.example.org\"\n", "hostnme"},
		{"unknown table", "[pop3]\nlisten = \"127.0.0.1:1110\"\n", "pop3"},
		{"bad mode", "[delivery]\nmode = \"carrier-pigeon\"\n", "delivery.mode"},
		{"unknown store backend", "[store]\nbackend = \"sqlite\"\n", "store.backend"},
		{"postgres without dsn", "[store]\nbackend = \"postgres\"\n", "store.dsn"},
		{"postgres dsn not one", "[store]\nbackend = \"postgres\"\ndsn = \"db.example.org\"\n", "store.dsn"},
		{"dsn for bbolt", "[store]\ndsn = \"postgres://db.example.org/crewmail\"\n", "store.dsn"},
		{"wrong type", "[smtp]\nmax_message_bytes = \"big\"\n", "smtp.max_message_bytes"},
		{"table as value", "smtp = 3\n", "smtp"},
		{"bad duration", "[smtp]\nread_timeout = \"soon\"\n", "smtp.read_timeout"},
		{"duration without unit", "[delivery]\nmax_age = 5\n", "delivery.max_age"},
		{"duration too short", "[delivery]\nmax_age = \"30s\"\n", "delivery.max_age"},
		{"smarthost mode without smarthost", "[delivery]\nmode = \"smarthost\"\n", "delivery.smarthost"},
		{"smarthost without port", "[delivery]\nmode = \"smarthost\"\nsmarthost = \"relay.example.net\"\n", "delivery.smarthost"},
		{"bad smarthost_tls", "[delivery]\nsmarthost_tls = \"maybe\"\n", "delivery.smarthost_tls"},
		{"username without password", "[delivery]\nusername = \"crew\"\n", "delivery.username"},
		{"workers zero", "[delivery]\nworkers = 0\n", "delivery.workers"},
		{"mx_port too big", "[delivery]\nmx_port = 70000\n", "delivery.mx_port"},
		{"listen without port", "[smtp]\nlisten = \"127.0.0.1\"\n", "smtp.listen"},
		{"http listen without port", "[http]\nlisten = \"localhost\"\n", "http.listen"},
		{"base_url not http", "[http]\nbase_url = \"lists.example.org\"\n", "http.base_url"},
		{"tls_cert without tls_key", "[smtp]\ntls_cert = \"cert.pem\"\n", "smtp.tls_cert"},
		{"message size too small", "[smtp]\nmax_message_bytes = 10\n", "smtp.max_message_bytes"},
		{"bad separator", "separator = \"++\"\n", "separator"},
		{"postmaster not an address", "postmaster = \"ops\"\n", "postmaster"},
		{"confirm_within too short", "confirm_within = \"10m\"\n", "confirm_within"},
		{"bad hostname", "hostname = \"mail example org\"\n", "hostname"},
		{"empty data_dir", "data_dir = \"\"\n", "data_dir"},
		{"bad log format", "[log]\nformat = \"xml\"\n", "log.format"},
		{"bad log level", "[log]\nlevel = \"loud\"\n", "log.level"},
		{"bad resolver", "[dns]\nresolver = \"127.0.0.1\"\n", "dns.resolver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeConfig(t, tt.text))
			if err == nil {
				t.Fatalf("Load accepted %q: %+v", tt.text, c)
			}
			msg := err.Error()
			if !regexp.MustCompile(`(^|[\s"])` + regexp.QuoteMeta(tt.key) + `($|[\s":(])`).MatchString(msg) {
				t.Errorf("error %q does not name the key %s", msg, tt.key)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
		})
	}
}

// Of several wrong keys, Validate names the first in the order it checks them, the same one
// every time (Go's map order would change between runs).
func TestValidateNamesTheSameKeyEveryTime(t *testing.T) {
	tests := []struct {
		name string
		set  func(c *Config)
		want string
	}{
		{"every SMTP limit zero", func(c *Config) {
			c.SMTP.MaxConnectionsPerIP = 0
			c.SMTP.MaxMessagesPerMinute = 0
			c.SMTP.MaxMessagesPerMinuteSender = 0
			c.SMTP.MaxUnknownRecipients = 0
		}, "key smtp.max_connections_per_ip:"},
		{"the last two SMTP limits zero", func(c *Config) {
			c.SMTP.MaxMessagesPerMinuteSender = 0
			c.SMTP.MaxUnknownRecipients = 0
		}, "key smtp.max_messages_per_minute_sender:"},
		{"both IMAP addresses without a port", func(c *Config) {
			c.IMAP.Listen = "127.0.0.1"
			c.IMAP.ListenTLS = "127.0.0.1"
		}, "key imap.listen:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				c := Default()
				tt.set(c)
				err := c.Validate()
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("Validate: %v, want an error starting %q", err, tt.want)
				}
			}
		})
	}
}

func TestLoadOverridesDefaults(t *testing.T) {
	c, err := Load(writeConfig(t, "hostname = \"lists.example.org\"\n[delivery]\nmode = \"smarthost\"\nsmarthost = \"relay.example.net:587\"\nsmarthost_tls = \"starttls\"\nmax_age = \"48h\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Hostname = "lists.example.org"
	want.Delivery.Mode = "smarthost"
	want.Delivery.Smarthost = "relay.example.net:587"
	want.Delivery.SmarthostTLS = "starttls"
	want.Delivery.MaxAge.Duration = 48 * time.Hour
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.toml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}
