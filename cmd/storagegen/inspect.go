package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/storagegen/storagegen/internal/inspect"
	"github.com/storagegen/storagegen/runtime"
)

// The inspect subcommand: what is in Redis under the schema, and the
// writes an operator needs.

const inspectUsage = `[flags]                               the overview: every declaration's counts
       storagegen inspect [flags] queue NAME [ARG=VALUE…]      its instances and counts (-peek N: the oldest items)
       storagegen inspect [flags] dead NAME [ARG=VALUE…]       its dead letters (-requeue N, -purge)
       storagegen inspect [flags] reclaim|pause|resume NAME [ARG=VALUE…]
       storagegen inspect [flags] cache NAME [ARG=VALUE…]      its entries with TTLs (-get: the value)
Flags may come before or after the words.`

// inspectIO is what the inspect command reads and writes beyond its
// arguments; tests replace it.
type inspectIO struct {
	ctx       context.Context
	stdin     io.Reader
	stdinTTY  bool // confirmations may be asked
	stdoutTTY bool // -watch redraws in place
	getenv    func(string) string
}

// newInspectIO is the real one: the process's stdin and stdout, and a
// context that SIGINT ends.
var newInspectIO = func() (inspectIO, func()) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	return inspectIO{ctx: ctx, stdin: os.Stdin, stdinTTY: isTerminal(os.Stdin), stdoutTTY: isTerminal(os.Stdout), getenv: os.Getenv}, stop
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type inspectFlags struct {
	schema, redis                    string
	asJSON, unknown, yes, get, purge bool
	watch                            time.Duration
	peek, dead, requeue, limit       int
	maxInstances, maxKeys            int
	words                            []string
}

