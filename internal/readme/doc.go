// Package readme holds the tests that keep the repository's README.md
// true; it has no code of its own.
//
// TestGoBlocks type-checks every ```go block of the README against this
// module's generated package and runtime. A block with a package clause
// is a whole file. Any other block is a fragment of statements: it is
// checked as the body of a function, with these package-level variables
// in scope, so the README need not declare them:
//
//	ctx        context.Context
//	ds         *runtime.DataStore
//	m1, m2, m3 generated.NodeMessage
//	job        generated.JobRequest
//	handler    runtime.Handler[generated.JobRequest]
//	value      any
//
// and the packages context, errors, fmt, log/slog, time, the generated
// package and the runtime imported. A fragment may leave variables and
// imports unused (those two errors are ignored: a sketch shows results it
// does not go on to use); every other error fails the test at its README
// line. Whole files that import example.com/engine, the module of the
// README's "Using storagegen in your module", are built for real by
// TestFirstHour instead, which runs that section from an empty module.
package readme
