package runtime

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/storagegen/storagegen/runtime/lua"
)

// The Lua scripts of an at-least-once queue live in lua/ (package lua,
// which the Python code generator copies them from too), one file each,
// headed with the KEYS and ARGV they take and what they return. Each step
// that changes where an item is (push, receive-and-lease, ack, nack,
// extend, release, reclaim, promote, requeue, purge) is one script, so it
// is atomic on the server: two reclaimers, or a reclaim and a late ack,
// can never both move an item. Every script:
//
//   - starts with #!lua, so that Redis 7 (and any cluster) refuses a key
//     that was not declared;
//   - touches only the keys passed in KEYS: the queue's keys in the order
//     of reliableKeys, which lua/prelude.lua names (READY … READY_AT), then,
//     for push, the marker key of the call, and for receive, release, ack
//     and nack, receipts of takes (RECEIPT); all of them share the queue's
//     hash tag, so they are in one cluster slot (deadletter, which serves
//     at-most-once queues, plain ones among them, takes only the
//     dead-letter list: a plain queue has no hash tag);
//   - reads the time from the server (TIME), never from the client, whose
//     clock may be off.
//
// An item's ID is in exactly one of: the ready list, the leases (received
// and not yet acked or nacked, or an orphan that a reclaim leased), the
// processing list (moved there by BLMOVE, briefly, until a take leases
// it), the delayed set or the dead set. (A queue written before batched
// receives may list a leased ID in the processing list too; the scripts
// handle it once.) Its payload, delivery count and last error live in the
// hashes until it is acked or purged; while it is in the ready list,
// READY_AT holds when it got there.
//
// A delivery holds its item while the attempts hash still has its attempt
// number and the item has a lease (even an expired one nobody has reclaimed
// yet); ack, nack and extend check both.

var (
	pushScript    = newScript("push")
	receiveScript = newScript("receive")
	ackScript     = newScript("ack")
	nackScript    = newScript("nack")
	extendScript  = newScript("extend")
	releaseScript = newScript("release")
	reclaimScript = newScript("reclaim")
	promoteScript = newScript("promote")
	requeueScript = newScript("requeue")
	purgeScript   = newScript("purge")
	peekScript    = newScript("peek")
	statsScript   = newScript("stats")

	// deadLetterScript serves at-most-once queues (queue.go); it takes
	// one key, the dead-letter list, not the queue's keys.
	deadLetterScript = newScript("deadletter")
)

// script is one Lua script, in two forms: as written, with #!lua, and
// without that line, for servers that predate script shebangs (Redis
// before 7.0, and the embedded server of the demo), where it means nothing.
type script struct {
	name             string
	shebang, noFlags *redis.Script
}

// newScript reads lua/<name>.lua, whose first line is its #!lua line
// (with any flags), and puts the prelude after that line.
func newScript(name string) *script {
	shebang, noFlags := scriptSource(name)
	return &script{name: name, shebang: redis.NewScript(shebang), noFlags: redis.NewScript(noFlags)}
}

// scriptSource returns the text of the script name as it is sent, with
// its #!lua line and without it.
func scriptSource(name string) (shebang, noFlags string) {
	prelude, err := lua.Files.ReadFile("prelude.lua")
	if err != nil {
		panic(err)
	}
	body, err := lua.Files.ReadFile(name + ".lua")
	if err != nil {
		panic(err)
	}
	first, rest, _ := strings.Cut(string(body), "\n")
	if !strings.HasPrefix(first, "#!lua") {
		panic("storagegen: runtime/lua/" + name + ".lua does not start with #!lua")
	}
	noFlags = string(prelude) + rest
	return first + "\n" + noFlags, noFlags
}

// run runs s with EVALSHA, loading it when the server does not know it.
// Once a server has refused the #!lua line, the Connection (so one
// DataStore) sends the form without it (and without its flags, which such
// a server has no use for).
func (s *script) run(ctx context.Context, c *Connection, cl redis.UniversalClient, keys []string, args ...any) *redis.Cmd {
	if c.shebangRefused.Load() {
		return s.noFlags.Run(ctx, cl, keys, args...)
	}
	cmd := s.shebang.Run(ctx, cl, keys, args...)
	if err := cmd.Err(); err != nil && isShebangRefusal(err) {
		c.shebangRefused.Store(true)
		return s.noFlags.Run(ctx, cl, keys, args...)
	}
	return cmd
}

// isShebangRefusal reports the compile error of a server that reads #!lua
// as Lua: "Error compiling script … near '#'".
func isShebangRefusal(err error) bool {
	msg := err.Error()
	return isServerError(err) && strings.Contains(msg, "compiling script") && strings.Contains(msg, "'#'")
}
