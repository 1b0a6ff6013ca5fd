package keyspace

import (
	"slices"
	"strconv"
	"strings"
)

// Overlap decides whether two key patterns can expand to the same name, and
// finds a shortest such name when they can. Two declarations of one kind
// whose patterns overlap share a key: a Set through one is read through the
// other.
//
// Every pattern's expansions form a regular language over bytes: its
// literal text, and for each string placeholder a non-empty run of units,
// a unit being a byte the pattern never escapes or %XX for a byte it does;
// an int placeholder is -?(0|[1-9][0-9]*), as strconv.Itoa writes it.
// Overlap builds a small automaton for each pattern and searches their
// product breadth first, so the name it returns is a shortest common one,
// which keeps an example readable. Two patterns whose literal texts cannot
// begin, or cannot end, one name, or that a separator both escape tells
// apart (see separated), are disjoint without a search.
func Overlap(a, b *Pattern) (string, bool) {
	name, overlap, _ := OverlapWithin(a, b, -1)
	return name, overlap
}

// OverlapWithin is Overlap with a bound on the search: it visits at most
// steps pairs of states (no bound when steps < 0) and returns how many it
// visited. When the bound is reached before the answer, used > steps and
// the answer is unknown, so that a checker comparing many patterns can
// keep its total work bounded whatever the patterns are.
func OverlapWithin(a, b *Pattern, steps int) (name string, overlap bool, used int) {
	if !compatible(a.literals[0], b.literals[0], strings.HasPrefix) ||
		!compatible(a.literals[len(a.literals)-1], b.literals[len(b.literals)-1], strings.HasSuffix) {
		return "", false, 0
	}
	if separated(a, b) {
		return "", false, 0
	}
	return intersect(a.automaton(), b.automaton(), steps)
}

// automaton returns p's automaton, built once: a schema's patterns are
// compared pairwise.
func (p *Pattern) automaton() *automaton {
	p.autoOnce.Do(func() { p.auto = automatonOf(p) })
	return p.auto
}

// separated reports whether the bytes of the patterns' literal text that
// both escape in values tell their names apart. Such a byte appears raw in
// a name exactly where the pattern's literal text has it (values write it
// %XX; ints are digits and '-', which are never escaped), so every name of
// a pattern has the same sequence of them, and between two of them a
// piece with fixed text at its start and end. Names of both can coincide
// only if the sequences are equal and so are the pieces' ends, as far as
// they go: "{a}:q5:{b}" and "{a}:q7:{b}", "{a}_q5:{b}" and "{a}_q7:{b}",
// or "{a}_k:{b}" and "{a}:k_{b}" never meet, which the ends of the whole
// names cannot tell.
func separated(a, b *Pattern) bool {
	sa, pa := a.cutBy(b)
	sb, pb := b.cutBy(a)
	if sa != sb {
		return true
	}
	for k := range pa {
		if !compatible(pa[k].head, pb[k].head, strings.HasPrefix) || !compatible(pa[k].tail, pb[k].tail, strings.HasSuffix) {
			return true
		}
	}
	return false
}

// cutPieces is a pattern cut at a set of bytes: the bytes in order, and
// the pieces between them.
type cutPieces struct {
	seps   string
	pieces []piece
}

// cutBy returns p cut at the bytes of its literal text that both p and q
// escape, computed once per set of such bytes.
func (p *Pattern) cutBy(q *Pattern) (string, []piece) {
	p.cutsMu.Lock()
	defer p.cutsMu.Unlock()
	key := p.litSet.and(q.escSet)
	if p.cuts != nil && p.lastCut == key { // the common case: one way to cut
		return p.last.seps, p.last.pieces
	}
	if p.cuts == nil {
		p.cuts = map[byteSet]cutPieces{}
	}
	c, ok := p.cuts[key]
	if !ok {
		c.seps, c.pieces = pieces(p, key.has)
		p.cuts[key] = c
	}
	p.lastCut, p.last = key, c
	return c.seps, c.pieces
}

// piece is a part of a pattern between two cuts: the literal text before
// its first placeholder and after its last, which are all of it when it
// has none.
type piece struct{ head, tail string }

// pieces cuts p at every byte of its literal text for which cut holds, and
// returns those bytes in order and the pieces between them.
func pieces(p *Pattern, cut func(byte) bool) (string, []piece) {
	var seps []byte
	var out []piece
	var cur strings.Builder
	head, variable := "", false
	end := func() {
		if !variable {
			head = cur.String()
		}
		out = append(out, piece{head, cur.String()})
		cur.Reset()
		head, variable = "", false
	}
	for i, l := range p.literals {
		for j := 0; j < len(l); j++ {
			if !cut(l[j]) {
				cur.WriteByte(l[j])
				continue
			}
			seps = append(seps, l[j])
			end()
		}
		if i < len(p.placeholders) {
			if !variable {
				head = cur.String()
			}
			cur.Reset()
			variable = true
		}
	}
	end()
	return string(seps), out
}

// byteSet is a set of bytes.
type byteSet [4]uint64

