package dashboard

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/storagegen/storagegen/internal/inspect"
	"github.com/storagegen/storagegen/runtime"
)

// maxShown is how many bytes of a payload a page shows.
const maxShown = 16 << 10

// maxRows is how many instances a declaration's page lists.
const maxRows = 500

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"dur": func(d *inspect.Duration) string {
			if d == nil {
				return "-"
			}
			return d.String()
		},
		"bytes": func(n int64) string {
			switch {
			case n >= 1<<20:
				return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
			case n >= 1<<10:
				return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
			}
			return fmt.Sprintf("%d B", n)
		},
		"plus": func(b bool) string {
			if b {
				return "+"
			}
			return ""
		},
		"clock": func(t time.Time) string { return t.Format("15:04:05") },
		"args":  argsText,
	}
	pages := map[string]*template.Template{}
	for _, p := range []string{"overview", "decl", "confirm", "login", "error"} {
		t, err := template.New(p).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, err
		}
		pages[p] = t
	}
	return pages, nil
}

func argsText(args []inspect.Arg) string {
	if len(args) == 0 {
		return "(no arguments)"
	}
	var parts []string
	for _, a := range args {
		parts = append(parts, fmt.Sprintf("%s=%v", a.Name, a.Value))
	}
	return strings.Join(parts, " ")
}

// declURL is the page of declaration d, with the arguments given.
func declURL(d *inspect.Decl, args []inspect.Arg, extra url.Values) string {
	q := url.Values{}
	for _, a := range args {
		q.Set("arg."+a.Name, fmt.Sprint(a.Value))
	}
	for k, v := range extra {
		q[k] = v
	}
	u := "/" + string(d.Kind) + "/" + url.PathEscape(d.Name)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Row is one declaration in the overview.
type Row struct {
	S     inspect.DeclSummary
	URL   string
	Chart *Chart
}

// OverviewData is the overview page's.
type OverviewData struct {
	Overview *inspect.Overview
	Queues   []Row
	Caches   []Row
}

func (s *Server) overviewData(r *http.Request) (*OverviewData, error) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	ov, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	data := &OverviewData{Overview: ov}
	for _, d := range ov.Decls {
		row := Row{S: d, URL: declURL(d.Decl, nil, nil)}
		if d.Queue != nil {
			row.Chart = s.chart(d.Decl.Name)
			data.Queues = append(data.Queues, row)
		} else {
			data.Caches = append(data.Caches, row)
		}
	}
	return data, nil
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	data, err := s.overviewData(r)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	s.render(w, http.StatusOK, "overview", s.base(r, "Overview"), data)
}

