// Package lua holds the Lua scripts of the runtime's at-least-once queues
// and of the at-most-once dead-letter move, one file each, headed with the
// KEYS and ARGV they take and what they return.
//
// It is the one source of the scripts: the runtime (runtime/scripts.go)
// loads them from Files, and the Python code generator (gen) copies them
// byte for byte into a generated Python package, whose runtime runs the
// very same scripts. It has no Redis dependency, so the generator can
// import it without linking go-redis.
package lua

import "embed"

// Files holds every script (*.lua) of this directory, by file name.
//
//go:embed *.lua
var Files embed.FS