func (s *byteSet) add(c byte)     { s[c>>6] |= 1 << (c & 63) }
func (s byteSet) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }
func (s byteSet) and(t byteSet) byteSet {
	return byteSet{s[0] & t[0], s[1] & t[1], s[2] & t[2], s[3] & t[3]}
}
func (s byteSet) empty() bool { return s[0]|s[1]|s[2]|s[3] == 0 }

// pick returns a member of a non-empty set, preferring bytes that read well
// in an example: lower-case letters, digits, upper-case letters, then
// anything printable.
func (s byteSet) pick() byte {
	for _, r := range [][2]int{{'a', 'z'}, {'0', '9'}, {'A', 'Z'}, {'!', '~'}, {0, 255}} {
		for c := r[0]; c <= r[1]; c++ {
			if s.has(byte(c)) {
				return byte(c)
			}
		}
	}
	panic("keyspace: pick from an empty set")
}

func single(c byte) byteSet {
	var s byteSet
	s.add(c)
	return s
}

func setOf(f func(c byte) bool) byteSet {
	var s byteSet
	for c := 0; c < 256; c++ {
		if f(byte(c)) {
			s.add(byte(c))
		}
	}
	return s
}

// edge is a transition on any byte of on. Its label says what the byte
// is part of: 0 for fixed text, k+1 for the value of placeholder k, and
// -(i+1) for the first byte of the i-th key part of a KeySet's automaton
// (see keySetAutomaton); a search reads the arguments of its example from
// the labels of the path it found.
type edge struct {
	on    byteSet
	to    int
	label int32
}

// automaton is a nondeterministic automaton: state 0 is the start, and
// accept is the one accepting state.
type automaton struct {
	edges   [][]edge
	eps     [][]int // ε moves
	closure [][]int // each state and the states its ε moves reach
	accept  int
}

func (a *automaton) state() int {
	a.edges = append(a.edges, nil)
	a.eps = append(a.eps, nil)
	return len(a.edges) - 1
}

func (a *automaton) edge(from int, on byteSet, to int, label int32) {
	a.edges[from] = append(a.edges[from], edge{on, to, label})
}

