package main

import (
	"bufio"
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
	"crewmail/delivery"
	"crewmail/digest"
	"crewmail/internal/subject"
	"crewmail/internal/vocab"
	"crewmail/lists"
	"crewmail/store"
	"crewmail/templates"
)

// The commands on the database: lists, members, the archive, held posts, digests, export and
// import, backup and check. They run through the running server's control socket when there is
// one (bbolt allows one process per file), else on the database directly; either way through
// execAdmin and the command table.

// adminCommand runs the command on the database args names: in the server when one answers on
// the control socket, else here.
func adminCommand(cfgPath string, args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "crewmail: %v\n", err)
		return exitError
	}
	// A shared database (PostgreSQL) is open to every process: no need for the server.
	if !shared(cfg) {
		if code, ok := ctlCall(ctlPath(cfg), absFileArgs(args), stdout, stderr); ok {
			return code
		}
	}
	var st store.Backend
	open := func() (*backend, error) {
		var err error
		if st, err = openStore(cfg); err != nil {
			if errors.Is(err, store.ErrLocked) {
				return nil, errNoAnswer(cfg)
			}
			return nil, err
		}
		tpl, err := templates.New(templatesDir(cfg))
		if err != nil {
			return nil, err
		}
		log := slog.New(slog.DiscardHandler)
		svc := lists.New(st, tpl, listsConfig(cfg, st), log)
		b := &backend{svc: svc, digests: newScheduler(cfg, st, tpl, svc, log), st: st}
		if isTerminal(stderr) {
			b.progress = stderr
		}
		return b, nil
	}
	code := execAdmin(args, open, cfg, stdout, stderr)
	if st != nil {
		if err := st.Close(); err != nil {
			fmt.Fprintf(stderr, "crewmail: close database: %v\n", err)
			return exitError
		}
	}
	return code
}

// errNoAnswer: the database is locked by a process that does not answer on the control socket.
func errNoAnswer(cfg *config.Config) error {
	return fmt.Errorf("the database in %s is in use, but the server's control socket does not answer; is another crewmail running there?", cfg.DataDir)
}

// execAdmin runs the command on the database args names, with what open makes (asked for only
// once the command line is known to be right). direct is the configuration when no server runs
// and the command runs here; nil in the server.
func execAdmin(args []string, open func() (*backend, error), direct *config.Config, stdout, stderr io.Writer) int {
	cmd, rest, err := find(args, true, stdout)
	if err != nil {
		return exitCode(err, stderr)
	}
	c := newCmd(cmd.name, rest, stdout, stderr)
	c.open = open
	c.cfg, c.direct = direct, direct != nil
	return exitCode(cmd.fn(c), stderr)
}

// backend is what commands on the database work on: the server's own while it runs, else one
// made on the database for the one command.
type backend struct {
	svc     *lists.Service
	digests *digest.Scheduler
	st      store.Backend
	// queue is the running server's delivery queue; nil when the command opened the database
	// itself (no server runs, so no destination is on hold).
	queue *delivery.Queue
	// progress is where long commands report how far they are: the caller's terminal, or nil.
	progress io.Writer
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
	fs.Func("description", "what the list is for, in a sentence; shown in the welcome, the help and invitations", func(s string) error {
		o.Description = &s
		return nil
	})
	fs.Func("welcome-file", "a file with the owners' own text for the welcome (paragraphs apart by an empty line; \"\" for none)", func(s string) error {
		text := ""
		if s != "" {
			b, err := os.ReadFile(s)
			if err != nil {
				return fmt.Errorf("welcome file: %w", err)
			}
			text = string(b)
		}
		o.Welcome = &text
		return nil
	})
	fs.StringVar(&o.Archive, "archive", "", "who reads the archive on the web: private (its members, the default) or public (anyone)")
	fs.StringVar(&o.OwnerNotices, "owner-notices", "", "how owners hear of joins and leaves: each (a mail each, the default) or daily (one mail a day)")
	fs.Func("moderate-first-posts", "true: a new member's first post waits for the moderators", func(s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("-moderate-first-posts is true or false, not %q", s)
		}
		o.ModerateFirstPosts = &b
		return nil
	})
	fs.Func("hide-addresses", "true: list copies and digests show authors' names, not their addresses (members answer an author alone through the private reply address)", func(s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("-hide-addresses is true or false, not %q", s)
		}
		o.HideAddresses = &b
		return nil
	})
	fs.StringVar(&o.Directory, "directory", "", "who sees the crew's directory (who brought whom in, since when, proven posts) by mail: owners (the default), members or off")
	fs.Func("keep", "how long posts stay in the archive before they are redacted to tombstones: 2y, 18m, 90d, or 0 for ever (the default)", func(s string) error {
		o.Keep = &s
		return nil
	})
	fs.StringVar(&o.InviteBy, "invite-by", "", "who may invite by mail: owners (the default) or members (the join policy then decides whether owners approve)")
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

