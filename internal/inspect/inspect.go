// Package inspect reads a storagegen schema at run time and shows what is
// in Redis under it: every declaration's instances (their keys parsed back
// into arguments), the counts of each (from the runtime's Stats, the one
// code path the generated API offers too), the oldest items and dead
// letters decoded as the schema's payload types, and the writes an
// operator needs (requeue and purge dead letters, reclaim expired leases,
// pause and resume an at-least-once queue). It prints nothing: the
// storagegen inspect command and a web page format its results alike.
//
// Finding instances is made to be harmless on a production server: SCAN
// MATCH with a glob of the declaration (its literal text escaped, so a
// plain value's glob characters match only themselves), COUNT batches, on
// every primary of a cluster, with a cap on what is collected, beyond
// which a result says "at least"; every key SCAN returns is parsed back
// before it counts.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/storagegen/storagegen/gen"
	"github.com/storagegen/storagegen/runtime"
)

// ErrUnknownDecl means a name is no declaration of the schema.
var ErrUnknownDecl = errors.New("no such declaration")

// ErrNotSupported means an operation does not apply to a declaration's
// kind: pausing an at-most-once queue, say.
var ErrNotSupported = errors.New("not supported")

// Options bound what an Inspector asks of the server. Zero means default.
type Options struct {
	// ScanCount is the COUNT hint of each SCAN call: about how many keys
	// the server looks at per call. Default 1000.
	ScanCount int64
	// MaxInstances is how many instances of one declaration are collected
	// (and have their Stats read); beyond it a result says "at least".
	// Default 10,000.
	MaxInstances int
	// MaxKeys is how many keys one walk of the key space reads at most
	// (summed over a cluster's primaries); beyond it the walk stops and
	// its counts say "at least". Default 1,000,000.
	MaxKeys int
	// Concurrency is how many Stats calls run at once. Default 8.
	Concurrency int
}

func (o *Options) defaults() {
	if o.ScanCount <= 0 {
		o.ScanCount = 1000
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = 10_000
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 1_000_000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
}

// Inspector answers questions about the data of one schema in one Redis.
// It is safe for concurrent use.
type Inspector struct {
	model *gen.Model
	ds    *runtime.DataStore
	opts  Options
	decls []*Decl
	byKey map[string]*Decl // by Kind+" "+Name
}

// New returns an Inspector of the checked schema m over ds, which it does
// not close.
func New(m *gen.Model, ds *runtime.DataStore, opts Options) *Inspector {
	opts.defaults()
	in := &Inspector{model: m, ds: ds, opts: opts, byKey: map[string]*Decl{}}
	tb := newTypeBuilder(m)
	for _, q := range m.Queues {
		d := queueDecl(m.Prefix, q)
		d.payload = payloadChecker(tb, q.Payload)
		in.decls = append(in.decls, d)
	}
	for _, c := range m.Caches {
		d := cacheDecl(m.Prefix, c)
		d.payload = payloadChecker(tb, c.Payload)
		in.decls = append(in.decls, d)
	}
	for _, d := range in.decls {
		in.byKey[string(d.Kind)+" "+d.Name] = d
	}
	return in
}

func payloadChecker(tb *typeBuilder, t *gen.TypeRef) *checker {
	rt, external := tb.of(t)
	return &checker{name: t.String(), typ: rt, jsonOnly: external}
}

// Prefix returns the schema's prefix.
func (in *Inspector) Prefix() string { return in.model.Prefix }

// Decls returns every declaration, queues first, in schema order.
func (in *Inspector) Decls() []*Decl { return slices.Clone(in.decls) }

// Decl returns the declaration of kind (KindQueue or KindCache) called
// name, or an error wrapping ErrUnknownDecl that lists the names there are.
func (in *Inspector) Decl(kind Kind, name string) (*Decl, error) {
	if d := in.byKey[string(kind)+" "+name]; d != nil {
		return d, nil
	}
	var names []string
	for _, d := range in.decls {
		if d.Kind == kind {
			names = append(names, d.Name)
		}
	}
	have := "none"
	if len(names) > 0 {
		have = strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("%w: the schema has no %s %q (its %ss: %s)", ErrUnknownDecl, kind, name, kind, have)
}

// Filter fixes some of a declaration's placeholders: name → value, a
// string or an int as the placeholder's type says.
type Filter map[string]any

// ParseFilter reads ARG=VALUE words into a Filter for d: each name must
// be a placeholder of d's pattern, an int placeholder's value an integer.
func (d *Decl) ParseFilter(words []string) (Filter, error) {
	f := Filter{}
	for _, w := range words {
		name, v, ok := strings.Cut(w, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: %q is not ARG=VALUE", runtime.ErrInvalidArgument, w)
		}
		var ph *Param
		for i := range d.Params {
			if d.Params[i].Name == name {
				ph = &d.Params[i]
			}
		}
		if ph == nil {
			return nil, fmt.Errorf("%w: %s %s has no argument %q (its arguments: %s)", runtime.ErrInvalidArgument, d.Kind, d.Name, name, d.paramNames())
		}
		if _, dup := f[name]; dup {
			return nil, fmt.Errorf("%w: argument %q given twice", runtime.ErrInvalidArgument, name)
		}
		if ph.Type == "int" {
			n, err := parseInt(v)
			if err != nil {
				return nil, fmt.Errorf("%w: argument %s is an int", runtime.ErrInvalidArgument, name)
			}
			f[name] = n
		} else {
			f[name] = v
		}
	}
	if _, err := d.pattern.Glob(d.layout, f); err != nil {
		return nil, err
	}
	return f, nil
}

func (d *Decl) paramNames() string {
	if len(d.Params) == 0 {
		return "none"
	}
	var names []string
	for _, p := range d.Params {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// complete returns the arguments of f in pattern order when f fixes every
// placeholder of d.
func (d *Decl) complete(f Filter) ([]any, bool) {
	args := make([]any, 0, len(d.Params))
	for _, p := range d.Params {
		v, ok := f[p.Name]
		if !ok {
			return nil, false
		}
		args = append(args, v)
	}
	return args, true
}

// each runs fn for i in [0, n) on up to in.opts.Concurrency goroutines and
// returns the first error.
func (in *Inspector) each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for range min(in.opts.Concurrency, n) {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n
				mu.Unlock()
				if stop {
					return
				}
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// Duration is a time.Duration that JSON writes as milliseconds.
type Duration time.Duration

// MarshalJSON writes d in whole milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%d", time.Duration(d).Milliseconds()), nil
}

// String writes d as time.Duration does, rounded to the millisecond.
func (d Duration) String() string { return time.Duration(d).Round(time.Millisecond).String() }