// closures fills in a.closure.
func (a *automaton) closures() {
	a.closure = make([][]int, len(a.eps))
	for s := range a.eps {
		out := []int{s}
		for i := 0; i < len(out); i++ {
			for _, t := range a.eps[out[i]] {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
		}
		a.closure[s] = out
	}
}

// The byte classes of automata, computed once.
var (
	digitBytes   = setOf(func(c byte) bool { return c >= '0' && c <= '9' })
	nonZeroBytes = setOf(func(c byte) bool { return c >= '1' && c <= '9' })
	// plainBytes are the bytes a plain value may hold (CheckPlainValue).
	plainBytes = setOf(func(c byte) bool { return !plainRefused(c) })
)

// builder appends to an automaton from its current state, cur.
type builder struct {
	a    *automaton
	cur  int
	mark int32 // the label of the next edge from cur, then 0
}

func newBuilder() *builder {
	a := &automaton{}
	return &builder{a: a, cur: a.state()}
}

// finish makes cur the accepting state and returns the automaton.
func (b *builder) finish() *automaton {
	b.a.accept = b.cur
	b.a.closures()
	return b.a
}

// step adds an edge on from cur to a new state, which becomes cur.
func (b *builder) step(on byteSet, label int32) {
	if b.mark != 0 {
		label, b.mark = b.mark, 0
	}
	next := b.a.state()
	b.a.edge(b.cur, on, next, label)
	b.cur = next
}

// lit adds the bytes of s, as fixed text.
func (b *builder) lit(s string) {
	for i := 0; i < len(s); i++ {
		b.step(single(s[i]), 0)
	}
}

// numberBelow adds the decimal numbers 1 … n-1 (strconv.Itoa), as fixed
// text: the number of a shard i > 0 of a queue with n shards. It is a
// trie of their digits, so its states are about n.
func (b *builder) numberBelow(n int) {
	label := b.mark
	b.mark = 0
	start, end := b.cur, b.a.state()
	next := map[[2]int]int{} // (state, digit) → state
	for i := 1; i < n; i++ {
		s := start
		for _, c := range []byte(strconv.Itoa(i)) {
			t, ok := next[[2]int{s, int(c)}]
			if !ok {
				t = b.a.state()
				next[[2]int{s, int(c)}] = t
				l := int32(0)
				if s == start {
					l = label
				}
				b.a.edge(s, single(c), t, l)
			}
			s = t
		}
		b.a.eps[s] = append(b.a.eps[s], end)
	}
	b.cur = end
}

// oneOf adds a choice: each alternative builds from cur, and they all
// end in one new state.
func (b *builder) oneOf(alts ...func()) {
	start, end := b.cur, b.a.state()
	for _, alt := range alts {
		b.cur = start
		alt()
		b.a.eps[b.cur] = append(b.a.eps[b.cur], end)
	}
	b.cur = end
}

// expansion adds the names p expands to in layout l, the bytes of
// placeholder k labelled k+1.
func (b *builder) expansion(p *Pattern, l Layout) {
	for i, ph := range p.placeholders {
		b.lit(p.literals[i])
		label := int32(i + 1)
		switch {
		case ph.Type == Int: // strconv.Itoa: -?(0|[1-9][0-9]*)
			in, end := b.cur, b.a.state()
			neg, digit := b.a.state(), b.a.state()
			b.a.edge(in, single('-'), neg, label)
			b.a.edge(in, single('0'), end, label)
			b.a.edge(in, nonZeroBytes, digit, label)
			b.a.edge(neg, nonZeroBytes, digit, label)
			b.a.edge(digit, digitBytes, digit, label)
			b.a.eps[digit] = append(b.a.eps[digit], end)
			b.cur = end
		case l == Plain: // one or more bytes that CheckPlainValue allows
			in := b.cur
			b.step(plainBytes, label)
			b.a.eps[b.cur] = append(b.a.eps[b.cur], in)
		default:
			b.units(&p.escape, label)
		}
	}
	b.lit(p.literals[len(p.literals)-1])
}

// units adds one or more units of an escaped value: a byte that escape
// leaves raw, or %XX for one it escapes.
func (b *builder) units(escape *[256]bool, label int32) {
	raw := setOf(func(c byte) bool { return !escape[c] })
	in, end, pct := b.cur, b.a.state(), b.a.state()
	b.a.edge(in, raw, end, label)
	b.a.edge(in, single('%'), pct, label)
	for h := 0; h < 16; h++ {
		var lo byteSet
		for l := 0; l < 16; l++ {
			if escape[h<<4|l] {
				lo.add(hexDigits[l])
			}
		}
		if !lo.empty() {
			hi := b.a.state()
			b.a.edge(pct, single(hexDigits[h]), hi, label)
			b.a.edge(hi, lo, end, label)
		}
	}
	b.a.eps[end] = append(b.a.eps[end], in)
	b.cur = end
}

// automatonOf builds the automaton of p's expansions (tagged).
func automatonOf(p *Pattern) *automaton {
	b := newBuilder()
	b.expansion(p, Tagged)
	return b.finish()
}

// pathStep is one byte of a string two automata both accept, with the
// labels of the edges each took on it.
type pathStep struct {
	c      byte
	la, lb int32
}

// intersect searches the product of x and y breadth first for a shortest
// string both accept. Searching over pairs of states (not sets) is exact,
// because ε moves are followed before every byte: a pair is reached by a
// string iff both of its states are.
// It visits at most steps pairs (no bound when steps < 0); see
// OverlapWithin. The pairs it reached are kept in a map, so its memory is
// proportional to the pairs visited, not to the product's size.
func intersect(x, y *automaton, steps int) (name string, overlap bool, used int) {
	path, overlap, used := search(x, y, steps, false)
	b := make([]byte, len(path))
	for i, st := range path {
		b[i] = st.c
	}
	return string(b), overlap, used
}

// search is intersect's search, returning the path it found. With
// diverge, it looks for a string that x and y accept along paths whose
// labels differ somewhere (x and y are then one automaton, and the string
// is one key that two argument tuples give): each pair of states is
// searched twice, before and after the labels first differed.
func search(x, y *automaton, steps int, diverge bool) (path []pathStep, found bool, used int) {
	type step struct {
		from   int // the pair it was reached from; -1 for the start's
		c      byte
		la, lb int32
	}
	ny := len(y.edges)
	prev := map[int]step{}
	var queue []int
	push := func(s, t, d int, st step) {
		for _, s := range x.closure[s] {
			for _, t := range y.closure[t] {
				if q := (s*ny+t)*2 + d; !seenPair(prev, q) {
					prev[q] = st
					queue = append(queue, q)
				}
			}
		}
	}
	push(0, 0, 0, step{from: -1})
	for len(queue) > 0 {
		if used++; steps >= 0 && used > steps {
			return nil, false, used
		}
		p := queue[0]
		queue = queue[1:]
		d := p % 2
		s, t := p/2/ny, p/2%ny
		if s == x.accept && t == y.accept && (!diverge || d == 1) {
			for q := p; prev[q].from >= 0; q = prev[q].from {
				st := prev[q]
				path = append(path, pathStep{st.c, st.la, st.lb})
			}
			slices.Reverse(path)
			return path, true, used
		}
		for _, e := range x.edges[s] {
			for _, f := range y.edges[t] {
				if on := e.on.and(f.on); !on.empty() {
					nd := d
					if diverge && e.label != f.label {
						nd = 1
					}
					push(e.to, f.to, nd, step{p, on.pick(), e.label, f.label})
				}
			}
		}
	}
	return nil, false, used
}

func seenPair[V any](m map[int]V, q int) bool {
	_, ok := m[q]
	return ok
}

// compatible reports whether two literal ends can begin (or end) one name:
// the shorter is a prefix (suffix) of the longer.
func compatible(a, b string, has func(s, affix string) bool) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	return has(a, b)
}