func cmdListCreate(c *cmd) error {
	c.params = "ADDRESS [-name NAME] [-owner ADDR]... [-join open|approve|invite] [-post verified|members|anyone] [-moderated true|false] [-nonmembers reject|hold] [-moderator ADDR]... [-timezone ZONE] [-subject-prefix TEXT] [-archive-url URL] [-dmarc-author reply-to|cc] [-description TEXT] [-welcome-file FILE] [-moderate-first-posts true|false] [-owner-notices each|daily] [-hide-addresses true|false] [-directory owners|members|off] [-invite-by owners|members] [-keep 2y|18m|90d|0] [-archive private|public]"
	c.help = "Makes a mailing list at ADDRESS."
	o := listFlags(c.flag)
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	l, err := b.svc.CreateList(args[0], *o)
	if err == nil {
		fmt.Fprintf(c.stdout, "created %s (join: %s, post: %s)\n", l.Address, l.Join, l.Post)
	}
	return err
}

func cmdListSet(c *cmd) error {
	c.params = "ADDRESS [the flags of create] [-remove-owner ADDR]..."
	c.help = "Changes the settings given; the others stay as they are."
	o := listFlags(c.flag)
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	l, err := b.svc.UpdateList(args[0], *o)
	if err == nil {
		fmt.Fprintf(c.stdout, "updated %s\n", l.Address)
	}
	return err
}

func cmdListLs(c *cmd) error {
	c.help = "Lists the lists, with their policies and how many members each has."
	if _, err := c.parse(0, 0); err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	ls, err := b.svc.Lists()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tNAME\tJOIN\tPOST\tMEMBERS")
	for _, l := range ls {
		ms, err := b.svc.Members(l.Address)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", l.Address, l.Name, l.Join, l.Post, len(ms))
	}
	return tw.Flush()
}

func cmdRecipients(c *cmd) error {
	c.params = "DOMAIN"
	c.help = `Prints the addresses the lists of DOMAIN accept, one "ADDRESS OK" line each: input for
postmap, so an MTA in front of crewmail can refuse unknown recipients at RCPT with 550
(relay_recipient_maps = hash:/etc/postfix/crewmail_recipients). Printed: each list's
address and its -request address, and postmaster@ and abuse@ when someone reads them
(the postmaster setting or the lists' owners). The command forms (LIST+help@,
LIST+confirm-TOKEN@...) are not printed: set the front MTA's recipient_delimiter to
crewmail's separator, and it looks up LIST@ for them.`
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	rcpts, err := b.svc.Recipients(args[0])
	if err != nil {
		return usageError(err.Error())
	}
	if len(rcpts) == 0 {
		return fmt.Errorf("no list has an address in %s", args[0])
	}
	for _, r := range rcpts {
		fmt.Fprintf(c.stdout, "%s OK\n", r)
	}
	return nil
}