// parseInspect parses flags that may come between the words.
func parseInspect(args []string, stderr io.Writer) (*inspectFlags, int) {
	f := &inspectFlags{}
	fs := newFlags("inspect", inspectUsage, stderr)
	fs.StringVar(&f.schema, "schema", "schema.yaml", "the schema `file`")
	fs.StringVar(&f.redis, "redis", "", "the Redis `URL` in any form the runtime reads (redis://, rediss://, redis+cluster://, redis+sentinel://, …); default $REDIS_URL, else redis://127.0.0.1:6379/0")
	fs.BoolVar(&f.asJSON, "json", false, "write JSON instead of tables")
	fs.BoolVar(&f.unknown, "unknown", false, "overview: list the keys under the prefix that match no declaration")
	fs.IntVar(&f.limit, "limit", 100, "overview -unknown: list at most `N` unknown keys; queue, cache: list at most N instances")
	fs.DurationVar(&f.watch, "watch", 0, "overview: refresh every `interval` (in place on a terminal) until interrupted")
	fs.IntVar(&f.peek, "peek", 0, "queue: show the `N` oldest ready items (and N in flight) of each instance listed, decoded as the payload type")
	fs.IntVar(&f.dead, "n", 10, "dead: show the `N` oldest dead letters")
	fs.IntVar(&f.requeue, "requeue", 0, "dead: move the `N` oldest dead letters back to the queue")
	fs.BoolVar(&f.purge, "purge", false, "dead: delete the dead letters")
	fs.BoolVar(&f.get, "get", false, "cache: show the entry's value, decoded as the payload type (name every argument)")
	fs.BoolVar(&f.yes, "yes", false, "do writes without asking (required when stdin is not a terminal)")
	fs.IntVar(&f.maxInstances, "max-instances", 10000, "collect at most `N` instances per declaration; beyond it counts say \"at least\"")
	fs.IntVar(&f.maxKeys, "max-keys", 1000000, "read at most `N` keys per walk of the key space (SCAN); beyond it counts say \"at least\"")
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0
			}
			return nil, 2
		}
		if fs.NArg() == 0 {
			break
		}
		f.words = append(f.words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	bad := func(format string, a ...any) (*inspectFlags, int) {
		fmt.Fprintf(stderr, "storagegen inspect: "+format+"\n", a...)
		fs.Usage()
		return nil, 2
	}
	sub := ""
	if len(f.words) > 0 {
		sub = f.words[0]
	}
	switch sub {
	case "":
	case "queue", "dead", "reclaim", "pause", "resume", "cache":
		if len(f.words) < 2 {
			return bad("%s needs a NAME", sub)
		}
	default:
		return bad("unknown subcommand %q", sub)
	}
	only := map[string][]bool{
		"":      {f.peek == 0, !f.get, f.requeue == 0, !f.purge},
		"queue": {!f.unknown, f.watch == 0, !f.get, f.requeue == 0, !f.purge},
		"dead":  {!f.unknown, f.watch == 0, !f.get, f.peek == 0},
		"cache": {!f.unknown, f.watch == 0, f.peek == 0, f.requeue == 0, !f.purge},
	}
	conds, ok := only[sub]
	if !ok {
		conds = []bool{!f.unknown, f.watch == 0, !f.get, f.peek == 0, f.requeue == 0, !f.purge}
	}
	for _, c := range conds {
		if !c {
			return bad("a flag given does not apply to %q (see the usage)", orText(sub, "the overview"))
		}
	}
	switch {
	case f.requeue != 0 && f.purge:
		return bad("-requeue and -purge exclude each other")
	case f.peek < 0 || f.requeue < 0 || f.dead < 1 || f.limit < 0 || f.watch < 0 || f.maxInstances < 1 || f.maxKeys < 1:
		return bad("counts and intervals must be positive")
	case f.watch != 0 && f.watch < 100*time.Millisecond:
		return bad("-watch is at least 100ms")
	}
	return f, -1
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func runInspect(args []string, stdout, stderr io.Writer) int {
	f, code := parseInspect(args, stderr)
	if f == nil {
		return code
	}
	io, stop := newInspectIO()
	defer stop()
	m, ok := loadSchema(f.schema, stderr)
	if !ok {
		return 1
	}
	url := f.redis
	if url == "" {
		url = io.getenv("REDIS_URL")
	}
	ds, err := runtime.New(runtime.Options{URL: url, Logger: slog.New(slog.DiscardHandler), PoolSize: 16})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer ds.Close()
	in := inspect.New(m, ds, inspect.Options{MaxInstances: f.maxInstances, MaxKeys: f.maxKeys})
	c := &inspectCmd{f: f, in: in, io: io, out: stdout, errw: stderr}
	return c.run()
}

type inspectCmd struct {
	f    *inspectFlags
	in   *inspect.Inspector
	io   inspectIO
	out  io.Writer
	errw io.Writer
}

func (c *inspectCmd) fail(err error) int {
	fmt.Fprintln(c.errw, errText(err))
	if errors.Is(err, inspect.ErrUnknownDecl) || errors.Is(err, inspect.ErrNotSupported) || errors.Is(err, runtime.ErrInvalidArgument) {
		return 2
	}
	return 1
}

// errText prefixes the inspector's own errors as the runtime's are.
func errText(err error) string {
	if s := err.Error(); strings.HasPrefix(s, "storagegen") {
		return s
	}
	return "storagegen inspect: " + err.Error()
}

func (c *inspectCmd) run() int {
	ctx := c.io.ctx
	if len(c.f.words) == 0 {
		return c.overview(ctx)
	}
	sub, name := c.f.words[0], c.f.words[1]
	kind := inspect.KindQueue
	if sub == "cache" {
		kind = inspect.KindCache
	}
	d, err := c.in.Decl(kind, name)
	if err != nil {
		return c.fail(err)
	}
	filter, err := d.ParseFilter(c.f.words[2:])
	if err != nil {
		return c.fail(err)
	}
	switch sub {
	case "queue", "cache":
		if c.f.get {
			e, err := c.in.CacheGet(ctx, d, filter)
			if err != nil {
				return c.fail(err)
			}
			return c.emit(e, func(w io.Writer) { printEntry(w, e) })
		}
		return c.instances(ctx, d, filter)
	case "dead":
		return c.deadLetters(ctx, d, filter)
	}
	return c.write(ctx, sub, d, filter)
}

func (c *inspectCmd) emit(v any, text func(io.Writer)) int {
	if c.f.asJSON {
		writeInspectJSON(c.out, v)
	} else {
		text(c.out)
	}
	return 0
}

func (c *inspectCmd) overview(ctx context.Context) int {
	limit := 0
	if c.f.unknown {
		limit = c.f.limit
	}
	show := func() error {
		ov, err := c.in.Overview(ctx, limit)
		if err != nil {
			return err
		}
		if c.f.watch > 0 && c.io.stdoutTTY && !c.f.asJSON {
			fmt.Fprint(c.out, "\x1b[H\x1b[2J") // home and clear: redraw in place
		}
		c.emit(ov, func(w io.Writer) { printOverview(w, ov, c.f.unknown) })
		return nil
	}
	if err := show(); err != nil {
		return c.fail(err)
	}
	if c.f.watch == 0 {
		return 0
	}
	t := time.NewTicker(c.f.watch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
		if !c.io.stdoutTTY && !c.f.asJSON {
			fmt.Fprintln(c.out)
		}
		if err := show(); err != nil {
			if ctx.Err() != nil {
				return 0
			}
			return c.fail(err)
		}
	}
}

func (c *inspectCmd) instances(ctx context.Context, d *inspect.Decl, f inspect.Filter) int {
	l, err := c.in.Instances(ctx, d, f)
	if err != nil {
		return c.fail(err)
	}
	if c.f.peek == 0 {
		return c.emit(l, func(w io.Writer) { printInstances(w, l, c.f.limit) })
	}
	var peeks []*inspect.Items
	for i, x := range l.List {
		if i >= c.f.limit {
			break
		}
		p, err := c.in.Peek(ctx, d, x.Filter(), c.f.peek)
		if err != nil {
			return c.fail(err)
		}
		peeks = append(peeks, p)
	}
	if c.f.asJSON {
		writeInspectJSON(c.out, struct {
			*inspect.Instances
			Peek []*inspect.Items `json:"peek"`
		}{l, peeks})
		return 0
	}
	printInstances(c.out, l, c.f.limit)
	for _, p := range peeks {
		printItems(c.out, p)
	}
	return 0
}

// targets returns the instances a write or a dead-letter listing applies
// to: the one f names, or those a walk finds.
func (c *inspectCmd) targets(ctx context.Context, d *inspect.Decl, f inspect.Filter) (*inspect.Instances, error) {
	return c.in.Instances(ctx, d, f)
}

func (c *inspectCmd) deadLetters(ctx context.Context, d *inspect.Decl, f inspect.Filter) int {
	l, err := c.targets(ctx, d, f)
	if err != nil {
		return c.fail(err)
	}
	if c.f.requeue > 0 || c.f.purge {
		what := "delete every dead letter"
		if c.f.requeue > 0 {
			what = fmt.Sprintf("move up to %d dead letters back to the queue", c.f.requeue)
		}
		return c.apply(d, l, what, func(x inspect.Instance) (string, error) {
			if c.f.purge {
				n, err := c.in.Purge(ctx, d, x.Filter())
				return fmt.Sprintf("purged %d", n), err
			}
			n, err := c.in.Requeue(ctx, d, x.Filter(), c.f.requeue)
			return fmt.Sprintf("requeued %d", n), err
		})
	}
	var all []*inspect.Items
	for i, x := range l.List {
		if i >= c.f.limit {
			break
		}
		if x.Queue != nil && x.Queue.Dead == 0 {
			continue
		}
		items, err := c.in.Dead(ctx, d, x.Filter(), c.f.dead)
		if err != nil {
			return c.fail(err)
		}
		all = append(all, items)
	}
	if all == nil {
		all = []*inspect.Items{}
	}
	return c.emit(all, func(w io.Writer) {
		if len(all) == 0 {
			fmt.Fprintf(w, "%s: no dead letters\n", d.Name)
		}
		for _, it := range all {
			printItems(w, it)
		}
	})
}

func (c *inspectCmd) write(ctx context.Context, sub string, d *inspect.Decl, f inspect.Filter) int {
	if !d.Reliable() {
		return c.fail(fmt.Errorf("%w: %s is for at-least-once queues; queue %s is at-most-once", inspect.ErrNotSupported, sub, d.Name))
	}
	l, err := c.targets(ctx, d, f)
	if err != nil {
		return c.fail(err)
	}
	what := map[string]string{
		"reclaim": "put in-flight items whose lease ran out back in the ready list",
		"pause":   "pause (receivers wait without taking items; pushes go on)",
		"resume":  "resume (receivers take items again)",
	}[sub]
	return c.apply(d, l, what, func(x inspect.Instance) (string, error) {
		switch sub {
		case "reclaim":
			n, err := c.in.Reclaim(ctx, d, x.Filter())
			return fmt.Sprintf("reclaimed %d", n), err
		case "pause":
			return "paused", c.in.Pause(ctx, d, x.Filter())
		}
		return "resumed", c.in.Resume(ctx, d, x.Filter())
	})
}

// apply confirms a write to every instance of l, then does it to each and
// reports each outcome.
func (c *inspectCmd) apply(d *inspect.Decl, l *inspect.Instances, what string, do func(inspect.Instance) (string, error)) int {
	if len(l.List) == 0 {
		fmt.Fprintf(c.errw, "storagegen inspect: %s %s: no instance found\n", d.Kind, d.Name)
		return 1
	}
	if l.AtLeast {
		fmt.Fprintf(c.errw, "storagegen inspect: %s %s: more instances than the walk collected; name more arguments\n", d.Kind, d.Name)
		return 1
	}
	if !c.confirm(fmt.Sprintf("%s %s: %s, on %d instance(s)", d.Kind, d.Name, what, len(l.List)), l) {
		return 1
	}
	type result struct {
		Key    string        `json:"key"`
		Args   []inspect.Arg `json:"args"`
		Result string        `json:"result"`
		Error  string        `json:"error,omitempty"`
	}
	var results []result
	code := 0
	for _, x := range l.List {
		msg, err := do(x)
		r := result{Key: x.Key, Args: x.Args, Result: msg}
		if err != nil {
			r.Error, r.Result, code = errText(err), "", 1
		}
		results = append(results, r)
	}
	c.emit(results, func(w io.Writer) {
		for _, r := range results {
			if r.Error != "" {
				fmt.Fprintf(w, "%s: %s\n", keyText(r.Key), r.Error)
			} else {
				fmt.Fprintf(w, "%s: %s\n", keyText(r.Key), r.Result)
			}
		}
	})
	return code
}

// confirm asks on the terminal, unless -yes; without a terminal it
// refuses.
func (c *inspectCmd) confirm(what string, l *inspect.Instances) bool {
	if c.f.yes {
		return true
	}
	if !c.io.stdinTTY {
		fmt.Fprintf(c.errw, "storagegen inspect: %s: refused: stdin is not a terminal, so nothing can be confirmed; add -yes\n", what)
		return false
	}
	for i, x := range l.List {
		if i == 10 {
			fmt.Fprintf(c.errw, "  … and %d more\n", len(l.List)-10)
			break
		}
		fmt.Fprintf(c.errw, "  %s\n", keyText(x.Key))
	}
	fmt.Fprintf(c.errw, "%s. Go ahead? [y/N] ", what)
	line, _ := bufio.NewReader(c.io.stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a == "y" || a == "yes" {
		return true
	}
	fmt.Fprintln(c.errw, "storagegen inspect: nothing done")
	return false
}

// keyText quotes a key when it holds bytes a terminal would act on.
func keyText(k string) string {
	if strconv.Quote(k) == `"`+k+`"` {
		return k
	}
	return strconv.Quote(k)
}
