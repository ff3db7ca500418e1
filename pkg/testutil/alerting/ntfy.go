package alerting

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/sprig/v3"
)

// NtfyMessage is one message the ntfy stand-in published.
type NtfyMessage struct {
	Topic    string
	Title    string
	Message  string
	Priority int
	Tags     []string
	Click    string
	Markdown bool
	// Templated says the title and message were rendered from the JSON body
	// (template=yes).
	Templated bool
	// Attachment says the body was too large for a message: real ntfy
	// would have stored it as a file attachment, not shown it.
	Attachment bool
	Header     http.Header
	Body       []byte
}

// NtfyServer stands in for an ntfy server's publish API
// (https://docs.ntfy.sh/publish/): PUT/POST /<topic>, parameters as headers
// (X-Title, ...) or query parameters (title, t, ...), the body as the
// message, and "Message templating": with template=yes (or X-Template, tpl),
// the title and message parameters are Go templates rendered over the JSON
// body. It follows the real server's code (heckel.io/ntfy/v2 server.go and
// server/templates.go): parameter names and precedence, \n in message
// parameters, the same template functions (a sprig subset), the ban on
// define/template/block/call, the trimmed output, the 4096-byte message
// limit, and its JSON errors ({"code":40042,"http":400,"error":...}; the
// codes and messages are those of ntfy's server/errors.go).
//
// Not implemented: named server-side templates (template=alertmanager,
// ...): they are refused loudly, so a test cannot pass with them unchecked.
type NtfyServer struct {
	*standIn
	token    string
	nextID   atomic.Int64
	messages inbox[NtfyMessage]
}

// StartNtfyServer starts an ntfy stand-in. With a non-empty token, publishing
// needs "Authorization: Bearer <token>" (ntfy's access tokens): no token is
// 403 forbidden, a wrong one 401 unauthorized.
func StartNtfyServer(t testing.TB, token string, opts ...ServerOption) *NtfyServer {
	t.Helper()
	n := &NtfyServer{token: token}
	n.standIn, _ = newStandIn(t, "ntfy", n.serve, opts)
	return n
}

// URL is the server's base URL; a topic's URL is URL()+"/"+topic.
func (n *NtfyServer) URL() string { return n.server.URL }

// Messages lists the published messages so far.
func (n *NtfyServer) Messages() []NtfyMessage { return n.messages.all() }

// Wait waits until at least count messages were published.
func (n *NtfyServer) Wait(count int, timeout time.Duration) []NtfyMessage {
	n.t.Helper()
	return n.messages.wait(n.t, "ntfy message(s)", count, timeout)
}

var (
	ntfyTopicPath = regexp.MustCompile(`^/([-_A-Za-z0-9]{1,64})$`)
	// ntfyPrintfTooWide is ntfy's guard against huge printf widths.
	ntfyPrintfTooWide = regexp.MustCompile(`%[-+# 0-9.*\[\]]*(\*|[0-9]{4})`)
)

const (
	ntfyMessageLimit  = 4096      // bytes: the server's default message-size-limit
	ntfyJSONBodyLimit = 32 * 1024 // bytes of JSON body read when templating
	ntfyTemplateLimit = 32 * 1024 // bytes of one template
)

// ntfyError is the JSON error object of ntfy's errHTTP.
func ntfyError(code, status int, message, link string) string {
	b, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		HTTP    int    `json:"http"`
		Message string `json:"error"`
		Link    string `json:"link,omitempty"`
	}{code, status, message, link})
	return string(b)
}

const ntfyTemplatingDoc = "https://ntfy.sh/docs/publish/#message-templating"

