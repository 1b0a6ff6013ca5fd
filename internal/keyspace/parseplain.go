package keyspace

import (
	"fmt"
	"strconv"
	"strings"
)

// ParsePlain is the inverse of ExpandPlain where there is one: it returns
// the arguments that expand to name in the plain layout. Values in that
// layout are inserted as they are, so a name may have more than one split
// into values (queue_{a}_{b} gives queue_a_b_c for ("a_b", "c") and for
// ("a", "b_c")): then ambiguous is true and args is the split that gives
// the first value the fewest bytes. A name no arguments expand to is an
// error. Int values must be written as strconv.Itoa writes them; string
// values must pass CheckPlainValue.
//
// It costs at most len(placeholders) × len(name)² byte comparisons: each
// (placeholder, offset) pair is tried once.
func (p *Pattern) ParsePlain(name string) (args []any, ambiguous bool, err error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q does not match key pattern %q (plain): %s", ErrInvalidArgument, name, p.pattern, why)
	}
	rest, ok := strings.CutPrefix(name, p.literals[0])
	if !ok {
		return nil, false, bad("literal prefix differs")
	}
	base := len(name) - len(rest)
	k := len(p.placeholders)
	if k == 0 {
		if rest != "" {
			return nil, false, bad("it is longer than the pattern")
		}
		return []any{}, false, nil
	}
	// ways[i][off] is how many splits (counted up to 2) parse name[off:]
	// as placeholders i.. with their literals; -1 until computed.
	ways := make([][]int8, k)
	for i := range ways {
		ways[i] = make([]int8, len(name)+1)
		for j := range ways[i] {
			ways[i][j] = -1
		}
	}
	var count func(i, off int) int8
	// ends returns the ends of the values of placeholder i starting at off
	// that are followed by its literal (and, for the last, by nothing else).
	ends := func(i, off int) []int {
		lit := p.literals[i+1]
		var out []int
		for end := off + 1; end <= len(name)-len(lit); end++ {
			if plainRefused(name[end-1]) {
				break
			}
			if !strings.HasPrefix(name[end:], lit) {
				continue
			}
			if i == k-1 && end+len(lit) != len(name) {
				continue
			}
			if p.placeholders[i].Type == Int {
				n, err := strconv.Atoi(name[off:end])
				if err != nil || strconv.Itoa(n) != name[off:end] {
					continue
				}
			}
			out = append(out, end)
		}
		return out
	}
	count = func(i, off int) int8 {
		if i == k {
			if off == len(name) {
				return 1
			}
			return 0
		}
		if ways[i][off] >= 0 {
			return ways[i][off]
		}
		var n int8
		for _, end := range ends(i, off) {
			n += count(i+1, end+len(p.literals[i+1]))
			if n >= 2 {
				n = 2
				break
			}
		}
		ways[i][off] = n
		return n
	}
	total := count(0, base)
	if total == 0 {
		return nil, false, bad("no values expand to it")
	}
	off := base
	for i := range k {
		for _, end := range ends(i, off) {
			if count(i+1, end+len(p.literals[i+1])) == 0 {
				continue
			}
			v := name[off:end]
			if p.placeholders[i].Type == Int {
				n, _ := strconv.Atoi(v)
				args = append(args, n)
			} else {
				args = append(args, v)
			}
			off = end + len(p.literals[i+1])
			break
		}
	}
	return args, total > 1, nil
}