// overviewFragment is the overview's table alone, which the page's script
// fetches to refresh it in place.
func (s *Server) overviewFragment(w http.ResponseWriter, r *http.Request) {
	data, err := s.overviewData(r)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	var buf strings.Builder
	if err := s.pages["overview"].ExecuteTemplate(&buf, "ovtable", struct {
		Base
		Data any
	}{s.base(r, ""), data}); err != nil {
		s.log.Error("dashboard: template failed", "page", "ovtable", "err", err)
		http.Error(w, "template failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, buf.String())
}

// ItemView is an item as a page shows it.
type ItemView struct {
	inspect.Item
	Payload   string // indented JSON, or the raw bytes quoted
	Raw       bool
	Truncated bool
	Expired   bool // in flight with a lease that ran out
}

func itemView(it inspect.Item) ItemView {
	v := ItemView{Item: it}
	if it.Value != nil {
		val := jsontext.Value(append([]byte(nil), it.Value...))
		if err := val.Indent(jsontext.WithIndent("  ")); err != nil {
			val = it.Value
		}
		v.Payload = string(val)
	} else {
		v.Payload, v.Raw = strconv.Quote(string(it.Raw)), true
	}
	if len(v.Payload) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(v.Payload[cut]) {
			cut--
		}
		v.Payload, v.Truncated = v.Payload[:cut], true
	}
	v.Expired = it.LeaseLeft != nil && *it.LeaseLeft < 0
	return v
}

func itemViews(items *inspect.Items) []ItemView {
	if items == nil {
		return nil
	}
	out := make([]ItemView, 0, len(items.List))
	for _, it := range items.List {
		out = append(out, itemView(it))
	}
	return out
}

// FilterField is one argument input of a declaration's page.
type FilterField struct {
	Name, Type, Value string
}

// InstanceRow is one instance in a declaration's page.
type InstanceRow struct {
	inspect.Instance
	URL string
}

// Action is a write button of an instance's page.
type Action struct {
	Op, Label, URL string
	Danger         bool
}

// DeclData is a declaration's page's.
type DeclData struct {
	Decl      *inspect.Decl
	Fields    []FilterField
	Filtered  bool
	Rows      []InstanceRow
	More      int
	AtLeast   bool
	Complete  bool // the filter names one instance: its items are shown
	Instance  *inspect.Instance
	Items     []ItemView
	Dead      []ItemView
	Entry     *inspect.Entry
	EntryItem *ItemView
	Actions   []Action
	Done      string
}

// filterOf reads the arg.NAME query parameters; an empty value is no
// filter.
func filterOf(d *inspect.Decl, q url.Values) ([]FilterField, []string) {
	var fields []FilterField
	var words []string
	for _, p := range d.Params {
		v := q.Get("arg." + p.Name)
		fields = append(fields, FilterField{Name: p.Name, Type: p.Type, Value: v})
		if v != "" {
			words = append(words, p.Name+"="+v)
		}
	}
	return fields, words
}

// lookup returns the declaration of the request's path and its filter.
func (s *Server) lookup(r *http.Request, kind inspect.Kind, name string, q url.Values) (*inspect.Decl, []FilterField, inspect.Filter, int, error) {
	d, err := s.in.Decl(kind, name)
	if err != nil {
		return nil, nil, nil, http.StatusNotFound, err
	}
	fields, words := filterOf(d, q)
	f, err := d.ParseFilter(words)
	if err != nil {
		return nil, nil, nil, http.StatusBadRequest, err
	}
	return d, fields, f, 0, nil
}

var doneText = map[string]string{
	"requeue": "requeued %d dead letter(s)",
	"purge":   "purged %d dead letter(s)",
	"reclaim": "reclaimed %d item(s) whose lease had run out",
	"pause":   "paused",
	"resume":  "resumed",
}

func (s *Server) declPage(w http.ResponseWriter, r *http.Request) {
	kind := inspect.KindQueue
	if strings.HasPrefix(r.URL.Path, "/cache/") {
		kind = inspect.KindCache
	}
	q := r.URL.Query()
	d, fields, f, code, err := s.lookup(r, kind, r.PathValue("name"), q)
	if err != nil {
		s.fail(w, r, code, err)
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	data := &DeclData{Decl: d, Fields: fields, Filtered: len(f) > 0, Complete: len(f) == len(d.Params)}
	if t, ok := doneText[q.Get("done")]; ok {
		n, _ := strconv.Atoi(q.Get("count"))
		data.Done = t
		if strings.Contains(t, "%d") {
			data.Done = fmt.Sprintf(t, n)
		}
	}
	l, err := s.in.Instances(ctx, d, f)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	data.AtLeast = l.AtLeast
	for i, x := range l.List {
		if i == maxRows {
			data.More = len(l.List) - maxRows
			break
		}
		data.Rows = append(data.Rows, InstanceRow{Instance: x, URL: declURL(d, x.Args, nil)})
	}
	if data.Complete && len(l.List) == 1 {
		x := l.List[0]
		data.Instance = &x
		if kind == inspect.KindQueue {
			items, err := s.in.Peek(ctx, d, f, s.peek)
			if err != nil {
				s.fail(w, r, statusOf(err), err)
				return
			}
			dead, err := s.in.Dead(ctx, d, f, s.peek)
			if err != nil {
				s.fail(w, r, statusOf(err), err)
				return
			}
			data.Items, data.Dead = itemViews(items), itemViews(dead)
			data.Actions = s.actions(d, x)
		} else {
			e, err := s.in.CacheGet(ctx, d, f)
			if err != nil {
				s.fail(w, r, statusOf(err), err)
				return
			}
			data.Entry = e
			if e.Item != nil {
				v := itemView(*e.Item)
				data.EntryItem = &v
			}
		}
	}
	s.render(w, http.StatusOK, "decl", s.base(r, string(kind)+" "+d.Name), data)
}

func (s *Server) actions(d *inspect.Decl, x inspect.Instance) []Action {
	ops := []Action{{Op: "requeue", Label: "Requeue dead letters"}, {Op: "purge", Label: "Purge dead letters", Danger: true}}
	if d.Reliable() {
		ops = append(ops, Action{Op: "reclaim", Label: "Reclaim expired leases"})
		if x.Queue != nil && x.Queue.Paused > 0 {
			ops = append(ops, Action{Op: "resume", Label: "Resume"})
		} else {
			ops = append(ops, Action{Op: "pause", Label: "Pause", Danger: true})
		}
	}
	for i := range ops {
		ops[i].URL = "/confirm?" + writeQuery(d, x.Args, ops[i].Op).Encode()
	}
	return ops
}

func writeQuery(d *inspect.Decl, args []inspect.Arg, op string) url.Values {
	q := url.Values{"op": {op}, "kind": {string(d.Kind)}, "name": {d.Name}}
	for _, a := range args {
		q.Set("arg."+a.Name, fmt.Sprint(a.Value))
	}
	return q
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, inspect.ErrUnknownDecl):
		return http.StatusNotFound
	case errors.Is(err, inspect.ErrNotSupported), errors.Is(err, runtime.ErrInvalidArgument):
		return http.StatusBadRequest
	}
	return http.StatusBadGateway
}