func (n *NtfyServer) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(code, status int, message, link, reason string) {
		n.reject(w, r, status, "application/json", ntfyError(code, status, message, link), reason)
	}
	match := ntfyTopicPath.FindStringSubmatch(r.URL.Path)
	if match == nil || (r.Method != http.MethodPost && r.Method != http.MethodPut) {
		fail(40401, http.StatusNotFound, "page not found", "", "not PUT/POST /<topic>")
		return
	}
	if n.token != "" {
		auth := r.Header.Get("Authorization")
		switch {
		case auth == "":
			fail(40301, http.StatusForbidden, "forbidden", "https://ntfy.sh/docs/publish/#authentication", "no access token")
			return
		case auth != "Bearer "+n.token:
			fail(40101, http.StatusUnauthorized, "unauthorized", "https://ntfy.sh/docs/publish/#authentication", "wrong access token")
			return
		}
	}
	m := NtfyMessage{Topic: match[1], Header: r.Header.Clone()}
	m.Title = ntfyParam(r, "x-title", "title", "t")
	m.Message = strings.ReplaceAll(ntfyParam(r, "x-message", "message", "m"), `\n`, "\n")
	m.Click = ntfyParam(r, "x-click", "click")
	m.Tags = ntfyList(ntfyParam(r, "x-tags", "tags", "tag", "ta"))
	markdown := strings.ToLower(ntfyParam(r, "x-markdown", "markdown", "md"))
	m.Markdown = ntfyTrue(markdown) || strings.EqualFold(ntfyParam(r, "content-type", "content_type"), "text/markdown")
	priority := ntfyParam(r, "x-priority", "priority", "prio", "p")
	tpl := strings.ToLower(ntfyParam(r, "x-template", "template", "tpl"))
	body, err := readBody(r)
	if err != nil {
		fail(41301, http.StatusRequestEntityTooLarge, "attachment too large, or bandwidth limit reached", "https://ntfy.sh/docs/publish/#limitations", err.Error())
		return
	}
	m.Body = body
	switch {
	case tpl == "" || ntfyFalse(tpl):
		if len(body) > ntfyMessageLimit || !utf8.Valid(body) {
			m.Attachment = true // the real server would turn the body into an attachment
		} else if len(body) > 0 {
			m.Message = strings.TrimSpace(string(body))
		}
	case ntfyTrue(tpl):
		m.Templated = true
		if len(body) > ntfyJSONBodyLimit {
			fail(41303, http.StatusRequestEntityTooLarge, "JSON body too large", "", "JSON body over 32 KiB")
			return
		}
		source := strings.TrimSpace(string(body))
		for _, field := range []struct {
			name string
			tpl  *string
		}{{"message", &m.Message}, {"title", &m.Title}, {"priority", &priority}} {
			if *field.tpl == "" && field.name == "priority" {
				continue
			}
			out, code, msg := ntfyRender(*field.tpl, source)
			if code != 0 {
				fail(code, http.StatusBadRequest, msg, ntfyTemplatingDoc, field.name+" template: "+msg)
				return
			}
			*field.tpl = out
		}
		if len(m.Title) > ntfyMessageLimit || len(m.Message) > ntfyMessageLimit {
			fail(40041, http.StatusBadRequest, "invalid request: message or title is too large after replacing template", ntfyTemplatingDoc, "rendered over 4096 bytes")
			return
		}
	default:
		fail(40047, http.StatusBadRequest, "invalid request: template file not found", ntfyTemplatingDoc,
			"named template "+tpl+": the stand-in implements only template=yes")
		return
	}
	if m.Priority, err = ntfyPriority(priority); err != nil {
		fail(40007, http.StatusBadRequest, "invalid priority parameter", "https://ntfy.sh/docs/publish/#message-priority", err.Error())
		return
	}
	if m.Message == "" {
		m.Message = "triggered" // ntfy's emptyMessageBody
	}
	n.messages.add(m)
	now := time.Now().Unix()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": fmt.Sprintf("msg%09d", n.nextID.Add(1)), "time": now, "expires": now + 43200,
		"event": "message", "topic": m.Topic, "title": m.Title, "message": m.Message,
		"priority": m.Priority, "tags": m.Tags,
	})
}

// ntfyParam reads a parameter like ntfy's readParam: the first non-empty
// header among names, else the first non-empty query parameter; trimmed.
func ntfyParam(r *http.Request, names ...string) string {
	for _, name := range names {
		if v := strings.TrimSpace(r.Header.Get(name)); v != "" {
			return v
		}
	}
	q := r.URL.Query()
	for _, name := range names {
		if v := strings.TrimSpace(q.Get(strings.ToLower(name))); v != "" {
			return v
		}
	}
	return ""
}

func ntfyTrue(v string) bool  { return v == "1" || v == "yes" || v == "true" }
func ntfyFalse(v string) bool { return v == "0" || v == "no" || v == "false" }

func ntfyList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ntfyPriority parses 1-5 or min/low/default/high/max/urgent; empty is 3.
func ntfyPriority(p string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "", "3", "default":
		return 3, nil
	case "1", "min":
		return 1, nil
	case "2", "low":
		return 2, nil
	case "4", "high":
		return 4, nil
	case "5", "max", "urgent":
		return 5, nil
	}
	if _, err := strconv.Atoi(p); err == nil {
		return 0, fmt.Errorf("priority %s is not 1 to 5", p)
	}
	return 0, fmt.Errorf("unknown priority %q", p)
}