func cmdListShow(c *cmd) error {
	c.params = "ADDRESS"
	c.help = "Shows every setting of a list, and how many members and posts it has."
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	svc := b.svc
	l, err := svc.List(args[0])
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
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
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
	fmt.Fprintf(tw, "first posts:\t%s\n", map[bool]string{true: "wait for a moderator", false: "go out like any other"}[l.ModerateFirstPosts])
	fmt.Fprintf(tw, "addresses:\t%s\n", map[bool]string{true: "hidden: members see names only", false: "shown"}[l.HideAddresses])
	if l.Description != "" {
		fmt.Fprintf(tw, "description:\t%s\n", oneLine(l.Description, 120))
	}
	if l.Welcome != "" {
		fmt.Fprintf(tw, "welcome text:\t%s\n", oneLine(l.Welcome, 60))
	}
	if len(l.Banned) > 0 {
		fmt.Fprintf(tw, "banned:\t%s\n", strings.Join(l.Banned, ", "))
	}
	if l.PolicyBounces > 0 {
		fmt.Fprintf(tw, "policy refusals:\t%d, the last on %s: %s\n", l.PolicyBounces, l.LastPolicyAt.Format("2006-01-02 15:04"), oneLine(l.LastPolicy, 120))
	}
	archive := "private (members read it on the web)"
	if l.PublicArchive {
		archive = "public (anyone reads it on the web)"
	}
	fmt.Fprintf(tw, "web archive:\t%s\n", archive)
	fmt.Fprintf(tw, "subject prefix:\t%s\narchive url:\t%s\ncreated:\t%s\nmembers:\t%d\nposts:\t%d\n", l.SubjectPrefix, l.ArchiveURL, l.Created.Format(time.RFC3339), len(ms), len(posts))
	return tw.Flush()
}

func cmdListRm(c *cmd) error {
	c.params = "ADDRESS"
	c.help = "Removes a list with its members and archive."
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	if err := b.svc.RemoveList(args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "removed %s with its members and archive\n", args[0])
	return nil
}

func cmdMemberAdd(c *cmd) error {
	c.params = "LIST ADDRESS... [-mode each|daily|weekly|nomail] [-no-own-posts] [-welcome]"
	c.help = "Adds members to a list at once, without asking them to confirm."
	mode := c.flag.String("mode", string(vocab.Each), "how the member receives the list: each, daily, weekly or nomail")
	noOwn := c.flag.Bool("no-own-posts", false, "the members do not get their own posts back")
	welcome := c.flag.Bool("welcome", false, "mail each new member the welcome (how to post, change mode, leave)")
	args, err := c.parse(2, many)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	for _, a := range args[1:] {
		m, err := b.svc.AddMember(args[0], a, *mode, *welcome)
		if err != nil {
			return err
		}
		if *noOwn {
			if m, err = b.svc.SetOwnPosts(args[0], m.Address, false); err != nil {
				return err
			}
		}
		fmt.Fprintf(c.stdout, "added %s to %s (%s)\n", m.Address, args[0], m.Mode)
	}
	return nil
}

func cmdMemberRm(c *cmd) error {
	c.params = "LIST ADDRESS"
	c.help = "Takes a member off a list."
	args, err := c.parse(2, 2)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	if err := b.svc.RemoveMember(args[0], args[1]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "removed %s from %s\n", args[1], args[0])
	return nil
}

