package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"crewmail/internal/mailaddr"
	"crewmail/store"
)

// The queue commands show and steer the outbox: what waits for whom, why, and until when; a
// retry now, or a delivery dropped for good. They work on the outbox rows (store.Outbox), the
// one truth about what is owed.

// queueEntry is the stable form of one outbox row in queue ls (its -json lines).
type queueEntry struct {
	ID         uint64    `json:"id"`
	To         string    `json:"to"`
	Domain     string    `json:"domain"` // the recipient's domain: where it goes
	List       string    `json:"list"`
	Kind       string    `json:"kind"` // "post", "digest" or "notice"
	Attempts   int       `json:"attempts"`
	NextTry    time.Time `json:"next_try"`
	State      string    `json:"state"` // "due", "deferred" (after a failure), "waiting" or "sending"
	LastResult string    `json:"last_result,omitempty"`
	Created    time.Time `json:"created"`
}

func entryOf(d store.Delivery, now time.Time) queueEntry {
	_, domain, _ := mailaddr.Split(d.To)
	if a, err := mailaddr.ASCIIDomain(domain); err == nil {
		domain = a
	}
	e := queueEntry{ID: d.ID, To: d.To, Domain: strings.ToLower(domain), List: d.List, Kind: "notice", Attempts: d.Attempts,
		NextTry: d.Due, LastResult: d.LastError, Created: d.Created}
	switch {
	case d.Seq != 0:
		e.Kind = "post"
	case d.Blob != 0:
		e.Kind = "digest"
	}
	switch {
	case d.Leased:
		e.State = "sending"
	case !d.Due.After(now):
		e.State = "due"
	case d.Attempts > 0:
		e.State = "deferred"
	default:
		e.State = "waiting"
	}
	return e
}

// queueRows are the outbox rows as entries, earliest next try first, kept by keep.
func queueRows(b *backend, keep func(queueEntry) bool) ([]queueEntry, error) {
	now := b.svc.Now()
	var out []queueEntry
	err := b.st.View(func(tx store.Tx) error {
		return tx.Outbox(func(d store.Delivery) error {
			if e := entryOf(d, now); keep(e) {
				out = append(out, e)
			}
			return nil
		})
	})
	return out, err
}

// domainFilter is the -domain flag's value in the form queue entries carry.
func domainFilter(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	d, err := mailaddr.ASCIIDomain(strings.TrimSuffix(strings.TrimSpace(s), "."))
	if err != nil {
		return "", usageError(fmt.Sprintf("%q is not a domain", s))
	}
	return strings.ToLower(d), nil
}

