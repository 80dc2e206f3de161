// Command healthcheck asks the crewmail server on this machine whether it is healthy, for
// container HEALTHCHECKs in images that have no shell, curl or wget (distroless, scratch). It
// reads crewmail's configuration (-config FILE, or the file CREWMAIL_CONFIG names, as crewmail
// does), requests /healthz from its HTTP listener (the key http.listen) and exits 0 when the
// answer is 200 "ok", 1 otherwise, with one sentence on stderr saying why.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"crewmail/config"
)

func main() {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	path := fs.String("config", os.Getenv("CREWMAIL_CONFIG"), "crewmail's config file (default: $CREWMAIL_CONFIG)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if err := check(*path, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "crewmail unhealthy:", err)
		os.Exit(1)
	}
}

// check loads the config at path and asks its HTTP listener for /healthz.
func check(path string, timeout time.Duration) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	u, err := healthURL(cfg.HTTP.Listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no answer from %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// healthURL is the /healthz URL of an HTTP listener bound to listen, as reached from the same
// machine: a listener on every address (":8025", "0.0.0.0:8025", "[::]:8025") is asked on
// loopback.
func healthURL(listen string) (string, error) {
	if listen == "" {
		return "", errors.New("HTTP is off ([http] listen is empty), so there is nothing to ask; run the container with --no-healthcheck")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("[http] listen %q is not host:port", listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}
