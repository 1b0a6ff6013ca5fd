package keyspace

import (
	"strconv"
	"strings"
)

// KeySet is every Redis key of one declaration, after the schema's prefix:
// a queue's keys (its list and every part of it, in its layout, with its
// shards) or a cache's entries. OverlapKeys compares two of them, and
// Ambiguous one with itself; both see every key as bytes, so they cover
// plain keys, whose values may hold anything but control bytes, as well
// as tagged ones.
type KeySet struct {
	Queue    bool // a queue's keys (queue:…); otherwise a cache's (cache:…)
	Pattern  *Pattern
	Layout   Layout
	Reliable bool // an at-least-once queue: its parts, markers and receipts
	Shards   int  // a queue's shards; 0 and 1 mean one list
}

// Example is how one declaration gives a key: the arguments of its
// pattern, and the part of the queue the key is ("" for the list itself or
// a cache entry; "dead", "processing", "marker", …, and "shard N" before
// the part for shard N > 0).
type Example struct {
	Args []any
	Part string
}

// KeyMatch is a key two declarations (or two tuples of one) both give,
// after the prefix, and how each gives it.
type KeyMatch struct {
	Key  string
	A, B Example
}

// keySetShape identifies the automaton of a KeySet of a given pattern.
type keySetShape struct {
	queue, reliable bool
	shards          int // over 1 for a sharded queue; else 0
	layout          Layout
}

func (k KeySet) shape() keySetShape {
	sh := keySetShape{queue: k.Queue, reliable: k.Queue && k.Reliable, layout: k.Layout}
	if k.Queue && k.Shards > 1 {
		sh.shards = k.Shards
	}
	return sh
}

// parts returns the names of the parts the automaton of k labels, in
// order (see edge), and their suffixes after the queue's key; markers and
// receipts, whose suffix goes on with an escaped ID, come last.
func (k KeySet) parts() (names, suffixes []string) {
	if !k.Queue {
		return nil, nil
	}
	if !k.Reliable {
		return []string{QueueParts[1].Name}, []string{QueueParts[1].Suffix}
	}
	for _, p := range ReliableParts[1:] {
		names, suffixes = append(names, p.Name), append(suffixes, p.Suffix)
	}
	names, suffixes = append(names, PausedPart.Name, MetaPart.Name), append(suffixes, PausedPart.Suffix, MetaPart.Suffix)
	return append(names, MarkerPart.Name, ReceiptPart.Name), append(suffixes, markerInfix, receiptInfix)
}

// shardLabel labels the first digit of a shard's number.
const shardLabel = -1000

// exactShardStates bounds the states (roughly) of the copies of a sharded
// queue's expansion, one per shard, that make its automaton exact; a queue
// with more shards or a longer pattern gets one copy, between two shard
// numbers that need not be equal.
const exactShardStates = 1 << 15

// automaton returns the automaton of k's keys, built once per pattern and
// shape: after "queue:" or "cache:", the pattern's expansions in k's
// layout, and for a queue, its parts as suffixes (a tagged queue's
// expansion between braces, and its shards i > 0 as
// queue:<i>:{<expansion>#<i>} for each shard i that the queue has, with a
// copy of the expansion for each; past exactShardStates, one copy between
// two shard numbers i and j, so that keys with i ≠ j are more than the
// keys there are, but never less).
func (k KeySet) automaton() *automaton {
	p, sh := k.Pattern, k.shape()
	p.cutsMu.Lock()
	defer p.cutsMu.Unlock()
	if a, ok := p.keySets[sh]; ok {
		return a
	}
	b := newBuilder()
	switch {
	case !k.Queue:
		b.lit("cache:")
		b.expansion(p, k.Layout)
	case k.Layout == Plain:
		b.lit("queue:")
		b.expansion(p, Plain)
	default:
		b.lit("queue:")
		tagged := func() {
			b.lit("{")
			b.expansion(p, Tagged)
			b.lit("}")
		}
		if sh.shards == 0 {
			tagged()
			break
		}
		if (sh.shards-1)*(len(p.pattern)+20*len(p.placeholders)) <= exactShardStates {
			alts := []func(){tagged}
			for i := 1; i < sh.shards; i++ {
				n := strconv.Itoa(i)
				alts = append(alts, func() {
					b.mark = shardLabel
					b.lit(n + ":{")
					b.expansion(p, Tagged)
					b.lit("#" + n + "}")
				})
			}
			b.oneOf(alts...)
			break
		}
		b.oneOf(tagged, func() {
			b.mark = shardLabel
			b.numberBelow(sh.shards)
			b.lit(":{")
			b.expansion(p, Tagged)
			b.lit("#")
			b.numberBelow(sh.shards)
			b.lit("}")
		})
	}
	if k.Queue {
		_, suffixes := k.parts()
		alts := []func(){func() {}} // the list itself
		for i, s := range suffixes {
			alts = append(alts, func() {
				b.mark = int32(-(i + 1))
				b.lit(s)
				if s == markerInfix || s == receiptInfix {
					var esc [256]bool
					for c := range 256 {
						esc[c] = AlwaysEscaped(byte(c))
					}
					b.units(&esc, 0)
				}
			})
		}
		b.oneOf(alts...)
	}
	a := b.finish()
	if p.keySets == nil {
		p.keySets = map[keySetShape]*automaton{}
	}
	p.keySets[sh] = a
	return a
}

