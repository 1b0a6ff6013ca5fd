package inspect

import (
	"context"
	"slices"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/storagegen/storagegen/internal/keyspace"
	"github.com/storagegen/storagegen/runtime"
)

// QueueCounts are where a queue's items are, from the runtime's Stats:
// one instance's, or the sum over a declaration's instances.
type QueueCounts struct {
	Ready    int64 `json:"ready"`     // waiting to be received or popped
	InFlight int64 `json:"in_flight"` // received and not yet acked or nacked (at-least-once)
	Expired  int64 `json:"expired"`   // of InFlight, those whose lease ran out and that no reclaim has put back
	Delayed  int64 `json:"delayed"`   // nacked with a delay not yet over (at-least-once)
	Dead     int64 `json:"dead"`      // dead letters
	// OldestReady is how long the oldest ready item has waited (the
	// oldest of all instances in a sum); nil for an at-most-once queue,
	// whose lists keep no times.
	OldestReady *Duration `json:"oldest_ready_ms"`
	Paused      int       `json:"paused"` // instances paused (0 or 1 for one instance)
}

func (c *QueueCounts) add(o *QueueCounts) {
	c.Ready += o.Ready
	c.InFlight += o.InFlight
	c.Expired += o.Expired
	c.Delayed += o.Delayed
	c.Dead += o.Dead
	c.Paused += o.Paused
	if o.OldestReady != nil && (c.OldestReady == nil || *o.OldestReady > *c.OldestReady) {
		v := *o.OldestReady
		c.OldestReady = &v
	}
}

// CacheCounts are a cache's entries, from the runtime's Stats: one
// entry's, or the sum over a declaration's.
type CacheCounts struct {
	Entries     int64 `json:"entries"`      // entries that exist
	NoExpiry    int64 `json:"no_expiry"`    // of those, the ones without a TTL
	MemoryBytes int64 `json:"memory_bytes"` // MEMORY USAGE summed over the entries the server measured
	// MemoryUnknown counts entries whose memory the server would not
	// measure (an ACL without +memory|usage).
	MemoryUnknown int64     `json:"memory_unknown,omitempty"`
	TTL           *Duration `json:"ttl_ms,omitempty"` // one entry's remaining TTL (nil without one)
}

func (c *CacheCounts) add(o *CacheCounts) {
	c.Entries += o.Entries
	c.NoExpiry += o.NoExpiry
	c.MemoryBytes += o.MemoryBytes
	c.MemoryUnknown += o.MemoryUnknown
}

// Instance is one instance of a declaration: a queue or a cache entry
// for one tuple of arguments, with its counts.
type Instance struct {
	Key  string `json:"key"` // the queue's key (shard 0's) or the entry's
	Args []Arg  `json:"args"`
	// Ambiguous is set for a plain key that more than one tuple of
	// arguments expands to: Args is the split whose first value is the
	// shortest.
	Ambiguous bool         `json:"ambiguous,omitempty"`
	Queue     *QueueCounts `json:"queue,omitempty"`
	Cache     *CacheCounts `json:"cache,omitempty"`

	ik instanceKey
}

// Instances are the instances of one declaration that a walk found.
type Instances struct {
	Decl *Decl      `json:"decl"`
	List []Instance `json:"instances"`
	// AtLeast is set when there are more instances than List holds (the
	// MaxInstances cap), or the walk stopped at MaxKeys: every count is
	// then a lower bound.
	AtLeast bool `json:"at_least"`
}

// DeclSummary is one row of the overview.
type DeclSummary struct {
	Decl      *Decl        `json:"decl"`
	Instances int          `json:"instances"`
	AtLeast   bool         `json:"at_least"`
	Queue     *QueueCounts `json:"queue,omitempty"`
	Cache     *CacheCounts `json:"cache,omitempty"`
}

// Unknown are the keys under the schema's prefix that are no key of any
// declaration.
type Unknown struct {
	Count   int      `json:"count"`
	Keys    []string `json:"keys"` // the first of them, up to the limit asked for, sorted
	AtLeast bool     `json:"at_least"`
}