func cmdQueueLs(c *cmd) error {
	c.params = "[-list L] [-domain D] [-json]"
	c.help = "Lists the deliveries waiting in the outbox: recipient, list, attempts, next try, last result; then, per\n" +
		"destination (recipient domain), how many wait and how many were deferred after a failure."
	list := c.flag.String("list", "", "only the deliveries of list `L`")
	domainArg := c.flag.String("domain", "", "only the deliveries to recipients at domain `D`")
	asJSON := c.flag.Bool("json", false, "one JSON object per delivery and line instead of tables")
	if _, err := c.parse(0, 0); err != nil {
		return err
	}
	domain, err := domainFilter(*domainArg)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	rows, err := queueRows(b, func(e queueEntry) bool {
		return (*list == "" || strings.EqualFold(e.List, *list)) && (domain == "" || e.Domain == domain)
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		for _, e := range rows {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintln(c.stdout, "The outbox is empty.")
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTO\tLIST\tKIND\tATTEMPTS\tNEXT TRY\tSTATE\tLAST RESULT")
	for _, e := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, e.To, e.List, e.Kind, e.Attempts, e.NextTry.Local().Format("2006-01-02 15:04:05"),
			e.State, oneLine(e.LastResult, 70))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Per destination: a domain whose every waiting delivery was deferred after a failure is
	// one that is refusing or throttling crewmail right now.
	type dest struct {
		name             string
		waiting, delayed int
		next             time.Time
		last             string
	}
	byName := map[string]*dest{}
	for _, e := range rows {
		d := byName[e.Domain]
		if d == nil {
			d = &dest{name: e.Domain, next: e.NextTry}
			byName[e.Domain] = d
		}
		d.waiting++
		if e.State == "deferred" {
			d.delayed++
			d.last = e.LastResult
		}
		if e.NextTry.Before(d.next) {
			d.next = e.NextTry
		}
	}
	dests := make([]*dest, 0, len(byName))
	for _, d := range byName {
		dests = append(dests, d)
	}
	sort.Slice(dests, func(i, j int) bool { return dests[i].name < dests[j].name })
	fmt.Fprintln(c.stdout)
	tw = tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tWAITING\tDEFERRED\tNEXT TRY\tLAST RESULT")
	for _, d := range dests {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", d.name, d.waiting, d.delayed, d.next.Local().Format("2006-01-02 15:04:05"), oneLine(d.last, 70))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printHeld(c, b)
}

// printHeld lists the destinations the running server holds back because they asked it to
// slow down: no connection is made to them until the time shown (queue retry lifts it).
func printHeld(c *cmd, b *backend) error {
	if b.queue == nil {
		return nil
	}
	held := b.queue.Held()
	if len(held) == 0 {
		return nil
	}
	sort.Slice(held, func(i, j int) bool { return held[i].Destination < held[j].Destination })
	fmt.Fprintln(c.stdout)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HELD DESTINATION\tUNTIL\tHOLDS IN A ROW")
	for _, h := range held {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", h.Destination, h.Until.Local().Format("2006-01-02 15:04:05"), h.Holds)
	}
	return tw.Flush()
}

// queueIDs parses delivery IDs.
func queueIDs(args []string) ([]uint64, error) {
	ids := make([]uint64, len(args))
	for i, a := range args {
		id, err := strconv.ParseUint(a, 10, 64)
		if err != nil || id == 0 {
			return nil, usageError(fmt.Sprintf("%q is not a delivery ID (queue ls shows them)", a))
		}
		ids[i] = id
	}
	return ids, nil
}

func cmdQueueRetry(c *cmd) error {
	c.params = "[ID | -domain D]"
	c.help = "Makes a waiting delivery, or every delivery to recipients at domain D, due now: the next attempt is\n" +
		"made at once, keeping the count of attempts."
	domainArg := c.flag.String("domain", "", "every delivery to recipients at domain `D`")
	args, err := c.parse(0, 1)
	if err != nil {
		return err
	}
	if (len(args) == 1) == (*domainArg != "") {
		return c.usageError()
	}
	domain, err := domainFilter(*domainArg)
	if err != nil {
		return err
	}
	var ids []uint64
	if len(args) == 1 {
		if ids, err = queueIDs(args); err != nil {
			return err
		}
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	if domain != "" {
		rows, err := queueRows(b, func(e queueEntry) bool { return e.Domain == domain && e.State != "sending" })
		if err != nil {
			return err
		}
		for _, e := range rows {
			ids = append(ids, e.ID)
		}
	}
	now := b.svc.Now()
	var moved []store.Delivery
	err = b.st.Update(func(tx store.Tx) error {
		moved = moved[:0]
		for _, id := range ids {
			d, err := tx.Reschedule(id, now)
			if errors.Is(err, store.ErrLeased) && domain != "" {
				continue // taken by a worker since: it is being tried right now
			}
			if err != nil {
				return err
			}
			moved = append(moved, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(moved) > 0 {
		// The operator says now: a destination held back for asking us to slow down is tried
		// again too, or the deliveries made due would only wait for its hold.
		if b.queue != nil {
			b.queue.ReleaseHolds()
		}
		b.svc.Enqueued()
	}
	for _, d := range moved {
		fmt.Fprintf(c.stdout, "delivery %d to %s is due now\n", d.ID, d.To)
	}
	if domain != "" && len(moved) == 0 {
		fmt.Fprintf(c.stdout, "no delivery to %s waits\n", domain)
	}
	return nil
}

func cmdQueueDrop(c *cmd) error {
	c.params = "ID..."
	c.help = "Takes deliveries out of the outbox without sending them; each is recorded as failed (\"dropped by the\n" +
		"operator\"), which does not count against the member."
	args, err := c.parse(1, many)
	if err != nil {
		return err
	}
	ids, err := queueIDs(args)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	now := b.svc.Now()
	var dropped []store.Delivery
	err = b.st.Update(func(tx store.Tx) error {
		dropped = dropped[:0]
		for _, id := range ids {
			d, err := tx.Drop(id, now, "dropped by the operator")
			if err != nil {
				return err
			}
			dropped = append(dropped, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range dropped {
		fmt.Fprintf(c.stdout, "dropped delivery %d to %s\n", d.ID, d.To)
	}
	return nil
}
