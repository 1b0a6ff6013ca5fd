// The code of this package is generated from schema.yaml, a test schema
// for the Python client; the tests of runtime and gen check that Go and
// the generated Python package (py/pyinterop) write and read the same
// JSON.

package pyinterop

//go:generate go run ../../cmd/storagegen -schema schema.yaml -out . -python py/pyinterop