// Overview is every declaration's summary and the unknown keys.
type Overview struct {
	Time    time.Time     `json:"time"`
	Prefix  string        `json:"prefix"`
	Decls   []DeclSummary `json:"decls"`
	Unknown Unknown       `json:"unknown"`
}

// prefixGlobs are the globs of every key under the prefix: <prefix>*, or,
// with no prefix, queue:* and cache:* (every key of a schema starts with
// one of them), so that a schema without a prefix does not take every
// other key of the database for its own.
func (in *Inspector) prefixGlobs() []string {
	if p := in.model.Prefix; p != "" {
		return []string{keyspace.GlobEscape(p) + "*"}
	}
	return []string{"queue:*", "cache:*"}
}

// Overview walks the keys under the prefix once, sorts each into the
// declarations it parses back under (or into the unknown keys, of which
// it keeps the first unknownLimit), and reads the Stats of every instance
// found.
func (in *Inspector) Overview(ctx context.Context, unknownLimit int) (*Overview, error) {
	sets, unknown, complete, err := in.classify(ctx, unknownLimit)
	if err != nil {
		return nil, err
	}
	ov := &Overview{Time: time.Now(), Prefix: in.model.Prefix, Unknown: unknown}
	lists := make([]*Instances, len(in.decls))
	for i, d := range in.decls {
		lists[i] = sets[i].list(d, !complete)
	}
	if err := in.stats(ctx, lists); err != nil {
		return nil, err
	}
	for i, d := range in.decls {
		ov.Decls = append(ov.Decls, summarize(d, lists[i]))
	}
	return ov, nil
}

// Unknown walks the keys under the prefix and returns those that are no
// key of any declaration: the first limit of them, and how many.
func (in *Inspector) Unknown(ctx context.Context, limit int) (Unknown, error) {
	_, u, _, err := in.classify(ctx, limit)
	return u, err
}

func summarize(d *Decl, l *Instances) DeclSummary {
	s := DeclSummary{Decl: d, Instances: len(l.List), AtLeast: l.AtLeast}
	if d.Kind == KindQueue {
		s.Queue = &QueueCounts{}
		for _, x := range l.List {
			s.Queue.add(x.Queue)
		}
	} else {
		s.Cache = &CacheCounts{}
		for _, x := range l.List {
			s.Cache.add(x.Cache)
		}
	}
	return s
}

// instanceSet collects the instances of one declaration, up to a cap.
type instanceSet struct {
	byName map[string]instanceKey
	over   bool // more than the cap were seen
}

func (s *instanceSet) add(ik instanceKey, max int) {
	if _, ok := s.byName[ik.name]; ok {
		return
	}
	if len(s.byName) >= max {
		s.over = true
		return
	}
	s.byName[ik.name] = ik
}

// list returns the set's instances sorted by expansion, keys built.
func (s *instanceSet) list(d *Decl, partial bool) *Instances {
	l := &Instances{Decl: d, List: []Instance{}, AtLeast: s.over || partial}
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ik := s.byName[n]
		l.List = append(l.List, Instance{Key: d.keyOf(n), Args: d.argList(ik.args), Ambiguous: ik.ambiguous, ik: ik})
	}
	return l
}

// keyOf returns the key of the instance whose expansion is name: the
// queue's (shard 0's) or the cache entry's.
func (d *Decl) keyOf(name string) string {
	if d.Kind == KindCache {
		return keyspace.CacheKey(d.prefix, name)
	}
	return keyspace.QueueKeyOf(d.layout, d.prefix, name)
}

// classify walks the keys under the prefix and sorts them.
func (in *Inspector) classify(ctx context.Context, unknownLimit int) ([]*instanceSet, Unknown, bool, error) {
	sets := make([]*instanceSet, len(in.decls))
	for i := range sets {
		sets[i] = &instanceSet{byName: map[string]instanceKey{}}
	}
	var u Unknown
	complete := true
	for _, g := range in.prefixGlobs() {
		done, err := in.walk(ctx, g, func(key string) bool {
			known := false
			for i, d := range in.decls {
				for _, ik := range d.parse(key) {
					known = true
					sets[i].add(ik, in.opts.MaxInstances)
				}
			}
			if !known {
				u.Count++
				if len(u.Keys) < unknownLimit {
					u.Keys = append(u.Keys, key)
				}
			}
			return true
		})
		if err != nil {
			return nil, Unknown{}, false, err
		}
		complete = complete && done
	}
	slices.Sort(u.Keys)
	if u.Keys == nil {
		u.Keys = []string{}
	}
	u.AtLeast = !complete
	return sets, u, complete, nil
}