func cmdMemberData(c *cmd) error {
	c.params = "ADDRESS [-mbox]"
	c.help = `Prints, as JSON, everything the server holds about ADDRESS on every list: memberships
with how each began and was confirmed, settings, the app password's date, actions waiting
(what the member's own "export" mails her); -mbox prints her posts instead, as an mbox.`
	posts := c.flag.Bool("mbox", false, "print the address's posts as an mbox (mboxrd) instead")
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	d, box, err := b.svc.MyDataOfAddress(args[0])
	if err != nil {
		return err
	}
	if *posts {
		_, err = c.stdout.Write(box)
		return err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", out)
	return err
}

func cmdPostRedact(c *cmd) error {
	c.params = "LIST SEQ [-reason TEXT]"
	c.help = `Replaces archived post SEQ of LIST with a tombstone that says why (its place in its
thread stays): in the archive, IMAP (under a new UIDVALIDITY), digests not yet sent and
exports. The redaction is journaled beside the database, so a backup from before it,
restored, gets it again.`
	reason := c.flag.String("reason", "", "why, as the tombstone says it (default: removed by the list's owners)")
	args, err := c.parse(2, 2)
	if err != nil {
		return err
	}
	seq, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil || seq == 0 {
		return usageError(fmt.Sprintf("SEQ is a post's number (crewmail archive ls), not %q", args[1]))
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	if err := b.svc.RedactPost(args[0], seq, *reason); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "post %d of %s redacted\n", seq, args[0])
	return nil
}

func cmdMemberPassword(c *cmd) error {
	c.params = "LIST ADDRESS"
	c.help = "Mails the member a new app password for the IMAP archive."
	args, err := c.parse(2, 2)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	if err := b.svc.NewAppPassword(args[0], args[1]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "a new app password went to %s by mail\n", args[1])
	return nil
}

func cmdMemberLs(c *cmd) error {
	c.params = "LIST"
	c.help = "Lists a list's members: their mode, when they were added, their bounces."
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	ms, err := b.svc.Members(args[0])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tMODE\tADDED\tBOUNCES")
	for _, m := range ms {
		bounces := ""
		switch {
		case !m.Paused.IsZero():
			bounces = fmt.Sprintf("paused since %s (score %g)", m.Paused.Format("2006-01-02"), m.BounceScore)
		case m.BounceScore > 0:
			bounces = fmt.Sprintf("score %g since %s", m.BounceScore, m.BouncedFrom.Format("2006-01-02"))
		}
		mode := string(m.Mode)
		if m.NoOwnPosts {
			mode += ", no own posts"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Address, mode, m.Added.Format("2006-01-02"), bounces)
	}
	return tw.Flush()
}

func cmdMemberMode(c *cmd) error {
	c.params = "LIST ADDRESS each|daily|weekly|nomail"
	c.help = "Sets how a member receives the list: each post, a daily or weekly digest, or nothing."
	args, err := c.parse(3, 3)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	m, err := b.svc.SetMode(args[0], args[1], args[2])
	if err == nil {
		fmt.Fprintf(c.stdout, "%s now receives %s in %s mode\n", m.Address, args[0], m.Mode)
	}
	return err
}

func cmdMemberSet(c *cmd) error {
	c.params = "LIST ADDRESS -no-own-posts|-own-posts|-show-read|-hide-read"
	c.help = "Sets whether a member gets her own posts back (by mail and in digests), and whether her digests show in full the posts she has read over IMAP."
	noOwn := c.flag.Bool("no-own-posts", false, "her own posts are not sent back to her")
	own := c.flag.Bool("own-posts", false, "her own posts come back to her, as to everyone (the default)")
	showRead := c.flag.Bool("show-read", false, "her digests show in full the posts she has read over IMAP")
	hideRead := c.flag.Bool("hide-read", false, "her digests show one line for each post she has read over IMAP (the default)")
	args, err := c.parse(2, 2)
	if err != nil {
		return err
	}
	if *showRead || *hideRead {
		if *showRead == *hideRead || *noOwn || *own {
			return c.usageError()
		}
		b, err := c.backend()
		if err != nil {
			return err
		}
		m, err := b.svc.SetShowRead(args[0], args[1], *showRead)
		if err == nil {
			what := "one line for each post she has read over IMAP"
			if m.ShowRead {
				what = "in full the posts she has read over IMAP"
			}
			fmt.Fprintf(c.stdout, "%s: her digests of %s show %s\n", m.Address, args[0], what)
		}
		return err
	}
	if *noOwn == *own {
		return c.usageError()
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	m, err := b.svc.SetOwnPosts(args[0], args[1], *own)
	if err == nil {
		what := "gets her own posts back"
		if m.NoOwnPosts {
			what = "does not get her own posts back"
		}
		fmt.Fprintf(c.stdout, "%s %s from %s\n", m.Address, what, args[0])
	}
	return err
}

func cmdHeldLs(c *cmd) error {
	c.params = "LIST"
	c.help = "Lists a list's held posts: what each waits for, and why."
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	held, err := b.svc.Held(args[0])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tSUBJECT\tWAITS FOR\tEXPIRES\tWHY")
	for _, h := range held {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.Received.Format("2006-01-02 15:04"), h.From, oneLine(h.Subject, 40), h.Kind, h.Expires.Format("2006-01-02"), oneLine(h.Reason, 60))
	}
	return tw.Flush()
}

func cmdHeldApprove(c *cmd) error {
	c.params = "LIST ID"
	c.help = "Posts a held post to the list."
	args, err := c.parse(2, 2)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	id, err := heldID(args[1])
	if err != nil {
		return err
	}
	res, err := b.svc.Approve(args[0], id)
	if err != nil {
		return err
	}
	if len(res.Posts) == 0 {
		fmt.Fprintf(c.stdout, "held post %d was already on %s; removed from the held posts\n", id, args[0])
		return nil
	}
	fmt.Fprintf(c.stdout, "posted held post %d to %s (%d deliveries)\n", id, args[0], res.Queued)
	return nil
}

func cmdHeldReject(c *cmd) error {
	c.params = "LIST ID [-reason TEXT]"
	c.help = "Deletes a held post."
	reason := c.flag.String("reason", "", "why, in a sentence the author reads")
	args, err := c.parse(2, 2)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	id, err := heldID(args[1])
	if err != nil {
		return err
	}
	if err := b.svc.Reject(args[0], id, *reason); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted held post %d of %s\n", id, args[0])
	return nil
}

// heldID is the held post's ID that s names.
func heldID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a held post's ID (see crewmail held ls)", s)
	}
	return id, nil
}

