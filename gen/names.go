package gen

import (
	"go/token"
	"regexp"
	"strings"
)

// Every Go name in generated code is decided here, once, by Check; the
// emitters only read the names the model holds.

var (
	snakeRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	camelRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
)

// initialisms are written all upper case in Go names (run_id → RunID),
// after golint's list.
var initialisms = map[string]bool{
	"ACL": true, "API": true, "ASCII": true, "CPU": true, "CSS": true, "DNS": true,
	"EOF": true, "GUID": true, "HTML": true, "HTTP": true, "HTTPS": true, "ID": true,
	"IP": true, "JSON": true, "LHS": true, "QPS": true, "RAM": true, "RHS": true,
	"RPC": true, "SLA": true, "SMTP": true, "SQL": true, "SSH": true, "TCP": true,
	"TLS": true, "TTL": true, "UDP": true, "UI": true, "UID": true, "UUID": true,
	"URI": true, "URL": true, "UTF8": true, "VM": true, "XML": true, "XMPP": true,
	"XSRF": true, "XSS": true,
}

// predeclared are Go's predeclared identifiers, which a parameter may not
// shadow.
var predeclared = map[string]bool{
	"any": true, "bool": true, "byte": true, "comparable": true, "complex64": true,
	"complex128": true, "error": true, "float32": true, "float64": true, "int": true,
	"int8": true, "int16": true, "int32": true, "int64": true, "rune": true,
	"string": true, "uint": true, "uint8": true, "uint16": true, "uint32": true,
	"uint64": true, "uintptr": true, "true": true, "false": true, "iota": true,
	"nil": true, "append": true, "cap": true, "clear": true, "close": true,
	"complex": true, "copy": true, "delete": true, "imag": true, "len": true,
	"make": true, "max": true, "min": true, "new": true, "panic": true,
	"print": true, "println": true, "real": true, "recover": true,
}

// generatedIdents are the package-level names generated code declares
// besides the schema's types.
var generatedIdents = map[string]bool{"Store": true, "Queues": true, "Caches": true, "New": true, "Prefix": true}

// deliveryTypeName and handlerTypeName name the aliases that generated
// code declares for an at-least-once queue (jobs → JobsDelivery for
// runtime.Delivery[T], JobsHandler for runtime.Handler[T]), so that node
// code need not spell the generic types. They cannot collide with each
// other or with Store, Queues, Caches, New or Prefix, only with a type of
// the schema, which Check reports.
func deliveryTypeName(queueGoName string) string { return queueGoName + "Delivery" }

func handlerTypeName(queueGoName string) string { return queueGoName + "Handler" }

// localIdents are names used inside generated accessors, which a
// placeholder's parameter may not shadow.
var localIdents = map[string]bool{"runtime": true, "time": true, "qs": true, "cs": true}

// isSnake reports whether s is lower_snake_case.
func isSnake(s string) bool { return snakeRE.MatchString(s) }

// isCamel reports whether s is UpperCamelCase.
func isCamel(s string) bool { return camelRE.MatchString(s) }

// exportedName turns lower_snake_case into an exported Go name:
// node_edge → NodeEdge, run_id → RunID.
func exportedName(snake string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(snake, "_") {
		b.WriteString(namePart(part))
	}
	return b.String()
}

// paramName turns lower_snake_case into an unexported Go name:
// source_id → sourceID, id → id, url_path → urlPath.
func paramName(snake string) string {
	first, rest, _ := strings.Cut(snake, "_")
	if rest == "" {
		return first
	}
	return first + exportedName(rest)
}

func namePart(p string) string {
	if up := strings.ToUpper(p); initialisms[up] {
		return up
	}
	return strings.ToUpper(p[:1]) + p[1:]
}

// paramProblem says why an unexported name cannot be a parameter, or "".
func paramProblem(name string) string {
	switch {
	case token.IsKeyword(name):
		return "is a Go keyword"
	case predeclared[name]:
		return "is a predeclared Go identifier"
	case localIdents[name]:
		return "is used by generated code"
	}
	return ""
}