// Instances finds the instances of d whose arguments f fixes, with their
// counts. When f fixes every argument there is one instance, whether or
// not it has keys, and nothing is walked.
func (in *Inspector) Instances(ctx context.Context, d *Decl, f Filter) (*Instances, error) {
	l, err := in.find(ctx, d, f)
	if err != nil {
		return nil, err
	}
	return l, in.stats(ctx, []*Instances{l})
}

// find is Instances without the counts.
func (in *Inspector) find(ctx context.Context, d *Decl, f Filter) (*Instances, error) {
	if args, ok := d.complete(f); ok {
		name, err := d.pattern.ExpandLayout(d.layout, args...)
		if err != nil {
			return nil, err
		}
		set := &instanceSet{byName: map[string]instanceKey{name: {name: name, args: args}}}
		return set.list(d, false), nil
	}
	glob, err := d.glob(f)
	if err != nil {
		return nil, err
	}
	set := &instanceSet{byName: map[string]instanceKey{}}
	complete, err := in.walk(ctx, glob, func(key string) bool {
		for _, ik := range d.parse(key) {
			if d.matches(ik, f) {
				set.add(ik, in.opts.MaxInstances)
			}
		}
		return !set.over
	})
	if err != nil {
		return nil, err
	}
	return set.list(d, !complete), nil
}

// stats reads the Stats of every instance of the lists, concurrently.
func (in *Inspector) stats(ctx context.Context, lists []*Instances) error {
	type ref struct{ l, i int }
	var refs []ref
	for li, l := range lists {
		for i := range l.List {
			refs = append(refs, ref{li, i})
		}
	}
	return in.each(ctx, len(refs), func(ctx context.Context, k int) error {
		l := lists[refs[k].l]
		x := &l.List[refs[k].i]
		var err error
		if l.Decl.Kind == KindCache {
			x.Cache, err = in.cacheStats(ctx, l.Decl, x.ik.args)
		} else {
			x.Queue, err = in.queueStats(ctx, l.Decl, x.ik.args)
		}
		return err
	})
}

func (in *Inspector) queueStats(ctx context.Context, d *Decl, args []any) (*QueueCounts, error) {
	if d.reliable {
		s, err := runtime.NewReliableQueue[jsontext.Value](in.ds, d.queue, args...).Stats(ctx)
		if err != nil {
			return nil, err
		}
		c := &QueueCounts{Ready: s.Ready, InFlight: s.InFlight, Expired: s.Expired, Delayed: s.Delayed, Dead: s.Dead}
		if s.Ready > 0 && !s.OldestReadyUnknown {
			age := Duration(s.OldestReady)
			c.OldestReady = &age
		}
		if s.Paused {
			c.Paused = 1
		}
		return c, nil
	}
	s, err := runtime.NewQueue[jsontext.Value](in.ds, d.queue, args...).Stats(ctx)
	if err != nil {
		return nil, err
	}
	return &QueueCounts{Ready: s.Ready, Dead: s.Dead}, nil
}

func (in *Inspector) cacheStats(ctx context.Context, d *Decl, args []any) (*CacheCounts, error) {
	s, err := runtime.NewCache[jsontext.Value](in.ds, d.cache, args...).Stats(ctx)
	if err != nil {
		return nil, err
	}
	c := &CacheCounts{MemoryBytes: s.MemoryBytes}
	if s.MemoryBytes == runtime.MemoryUnknown {
		c.MemoryBytes, c.MemoryUnknown = 0, 1
	}
	if s.Exists {
		c.Entries = 1
		if s.NoExpiry {
			c.NoExpiry = 1
		} else {
			ttl := Duration(s.TTL)
			c.TTL = &ttl
		}
	}
	return c, nil
}
