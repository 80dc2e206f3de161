package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"crewmail/config"
	"crewmail/digest"
	"crewmail/internal/vocab"
	"crewmail/lists"
	"crewmail/store"
	"crewmail/templates"
)

// adminCommand runs list, member and archive commands: through the running server's control
// socket when there is one (bbolt allows one process per file), else on the database directly.
func adminCommand(cfgPath string, args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	if code, ok := ctlCall(ctlPath(cfg), absFileArgs(args), stdout, stderr); ok {
		return code
	}
	var st *store.Store
	open := func() (*backend, error) {
		var err error
		if st, err = store.Open(cfg.DataDir); err != nil {
			if errors.Is(err, store.ErrLocked) {
				return nil, fmt.Errorf("the database in %s is in use, but the server's control socket does not answer; is another crewmail running there?", cfg.DataDir)
			}
			return nil, err
		}
		tpl, err := templates.New(templatesDir(cfg))
		if err != nil {
			return nil, err
		}
		log := slog.New(slog.DiscardHandler)
		svc := lists.New(st, tpl, listsConfig(cfg), log)
		b := &backend{svc: svc, digests: newScheduler(cfg, st, tpl, svc, log), st: st}
		if isTerminal(stderr) {
			b.progress = stderr
		}
		return b, nil
	}
	code := execAdmin(args, open, stdout, stderr)
	if st != nil {
		if err := st.Close(); err != nil {
			fmt.Fprintf(stderr, "crewmail: close database: %v\n", err)
			return exitError
		}
	}
	return code
}

// execAdmin parses and runs one admin command against the Service that service returns (asked
// for only once the command line is known to be right).
func execAdmin(args []string, service func() (*backend, error), stdout, stderr io.Writer) int {
	op, err := parseAdmin(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitUsage
	}
	svc, err := service()
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	if err := op(svc, stdout); err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	return exitOK
}

type adminOp func(b *backend, out io.Writer) error

// backend is what admin commands work on: the server's own while it runs, else one made on
// the database for the one command.
type backend struct {
	svc     *lists.Service
	digests *digest.Scheduler
	st      *store.Store
	// progress is where long commands report how far they are: the caller's terminal, or nil.
	progress io.Writer
}

type commandSpec struct {
	synopsis string
	nargs    int // positional arguments; -1 for "one or more after the first", -2 for "none or one"
	flags    func(fs *flag.FlagSet) func(pos []string) adminOp
}

// listFlags are the settings of list create and list set.
func listFlags(fs *flag.FlagSet) *lists.ListOptions {
	o := &lists.ListOptions{}
	fs.StringVar(&o.Name, "name", "", "the list's display name (default: the address's local part)")
	fs.Func("owner", "an owner's address (repeat for more)", func(s string) error {
		o.Owners = append(o.Owners, s)
		return nil
	})
	fs.Func("remove-owner", "an owner's address to remove (repeat for more; list set)", func(s string) error {
		o.RemoveOwners = append(o.RemoveOwners, s)
		return nil
	})
	fs.StringVar(&o.Join, "join", "", "who may join: open, approve or invite (default approve)")
	fs.StringVar(&o.Post, "post", "", "who may post: verified (members, proven by DKIM/SPF or by confirming; the default), members, or anyone")
	fs.StringVar(&o.AuthorIn, "dmarc-author", "", "when DMARC makes a copy go out From the list, put the author in reply-to or cc (default reply-to)")
	fs.Func("subject-prefix", "text put in front of each post's subject, e.g. \"[crew]\" (changes the author's signed Subject)", func(s string) error {
		o.SubjectPrefix = &s
		return nil
	})
	fs.Func("archive-url", "where the list's archive can be read; sent as List-Archive", func(s string) error {
		o.ArchiveURL = &s
		return nil
	})
	fs.Func("moderated", "true: every post waits for a moderator; false: only what the other rules hold", func(s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("-moderated is true or false, not %q", s)
		}
		o.Moderated = &b
		return nil
	})
	fs.Func("timezone", "the time zone of the list's digests, e.g. Europe/Berlin (default: [digest] timezone)", func(s string) error {
		o.Timezone = &s
		return nil
	})
	fs.StringVar(&o.NonMembers, "nonmembers", "", "what happens to posts from non-members: reject (the default) or hold for the moderators")
	fs.Func("moderator", "a moderator's address (repeat for more; \"\" for the owners, the default)", func(s string) error {
		if o.Moderators == nil {
			o.Moderators = &[]string{}
		}
		if s != "" {
			*o.Moderators = append(*o.Moderators, s)
		}
		return nil
	})
	return o
}