// Hidden is a hidden form field.
type Hidden struct{ Name, Value string }

// ConfirmData is the confirmation page's.
type ConfirmData struct {
	Op, What, Key, Back string
	Args                []inspect.Arg
	Hidden              []Hidden
	N                   int
	Danger              bool
}

var whatText = map[string]string{
	"requeue": "move up to N of the oldest dead letters back to the queue",
	"purge":   "delete every dead letter",
	"reclaim": "put the items in flight whose lease ran out back in the ready list",
	"pause":   "pause: receivers wait without taking items; pushes go on",
	"resume":  "resume: receivers take items again",
}

// writeTarget reads and checks what a write (or its confirmation) asks:
// the operation, the one instance it applies to, N for requeue.
func (s *Server) writeTarget(r *http.Request, q url.Values) (*inspect.Decl, inspect.Filter, []inspect.Arg, string, int, int, error) {
	op := q.Get("op")
	if _, ok := whatText[op]; !ok {
		return nil, nil, nil, "", 0, http.StatusBadRequest, fmt.Errorf("unknown operation %q", op)
	}
	if q.Get("kind") != string(inspect.KindQueue) {
		return nil, nil, nil, "", 0, http.StatusBadRequest, errors.New("writes apply to queues")
	}
	d, _, f, code, err := s.lookup(r, inspect.KindQueue, q.Get("name"), q)
	if err != nil {
		return nil, nil, nil, "", 0, code, err
	}
	if len(f) != len(d.Params) {
		return nil, nil, nil, "", 0, http.StatusBadRequest, fmt.Errorf("a write applies to one instance: give every argument of queue %s", d.Name)
	}
	if (op == "reclaim" || op == "pause" || op == "resume") && !d.Reliable() {
		return nil, nil, nil, "", 0, http.StatusBadRequest, fmt.Errorf("%s is for at-least-once queues; queue %s is at-most-once", op, d.Name)
	}
	n := 0
	if op == "requeue" {
		n = 10
		if v := q.Get("n"); v != "" {
			if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 100_000 {
				return nil, nil, nil, "", 0, http.StatusBadRequest, errors.New("n must be between 1 and 100000")
			}
		}
	}
	var args []inspect.Arg
	for _, p := range d.Params {
		args = append(args, inspect.Arg{Name: p.Name, Value: f[p.Name]})
	}
	return d, f, args, op, n, 0, nil
}