func cmdBan(c *cmd) error {
	c.params = "LIST ADDRESS..."
	c.help = "Bans addresses (or @domain) from a list: they may neither join nor post. Members stay members; remove them with member rm."
	return banCmd(c, true)
}

func cmdUnban(c *cmd) error {
	c.params = "LIST ADDRESS..."
	c.help = "Lifts bans."
	return banCmd(c, false)
}

func banCmd(c *cmd, ban bool) error {
	args, err := c.parse(2, many)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	o := lists.ListOptions{Unban: args[1:]}
	if ban {
		o = lists.ListOptions{Ban: args[1:]}
	}
	l, err := b.svc.UpdateList(args[0], o)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "banned from %s: %s\n", l.Address, strings.Join(l.Banned, " "))
	return nil
}

func cmdPendingLs(c *cmd) error {
	c.params = "LIST"
	c.help = "Lists the requests to join a list that wait for an owner's decision."
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	reqs, err := b.svc.JoinRequests(args[0])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tASKED\tADDRESS\tEXPIRES")
	for _, r := range reqs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.ID, r.Received.Format("2006-01-02 15:04"), r.Address, r.Expires.Format("2006-01-02"))
	}
	return tw.Flush()
}

func cmdPendingApprove(c *cmd) error {
	c.params = "LIST ID"
	c.help = "Lets the one who asked to join in: they get the welcome."
	return decideJoin(c, true)
}

func cmdPendingDecline(c *cmd) error {
	c.params = "LIST ID [-reason TEXT]"
	c.help = "Turns a request to join down; the one who asked is told, with the reason."
	return decideJoin(c, false)
}

func decideJoin(c *cmd, approve bool) error {
	var reason *string
	if !approve {
		reason = c.flag.String("reason", "", "why, in a sentence the one who asked reads")
	}
	args, err := c.parse(2, 2)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	id, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a join request's ID (see crewmail pending ls %s)", args[1], args[0])
	}
	why := ""
	if reason != nil {
		why = *reason
	}
	who, err := b.svc.DecideJoin(args[0], id, approve, why)
	if err != nil {
		return err
	}
	if approve {
		fmt.Fprintf(c.stdout, "%s is now a member of %s\n", who, args[0])
	} else {
		fmt.Fprintf(c.stdout, "declined %s's request to join %s; they are told\n", who, args[0])
	}
	return nil
}