// ntfyRender renders one template over the JSON source as ntfy's
// renderTemplate does. It returns the output, or ntfy's error code and
// message.
func ntfyRender(tpl, source string) (string, int, string) {
	if len(tpl) > ntfyTemplateLimit {
		// The real server refuses it too; its error code is not verified here.
		return "", 40049, "invalid request: template too large"
	}
	var data any
	if err := json.Unmarshal([]byte(source), &data); err != nil {
		return "", 40042, "invalid request: message body must be JSON if templating is enabled"
	}
	t, err := template.New("").Funcs(ntfyFuncs()).Parse(tpl)
	if err != nil {
		return "", 40043, "invalid request: could not parse template; " + err.Error()
	}
	if len(t.Templates()) > 1 || ntfyDisallowed(t.Root) {
		return "", 40044, "invalid request: template contains disallowed function calls, e.g. template, call, or define"
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", 40045, "invalid request: template execution failed; " + err.Error()
	}
	// Literal \n outside the template actions become newlines.
	return strings.TrimSpace(strings.ReplaceAll(buf.String(), `\n`, "\n")), 0, ""
}

// ntfyDisallowed finds {{template}}/{{block}} and {{call}} in a parse tree.
func ntfyDisallowed(node parse.Node) bool {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if ntfyDisallowed(c) {
				return true
			}
		}
	case *parse.ActionNode:
		return ntfyDisallowed(n.Pipe)
	case *parse.RangeNode:
		return ntfyDisallowed(n.Pipe) || ntfyDisallowed(n.List) || ntfyDisallowed(n.ElseList)
	case *parse.IfNode:
		return ntfyDisallowed(n.Pipe) || ntfyDisallowed(n.List) || ntfyDisallowed(n.ElseList)
	case *parse.WithNode:
		return ntfyDisallowed(n.Pipe) || ntfyDisallowed(n.List) || ntfyDisallowed(n.ElseList)
	case *parse.TemplateNode:
		return true
	case *parse.ChainNode:
		return ntfyDisallowed(n.Node)
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, c := range n.Cmds {
			if ntfyDisallowed(c) {
				return true
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if ntfyDisallowed(a) {
				return true
			}
		}
	case *parse.IdentifierNode:
		return n.Ident == "call"
	}
	return false
}

// ntfyFuncNames are the template functions ntfy's own sprig fork
// (heckel.io/ntfy/v2/util/sprig) defines; a template using any other
// function fails to parse there, so it fails here too.
const ntfyFuncNames = `ago date date_in_zone date_modify dateInZone dateModify duration durationRound
htmlDate htmlDateInZone must_date_modify mustDateModify mustToDate now toDate unixEpoch
trunc trim upper lower title substr repeat trimall trimAll trimSuffix trimPrefix contains hasPrefix
hasSuffix quote squote cat indent nindent replace plural sha1sum sha256sum sha512sum adler32sum
toString atoi seq toDecimal split splitList splitn toStrings until untilStep add1 add sub div mod
mul randInt biggest max min maxf minf ceil floor round join sortAlpha default empty coalesce all
any compact mustCompact ternary typeOf typeIs typeIsLike kindOf kindIs
deepEqual base dir clean ext isAbs osBase osClean osDir osExt osIsAbs b64enc b64dec b32enc b32dec
tuple list dict get set unset hasKey pluck keys pick omit values append push mustAppend mustPush
prepend mustPrepend first mustFirst rest mustRest last mustLast initial mustInitial reverse
mustReverse uniq mustUniq without mustWithout has mustHas slice mustSlice concat dig chunk mustChunk
uuidv4 fail regexMatch mustRegexMatch regexFindAll mustRegexFindAll regexFind mustRegexFind
regexReplaceAll mustRegexReplaceAll regexReplaceAllLiteral mustRegexReplaceAllLiteral regexSplit
mustRegexSplit regexQuoteMeta urlParse urlJoin`

// ntfyFuncs is sprig's function map cut down to ntfy's names, plus ntfy's
// JSON helpers (spelled toJSON, not sprig's toJson) and its guarded printf.
func ntfyFuncs() template.FuncMap {
	all := sprig.TxtFuncMap()
	funcs := template.FuncMap{}
	for _, name := range strings.Fields(ntfyFuncNames) {
		if f, ok := all[name]; ok {
			funcs[name] = f
		}
	}
	for ntfyName, sprigName := range map[string]string{
		"fromJSON": "fromJson", "toJSON": "toJson", "toPrettyJSON": "toPrettyJson", "toRawJSON": "toRawJson",
		"mustFromJSON": "mustFromJson", "mustToJSON": "mustToJson", "mustToPrettyJSON": "mustToPrettyJson",
		"mustToRawJSON": "mustToRawJson",
	} {
		funcs[ntfyName] = all[sprigName]
	}
	funcs["printf"] = func(format string, args ...any) (string, error) {
		if ntfyPrintfTooWide.MatchString(strings.ReplaceAll(format, "%%", "")) {
			return "", fmt.Errorf("printf width or precision too large")
		}
		return fmt.Sprintf(format, args...), nil
	}
	return funcs
}