var commands = map[string]commandSpec{
	"list create": {"list create ADDRESS [flags]", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		o := listFlags(fs)
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				l, err := svc.CreateList(pos[0], *o)
				if err == nil {
					fmt.Fprintf(out, "created %s (join: %s, post: %s)\n", l.Address, l.Join, l.Post)
				}
				return err
			}
		}
	}},
	"list set": {"list set ADDRESS [flags]", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		o := listFlags(fs)
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				l, err := svc.UpdateList(pos[0], *o)
				if err == nil {
					fmt.Fprintf(out, "updated %s\n", l.Address)
				}
				return err
			}
		}
	}},
	"list ls": {"list ls", 0, func(fs *flag.FlagSet) func([]string) adminOp {
		return func([]string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				ls, err := svc.Lists()
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ADDRESS\tNAME\tJOIN\tPOST\tMEMBERS")
				for _, l := range ls {
					ms, err := svc.Members(l.Address)
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", l.Address, l.Name, l.Join, l.Post, len(ms))
				}
				return tw.Flush()
			}
		}
	}},
	"list show": {"list show ADDRESS", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				l, err := svc.List(pos[0])
				if err != nil {
					return err
				}
				ms, err := svc.Members(l.Address)
				if err != nil {
					return err
				}
				posts, err := svc.Archive(l.Address)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				moderators := "the owners"
				if len(l.Moderators) > 0 {
					moderators = strings.Join(l.Moderators, ", ")
				}
				nonmembers := l.NonMembers
				if nonmembers == "" {
					nonmembers = vocab.NonMembersReject
				}
				fmt.Fprintf(tw, "address:\t%s\nname:\t%s\nowners:\t%s\njoin:\t%s\npost:\t%s\n", l.Address, l.Name, strings.Join(l.Owners, ", "), l.Join, l.Post)
				fmt.Fprintf(tw, "moderated:\t%t\nnon-members:\t%s\nmoderators:\t%s\n", l.Moderated, nonmembers, moderators)
				if l.Timezone != "" {
					fmt.Fprintf(tw, "time zone:\t%s\n", l.Timezone)
				}
				if l.PolicyBounces > 0 {
					fmt.Fprintf(tw, "policy refusals:\t%d, the last on %s: %s\n", l.PolicyBounces, l.LastPolicyAt.Format("2006-01-02 15:04"), oneLine(l.LastPolicy, 120))
				}
				fmt.Fprintf(tw, "subject prefix:\t%s\narchive url:\t%s\ncreated:\t%s\nmembers:\t%d\nposts:\t%d\n", l.SubjectPrefix, l.ArchiveURL, l.Created.Format(time.RFC3339), len(ms), len(posts))
				return tw.Flush()
			}
		}
	}},
	"list rm": {"list rm ADDRESS", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				if err := svc.RemoveList(pos[0]); err != nil {
					return err
				}
				fmt.Fprintf(out, "removed %s with its members and archive\n", pos[0])
				return nil
			}
		}
	}},
	"member add": {"member add LIST ADDRESS... [-mode each|daily|weekly|nomail] [-welcome]", -1, func(fs *flag.FlagSet) func([]string) adminOp {
		mode := fs.String("mode", string(vocab.Each), "how the member receives the list: each, daily, weekly or nomail")
		welcome := fs.Bool("welcome", false, "mail each new member the welcome (how to post, change mode, leave)")
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				for _, a := range pos[1:] {
					m, err := svc.AddMember(pos[0], a, *mode, *welcome)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "added %s to %s (%s)\n", m.Address, pos[0], m.Mode)
				}
				return nil
			}
		}
	}},
	"member rm": {"member rm LIST ADDRESS", 2, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				if err := svc.RemoveMember(pos[0], pos[1]); err != nil {
					return err
				}
				fmt.Fprintf(out, "removed %s from %s\n", pos[1], pos[0])
				return nil
			}
		}
	}},
	"member password": {"member password LIST ADDRESS", 2, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				if err := b.svc.NewAppPassword(pos[0], pos[1]); err != nil {
					return err
				}
				fmt.Fprintf(out, "a new app password went to %s by mail\n", pos[1])
				return nil
			}
		}
	}},
	"member ls": {"member ls LIST", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				ms, err := svc.Members(pos[0])
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ADDRESS\tMODE\tADDED\tBOUNCES")
				for _, m := range ms {
					bounces := ""
					switch {
					case !m.Paused.IsZero():
						bounces = fmt.Sprintf("paused since %s (score %g)", m.Paused.Format("2006-01-02"), m.BounceScore)
					case m.BounceScore > 0:
						bounces = fmt.Sprintf("score %g since %s", m.BounceScore, m.BouncedFrom.Format("2006-01-02"))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Address, m.Mode, m.Added.Format("2006-01-02"), bounces)
				}
				return tw.Flush()
			}
		}
	}},
	"member mode": {"member mode LIST ADDRESS each|daily|weekly|nomail", 3, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				m, err := svc.SetMode(pos[0], pos[1], pos[2])
				if err == nil {
					fmt.Fprintf(out, "%s now receives %s in %s mode\n", m.Address, pos[0], m.Mode)
				}
				return err
			}
		}
	}},
	"held ls": {"held ls LIST", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				held, err := svc.Held(pos[0])
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tSUBJECT\tWAITS FOR\tEXPIRES\tWHY")
				for _, h := range held {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Received.Format("2006-01-02 15:04"), h.From, oneLine(h.Subject, 40), h.Kind, h.Expires.Format("2006-01-02"), oneLine(h.Reason, 60))
				}
				return tw.Flush()
			}
		}
	}},
	"held approve": {"held approve LIST ID", 2, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				id, err := strconv.ParseUint(pos[1], 10, 64)
				if err != nil {
					return fmt.Errorf("%q is not a held post's ID (see crewmail held ls)", pos[1])
				}
				res, err := svc.Approve(pos[0], id)
				if err != nil {
					return err
				}
				if len(res.Posts) == 0 {
					fmt.Fprintf(out, "held post %d was already on %s; removed from the held posts\n", id, pos[0])
					return nil
				}
				fmt.Fprintf(out, "posted held post %d to %s (%d deliveries)\n", id, pos[0], res.Queued)
				return nil
			}
		}
	}},
	"held reject": {"held reject LIST ID [-reason TEXT]", 2, func(fs *flag.FlagSet) func([]string) adminOp {
		reason := fs.String("reason", "", "why, in a sentence the author reads")
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				id, err := strconv.ParseUint(pos[1], 10, 64)
				if err != nil {
					return fmt.Errorf("%q is not a held post's ID (see crewmail held ls)", pos[1])
				}
				if err := svc.Reject(pos[0], id, *reason); err != nil {
					return err
				}
				fmt.Fprintf(out, "deleted held post %d of %s\n", id, pos[0])
				return nil
			}
		}
	}},
	"digest preview": {"digest preview LIST [-period daily|weekly] [-member ADDR] [-html]", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		period := fs.String("period", string(vocab.Daily), "the digest of the last day (daily) or week (weekly)")
		member := fs.String("member", "", "the digest this member would get now (their mode, what is new for them, their mutes)")
		asHTML := fs.Bool("html", false, "print the HTML part instead of the text part")
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				p, err := vocab.ParseMode(*period)
				if err != nil || !p.Digest() {
					return fmt.Errorf("-period is daily or weekly, not %q", *period)
				}
				d, err := b.digests.Preview(pos[0], p, *member)
				if err != nil {
					return err
				}
				if d.Messages == 0 {
					fmt.Fprintf(out, "nothing new for a %s digest of %s\n", d.Period, pos[0])
					return nil
				}
				var body string
				if *asHTML {
					body, err = b.digests.HTML(d)
				} else {
					body, err = b.digests.Text(d)
				}
				if err == nil {
					fmt.Fprint(out, body)
				}
				return err
			}
		}
	}},
	"digest send": {"digest send [LIST] [-now]", -2, func(fs *flag.FlagSet) func([]string) adminOp {
		now := fs.Bool("now", false, "every digest member gets what is new for them now, whatever the schedule")
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				list := ""
				if len(pos) == 1 {
					list = pos[0]
				}
				sent, err := b.digests.SendDue(list, *now)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "sent %d digests to %d members (%d messages)\n", sent.Digests, sent.Members, sent.Messages)
				return nil
			}
		}
	}},
	"export": {"export LIST [-since DATE]", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		since := fs.String("since", "", "only posts received on or after this day, YYYY-MM-DD (UTC)")
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				var from time.Time
				if *since != "" {
					var err error
					if from, err = time.Parse("2006-01-02", *since); err != nil {
						return fmt.Errorf("-since %q is not a day like 2026-11-25", *since)
					}
				}
				p := newProgress(b.progress, "exported")
				n, err := b.svc.Export(pos[0], from, out, p.update)
				p.done(n)
				return err
			}
		}
	}},
	"import": {"import LIST FILE", 2, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				f, err := os.Open(pos[1])
				if err != nil {
					return fmt.Errorf("cannot read %s: %w", pos[1], errors.Unwrap(err))
				}
				defer f.Close()
				p := newProgress(b.progress, "read")
				res, err := b.svc.Import(pos[0], f, p.update)
				p.done(res.Imported + res.Skipped + len(res.Refused))
				if err != nil {
					return fmt.Errorf("import %s: %w", pos[1], err)
				}
				fmt.Fprintf(out, "imported %d messages into %s; %d were there already", res.Imported, pos[0], res.Skipped)
				if len(res.Refused) > 0 {
					fmt.Fprintf(out, "; %d could not be read (first: %s)", len(res.Refused), res.Refused[0])
				}
				fmt.Fprintln(out)
				return nil
			}
		}
	}},
	"backup": {"backup FILE", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				n, err := b.st.Backup(pos[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote a consistent copy of the database to %s (%d bytes)\n", pos[0], n)
				return nil
			}
		}
	}},
	"check-db": {"check-db", 0, func(fs *flag.FlagSet) func([]string) adminOp {
		return func([]string) adminOp {
			return func(b *backend, out io.Writer) error {
				problems, err := b.st.Problems()
				if err != nil {
					return err
				}
				return reportProblems(out, b.st.Path(), problems)
			}
		}
	}},
	"archive ls": {"archive ls LIST [-json]", 1, func(fs *flag.FlagSet) func([]string) adminOp {
		asJSON := fs.Bool("json", false, "one JSON object per line instead of a table")
		return func(pos []string) adminOp {
			return func(b *backend, out io.Writer) error {
				svc := b.svc
				posts, err := svc.Archive(pos[0])
				if err != nil {
					return err
				}
				if *asJSON {
					enc := json.NewEncoder(out)
					for _, p := range posts {
						if err := enc.Encode(archiveEntry(p)); err != nil {
							return err
						}
					}
					return nil
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tDATE\tTHREAD\tFROM\tSUBJECT\tMESSAGE-ID")
				for _, p := range posts {
					fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t<%s>\n", p.Seq, p.Received.Format("2006-01-02 15:04"), p.Thread, p.From, oneLine(p.Subject, 60), p.MessageID)
				}
				return tw.Flush()
			}
		}
	}},
}