func cmdDigestPreview(c *cmd) error {
	c.params = "LIST [-period daily|weekly] [-member ADDR] [-html]"
	c.help = "Prints a digest as it would go out now, without sending it."
	period := c.flag.String("period", string(vocab.Daily), "the digest of the last day (daily) or week (weekly)")
	member := c.flag.String("member", "", "the digest this member would get now (their mode, what is new for them, their mutes)")
	asHTML := c.flag.Bool("html", false, "print the HTML part instead of the text part")
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	p, err := vocab.ParseMode(*period)
	if err != nil || !p.Digest() {
		return fmt.Errorf("-period is daily or weekly, not %q", *period)
	}
	d, err := b.digests.Preview(args[0], p, *member)
	if err != nil {
		return err
	}
	if d.Messages == 0 {
		fmt.Fprintf(c.stdout, "nothing new for a %s digest of %s\n", d.Period, args[0])
		return nil
	}
	var body string
	if *asHTML {
		body, err = b.digests.HTML(d)
	} else {
		body, err = b.digests.Text(d)
	}
	if err == nil {
		fmt.Fprint(c.stdout, body)
	}
	return err
}

func cmdDigestSend(c *cmd) error {
	c.params = "[LIST] [-now]"
	c.help = "Sends the digests that are due, of every list or of LIST."
	now := c.flag.Bool("now", false, "every digest member gets what is new for them now, whatever the schedule")
	args, err := c.parse(0, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	list := ""
	if len(args) == 1 {
		list = args[0]
	}
	sent, err := b.digests.SendDue(list, *now)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "sent %d digests to %d members (%d messages)\n", sent.Digests, sent.Members, sent.Messages)
	return nil
}

func cmdExport(c *cmd) error {
	c.params = "LIST [-since DATE]"
	c.help = "Writes a list's archive to stdout as an mbox (mboxrd)."
	since := c.flag.String("since", "", "only posts received on or after this day, YYYY-MM-DD (UTC)")
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	var from time.Time
	if *since != "" {
		if from, err = time.Parse("2006-01-02", *since); err != nil {
			return fmt.Errorf("-since %q is not a day like 2026-11-25", *since)
		}
	}
	p := newProgress(b.progress, "exported")
	n, err := b.svc.Export(args[0], from, c.stdout, p.update)
	p.done(n)
	return err
}

func cmdImport(c *cmd) error {
	c.params = "LIST FILE"
	c.help = "Reads an mbox into a list's archive; nothing is sent, and messages already there are skipped."
	args, err := c.parse(2, 2)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	f, err := os.Open(args[1])
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", args[1], errors.Unwrap(err))
	}
	defer f.Close()
	p := newProgress(b.progress, "read")
	res, err := b.svc.Import(args[0], f, p.update)
	p.done(res.Imported + res.Skipped + len(res.Refused))
	if err != nil {
		return fmt.Errorf("import %s: %w", args[1], err)
	}
	fmt.Fprintf(c.stdout, "imported %d messages into %s; %d were there already", res.Imported, args[0], res.Skipped)
	if len(res.Refused) > 0 {
		fmt.Fprintf(c.stdout, "; %d could not be read (first: %s)", len(res.Refused), res.Refused[0])
	}
	fmt.Fprintln(c.stdout)
	return nil
}