func (s *Server) confirmPage(w http.ResponseWriter, r *http.Request) {
	if !s.writes {
		s.fail(w, r, http.StatusForbidden, errors.New("read-only: the dashboard was started without -allow-writes"))
		return
	}
	q := r.URL.Query()
	d, _, args, op, n, code, err := s.writeTarget(r, q)
	if err != nil {
		s.fail(w, r, code, err)
		return
	}
	data := &ConfirmData{Op: op, What: whatText[op], Args: args, N: n, Back: declURL(d, args, nil),
		Danger: op == "purge" || op == "pause"}
	ctx, cancel := s.ctx(r)
	defer cancel()
	if k, err := s.in.Instances(ctx, d, inspect.Filter(argFilter(args))); err == nil && len(k.List) == 1 {
		data.Key = k.List[0].Key
	}
	for k, vs := range writeQuery(d, args, op) {
		data.Hidden = append(data.Hidden, Hidden{k, vs[0]})
	}
	data.Hidden = append(data.Hidden, Hidden{"confirm", "yes"})
	s.render(w, http.StatusOK, "confirm", s.base(r, "Confirm "+op), data)
}

func argFilter(args []inspect.Arg) map[string]any {
	f := map[string]any{}
	for _, a := range args {
		f[a.Name] = a.Value
	}
	return f
}

// write does a confirmed write: read-only refuses it, a request without
// the CSRF token or from another origin is refused, an unconfirmed one
// too.
func (s *Server) write(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !s.writes {
		s.fail(w, r, http.StatusForbidden, errors.New("read-only: the dashboard was started without -allow-writes"))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, errors.New("bad form"))
		return
	}
	if !s.csrfOK(r) {
		s.fail(w, r, http.StatusForbidden, errors.New("refused: the request lacks this page's CSRF token or comes from another origin"))
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		s.fail(w, r, http.StatusBadRequest, errors.New("not confirmed: use the confirmation page"))
		return
	}
	d, f, args, op, n, code, err := s.writeTarget(r, r.PostForm)
	if err != nil {
		s.fail(w, r, code, err)
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	count := 0
	switch op {
	case "requeue":
		count, err = s.in.Requeue(ctx, d, f, n)
	case "purge":
		count, err = s.in.Purge(ctx, d, f)
	case "reclaim":
		count, err = s.in.Reclaim(ctx, d, f)
	case "pause":
		err = s.in.Pause(ctx, d, f)
	case "resume":
		err = s.in.Resume(ctx, d, f)
	}
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.log.Info("dashboard: write", "op", op, "queue", d.Name, "count", count)
	// The next overview is taken afresh, so that it shows the write.
	s.mu.Lock()
	s.latest = nil
	s.mu.Unlock()
	http.Redirect(w, r, declURL(d, args, url.Values{"done": {op}, "count": {strconv.Itoa(count)}}), http.StatusSeeOther)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.token == "" || s.authed(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "login", s.base(r, "Log in"), nil)
}

// login checks the token from the form and sets the session cookie: an
// HMAC of the token under the process's key, HttpOnly, SameSite=Strict
// (Secure when the request came over TLS).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if !sameOrigin(r) {
		s.fail(w, r, http.StatusForbidden, errors.New("refused: the login form was posted from another origin"))
		return
	}
	if s.token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !equal(r.PostFormValue("token"), s.token) {
		s.render(w, http.StatusUnauthorized, "login", s.base(r, "Log in"), "wrong token")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.sec.session, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.csrfOK(r) {
		s.fail(w, r, http.StatusForbidden, errors.New("refused: the request lacks this page's CSRF token or comes from another origin"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