// archiveEntry is the stable JSON form of an archived post.
type archiveJSON struct {
	Seq       uint64    `json:"seq"`
	Date      time.Time `json:"date"`
	Received  time.Time `json:"received"`
	MessageID string    `json:"message_id"`
	Thread    uint64    `json:"thread"`
	From      string    `json:"from"`
	Subject   string    `json:"subject"`
	Size      int       `json:"size"`
	// Verified says how the author was established: "dkim" or "spf" (DMARC-aligned),
	// "confirmed" (by reply), "approved" (by the operator), or "" (not verified).
	Verified vocab.Verified `json:"verified"`
}

func archiveEntry(p store.Post) archiveJSON {
	date := p.Date
	if date.IsZero() {
		date = p.Received
	}
	return archiveJSON{Seq: p.Seq, Date: date, Received: p.Received, MessageID: p.MessageID, Thread: p.Thread, From: p.From, Subject: p.Subject, Size: p.Size, Verified: p.Verified}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// parseAdmin turns an admin command line into the operation to run. "-h" prints the command's
// help to out and returns flag.ErrHelp.
func parseAdmin(args []string, out io.Writer) (adminOp, error) {
	if _, single := commands[args[0]]; !single && (len(args) < 2 || args[1] == "-h" || args[1] == "-help" || args[1] == "--help") {
		var subs []string
		for name, spec := range commands {
			if strings.HasPrefix(name, args[0]+" ") {
				subs = append(subs, "  crewmail "+spec.synopsis)
			}
		}
		slices.Sort(subs)
		if len(args) >= 2 {
			fmt.Fprintf(out, "Usage:\n%s\n", strings.Join(subs, "\n"))
			return nil, flag.ErrHelp
		}
		return nil, fmt.Errorf("%s needs a subcommand:\n%s", args[0], strings.Join(subs, "\n"))
	}
	var name string
	var spec commandSpec
	var ok bool
	if single, found := commands[args[0]]; found {
		// A command of one word (export, import, backup): the rest are its arguments.
		name, spec, ok, args = args[0], single, true, append([]string{args[0], ""}, args[1:]...)
	} else {
		name = args[0] + " " + args[1]
		spec, ok = commands[name]
	}
	if !ok {
		return nil, fmt.Errorf("unknown command %q; \"crewmail %s -h\" lists what %s can do", name, args[0], args[0])
	}
	fs := flag.NewFlagSet("crewmail "+name, flag.ContinueOnError)
	fs.SetOutput(out)
	build := spec.flags(fs)
	fs.SetOutput(io.Discard) // errors are reported once, by the caller
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: crewmail %s\n", spec.synopsis)
		fs.SetOutput(out)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	pos, err := parseInterleaved(fs, args[2:])
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	switch {
	case spec.nargs >= 0 && len(pos) != spec.nargs:
		return nil, fmt.Errorf("usage: crewmail %s", spec.synopsis)
	case spec.nargs == -2 && len(pos) > 1:
		return nil, fmt.Errorf("usage: crewmail %s", spec.synopsis)
	case spec.nargs == -1 && len(pos) < 2:
		return nil, fmt.Errorf("usage: crewmail %s", spec.synopsis)
	}
	return build(pos), nil
}

// progress shows how far a long command is on a terminal (w not nil), at most a few times a
// second, on one line; in scripts (w nil) it says nothing.
type progress struct {
	w    io.Writer
	verb string
	last time.Time
}

func newProgress(w io.Writer, verb string) *progress { return &progress{w: w, verb: verb} }

func (p *progress) update(n int) {
	if p.w == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%s %d messages…", p.verb, n)
}

func (p *progress) done(n int) {
	if p.w != nil && !p.last.IsZero() {
		fmt.Fprintf(p.w, "\r%s %d messages \n", p.verb, n)
	}
}

// absFileArgs makes the file arguments of import and backup absolute: the server, which reads
// or writes them, does not run in the caller's directory.
func absFileArgs(args []string) []string {
	out := slices.Clone(args)
	pos := 0
	for i := 1; i < len(out); i++ {
		if strings.HasPrefix(out[i], "-") {
			if !strings.Contains(out[i], "=") && i+1 < len(out) && (out[i] == "-config" || out[i] == "--config") {
				i++
			}
			continue
		}
		pos++
		if (out[0] == "backup" && pos == 1) || (out[0] == "import" && pos == 2) {
			if abs, err := filepath.Abs(out[i]); err == nil {
				out[i] = abs
			}
		}
	}
	return out
}

// checkDBCommand runs bbolt's consistency check on the database: through the running server,
// which has it open, or else on the file, read only. A damaged file is checked without
// opening it for writing (which a damaged page would stop).
func checkDBCommand(cfgPath string, args []string, stdout, stderr io.Writer) int {
	if _, err := parseAdmin(append([]string{"check-db"}, args...), stdout); errors.Is(err, flag.ErrHelp) {
		return exitOK
	} else if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitUsage
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	if code, ok := ctlCall(ctlPath(cfg), []string{"check-db"}, stdout, stderr); ok {
		return code
	}
	problems, err := store.CheckFile(cfg.DataDir)
	if errors.Is(err, store.ErrLocked) {
		err = fmt.Errorf("the database in %s is in use, but the server's control socket does not answer; is another crewmail running there?", cfg.DataDir)
	}
	if err == nil {
		err = reportProblems(stdout, filepath.Join(cfg.DataDir, store.FileName), problems)
	}
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	return exitOK
}

// reportProblems prints what a check of the database at path found, "ok" when nothing, and
// fails when something.
func reportProblems(out io.Writer, path string, problems []string) error {
	if len(problems) == 0 {
		fmt.Fprintf(out, "%s: ok\n", path)
		return nil
	}
	for _, p := range problems {
		fmt.Fprintf(out, "%s: %s\n", path, p)
	}
	return fmt.Errorf("the database %s is damaged; stop the server and restore it from a backup (docs/operator.md, \"Backups and restoring\")", path)
}