func cmdBackup(c *cmd) error {
	c.params = "FILE"
	c.help = "Writes a consistent copy of the database to FILE, while the server runs."
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	if c.cfg != nil && shared(c.cfg) {
		return errNotAFile("backup")
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	m, ok := b.st.(store.Maintenance)
	if !ok {
		return errNotAFile("backup")
	}
	n, err := m.Backup(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote a consistent copy of the database to %s (%d bytes)\n", args[0], n)
	return nil
}

// cmdCheckDB runs bbolt's consistency check on the database: in the running server, which has
// it open, or else on the file, read only. A damaged file is checked without opening it for
// writing (which a damaged page would stop).
func cmdCheckDB(c *cmd) error {
	c.help = "Checks that the database is sound; exit status 1 when it is damaged."
	if _, err := c.parse(0, 0); err != nil {
		return err
	}
	if c.direct && shared(c.cfg) {
		return errNotAFile("check-db")
	}
	if c.direct {
		problems, err := store.CheckFile(c.cfg.DataDir)
		if errors.Is(err, store.ErrLocked) {
			return errNoAnswer(c.cfg)
		}
		if err != nil {
			return err
		}
		return reportProblems(c.stdout, filepath.Join(c.cfg.DataDir, store.FileName), problems)
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	m, ok := b.st.(store.Maintenance)
	if !ok {
		return errNotAFile("check-db")
	}
	problems, err := m.Problems()
	if err != nil {
		return err
	}
	return reportProblems(c.stdout, m.Path(), problems)
}

func cmdArchiveLs(c *cmd) error {
	c.params = "LIST [-json]"
	c.help = "Lists a list's archive: sequence, date, thread, author, subject, Message-ID."
	asJSON := c.flag.Bool("json", false, "one JSON object per line instead of a table")
	args, err := c.parse(1, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	// Streamed a page of posts at a time, through one buffer: over the control socket each
	// write is a frame (a million lines were 30 million writes).
	out := bufio.NewWriterSize(c.stdout, 64<<10)
	var (
		each func([]store.Post) error
		tw   *tabwriter.Writer // the table's page being aligned
	)
	if *asJSON {
		enc := json.NewEncoder(out)
		each = func(posts []store.Post) error {
			for _, p := range posts {
				if err := enc.Encode(archiveEntry(p)); err != nil {
					return err
				}
			}
			return nil
		}
	} else {
		// The table is aligned a page at a time: aligning all of it would hold all of it.
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tDATE\tTHREAD\tFROM\tCONVERSATION\tMESSAGE-ID")
		titles := conversationTitles{}
		each = func(posts []store.Post) error {
			for _, p := range posts {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t<%s>\n", p.Seq, p.Received.Format("2006-01-02 15:04"), p.Thread, p.From, oneLine(titles.of(p), 60), p.MessageID)
			}
			return tw.Flush()
		}
	}
	if err := b.svc.EachPost(args[0], each); err != nil {
		return err
	}
	if tw != nil {
		if err := tw.Flush(); err != nil { // the header of an empty archive
			return err
		}
	}
	return out.Flush()
}

// conversationTitles name the threads of an archive read in order, as digests do
// (subject.Title: "Tomatoes" for a thread of "Re: [Crew] Tomatoes" posts), from the first few
// subjects of each thread seen so far.
type conversationTitles map[uint64][]string

// titleSubjects bounds the subjects kept per thread: the title is the first that is not a
// digest's, found among the first few.
const titleSubjects = 4

func (ct conversationTitles) of(p store.Post) string {
	if s := ct[p.Thread]; len(s) < titleSubjects {
		ct[p.Thread] = append(s, p.Subject)
	}
	if t := subject.Title(ct[p.Thread]); t != "" {
		return t
	}
	return "(no subject)"
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
	// Evidence: the Authentication-Results of the trusted front MTA the post arrived with.
	Evidence []string `json:"evidence,omitempty"`
}

func archiveEntry(p store.Post) archiveJSON {
	date := p.Date
	if date.IsZero() {
		date = p.Received
	}
	return archiveJSON{Seq: p.Seq, Date: date, Received: p.Received, MessageID: p.MessageID, Thread: p.Thread, From: p.From, Subject: p.Subject, Size: p.Size, Verified: p.Verified, Evidence: p.Evidence}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
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

// cmdReindex rebuilds the search index of one list or of every list: after an upgrade from a
// database without one, or to be sure of it.
func cmdReindex(c *cmd) error {
	c.params = "[LIST]"
	c.help = "Rebuilds the search index of LIST (of every list when none is named) from its archive."
	args, err := c.parse(0, 1)
	if err != nil {
		return err
	}
	b, err := c.backend()
	if err != nil {
		return err
	}
	names := args
	if len(names) == 0 {
		if err := b.st.View(func(tx store.Tx) (err error) { names, err = tx.ListAddresses(); return err }); err != nil {
			return err
		}
	}
	for _, name := range names {
		p := newProgress(b.progress, "indexed")
		n, err := b.svc.Reindex(name, p.update)
		p.done(n)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("there is no list %s", name)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "indexed %d posts of %s\n", n, name)
	}
	return nil
}
