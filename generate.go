// Package storagegen is a typed storage layer for workflow engines on
// Redis: schema.yaml declares every queue and cache with its payload type,
// and `go generate ./...` runs cmd/storagegen, which writes typed Go into
// generated/ over the generic runtime package.
//
// This file holds the go:generate directive. It is not named
// "go:generate.go": Go module zips refuse a ':' in a file name
// (golang.org/x/mod/module fileNameOK), so such a module could not be
// fetched through a proxy, and Windows refuses the name too.
package storagegen

//go:generate go run ./cmd/storagegen -schema schema.yaml -out generated -doc STORAGE.md -jsonschema storagegen.schema.json -python examples/python/flowstore