// ends returns the fixed text every key of k begins with, and texts one
// of which every key ends with ("" when some key's end is not fixed):
// two KeySets whose beginnings, or all of whose ends, cannot belong to one
// key are disjoint without a search.
func (k KeySet) ends() (head string, tails []string) {
	p := k.Pattern
	first, last := p.literals[0], p.literals[len(p.literals)-1]
	if len(p.placeholders) == 0 {
		first = p.pattern
	}
	switch {
	case !k.Queue:
		return "cache:" + first, []string{last}
	case k.Layout == Plain:
		head = "queue:" + first
	case k.Shards > 1:
		head, last = "queue:", ""
	default:
		head, last = "queue:{"+first, last+"}"
		if len(p.placeholders) == 0 {
			head += "}"
		}
	}
	tails = []string{last}
	_, suffixes := k.parts()
	for _, s := range suffixes {
		if s == markerInfix || s == receiptInfix {
			tails = append(tails, "")
		} else if k.Shards > 1 {
			tails = append(tails, "}"+s)
		} else {
			tails = append(tails, last+s)
		}
	}
	if k.Shards > 1 {
		tails[0] = "}"
	}
	return head, tails
}

// OverlapKeys decides whether two declarations can give one key, and finds
// a shortest such key when they can, as OverlapWithin does for patterns,
// with the same bound on the search. Two tagged declarations of one kind
// are compared by their patterns (a tagged queue's expansion ends at the
// first '}', so queues with disjoint patterns have disjoint keys, parts
// and shards included); any other pair by every key of each.
func OverlapKeys(a, b KeySet, steps int) (m *KeyMatch, used int) {
	if a.Queue != b.Queue {
		return nil, 0 // one begins queue:, the other cache:
	}
	if a.Layout == Tagged && b.Layout == Tagged {
		name, overlap, used := OverlapWithin(a.Pattern, b.Pattern, steps)
		if !overlap {
			return nil, used
		}
		key := CacheKey("", name)
		if a.Queue {
			key = QueueKey("", name)
		}
		ea, _ := a.Pattern.Parse(name)
		eb, _ := b.Pattern.Parse(name)
		return &KeyMatch{Key: key, A: Example{Args: ea}, B: Example{Args: eb}}, used
	}
	ha, ta := a.ends()
	hb, tb := b.ends()
	if !compatible(ha, hb, strings.HasPrefix) || !anyCompatible(ta, tb) {
		return nil, 0
	}
	path, found, used := search(a.automaton(), b.automaton(), steps, false)
	if !found {
		return nil, used
	}
	return a.match(b, path), used
}

// anyCompatible reports whether some pair of the tails can end one key.
func anyCompatible(as, bs []string) bool {
	for _, x := range as {
		for _, y := range bs {
			if compatible(x, y, strings.HasSuffix) {
				return true
			}
		}
	}
	return false
}

// Ambiguous finds a shortest key that two different argument tuples of
// k give (the list of one and a part of the other's included), within
// steps as OverlapKeys. A tagged KeySet never has one: escaping makes its
// keys parse back. A plain one with two string placeholders always does
// (queue_{a}_{b}: ("a_b", "c") and ("a", "b_c")), and so does a plain
// queue whose pattern ends with a string placeholder (the list of
// ("x:dead") is the dead-letter list of ("x")).
func Ambiguous(k KeySet, steps int) (m *KeyMatch, used int) {
	a := k.automaton()
	path, found, used := search(a, a, steps, true)
	if !found {
		return nil, used
	}
	return k.match(k, path), used
}

// match reads the key and the examples of a and b from path.
func (a KeySet) match(b KeySet, path []pathStep) *KeyMatch {
	key := make([]byte, len(path))
	for i, st := range path {
		key[i] = st.c
	}
	la := make([]int32, len(path))
	lb := make([]int32, len(path))
	for i, st := range path {
		la[i], lb[i] = st.la, st.lb
	}
	return &KeyMatch{Key: string(key), A: a.example(key, la), B: b.example(key, lb)}
}

// example reads the arguments and the part of a key of k from the labels
// of the path that gave it.
func (k KeySet) example(key []byte, labels []int32) Example {
	p := k.Pattern
	raw := make([][]byte, len(p.placeholders))
	names, _ := k.parts()
	var ex Example
	shard := -1
	for i, l := range labels {
		switch {
		case l > 0:
			raw[l-1] = append(raw[l-1], key[i])
		case l == shardLabel:
			shard = i
		case l < 0:
			ex.Part = names[-l-1]
		}
	}
	if shard >= 0 {
		end := shard
		for end < len(key) && key[end] >= '0' && key[end] <= '9' {
			end++
		}
		s := "shard " + string(key[shard:end])
		if ex.Part != "" {
			s += " " + ex.Part
		}
		ex.Part = s
	}
	for i, ph := range p.placeholders {
		var v any = string(raw[i])
		switch {
		case ph.Type == Int:
			n, _ := strconv.Atoi(string(raw[i]))
			v = n
		case k.Layout == Tagged:
			v, _ = p.unescape(ph, string(raw[i]))
		}
		ex.Args = append(ex.Args, v)
	}
	return ex
}
