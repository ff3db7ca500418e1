package alerting

import (
	"encoding/json"
	"mime"
	"net/http"
	"testing"
	"time"
)

// SlackMessage is the JSON body of an incoming-webhook request (the parts a
// notification uses).
// See https://api.slack.com/messaging/webhooks
type SlackMessage struct {
	Channel     string            `json:"channel"`
	Username    string            `json:"username"`
	IconEmoji   string            `json:"icon_emoji"`
	IconURL     string            `json:"icon_url"`
	Text        string            `json:"text"`
	Attachments []SlackAttachment `json:"attachments"`
	Blocks      []json.RawMessage `json:"blocks"`
}

// SlackAttachment is one (legacy) message attachment.
type SlackAttachment struct {
	Title     string `json:"title"`
	TitleLink string `json:"title_link"`
	Pretext   string `json:"pretext"`
	Text      string `json:"text"`
	Fallback  string `json:"fallback"`
	Color     string `json:"color"`
	Footer    string `json:"footer"`
}

// Slack's documented limits: 100 attachments and 50 blocks per message, and
// text is truncated after 40,000 characters (we refuse instead, to notice).
const (
	slackMaxAttachments = 100
	slackMaxBlocks      = 50
	slackMaxText        = 40000
)

// SlackWebhook stands in for a Slack incoming webhook,
// POST /services/T.../B.../X.... It replies 200 "ok" (text/html), and the
// plain-text error codes of "Handling errors" in Slack's webhook docs
// otherwise.
type SlackWebhook struct {
	*standIn
	path     string
	messages inbox[SlackMessage]
}

// StartSlackWebhook starts a Slack incoming-webhook stand-in whose URL path
// is /services/T0000/B0000/<secret>.
func StartSlackWebhook(t testing.TB, secret string, opts ...ServerOption) *SlackWebhook {
	t.Helper()
	s := &SlackWebhook{path: "/services/T0000/B0000/" + secret}
	s.standIn, _ = newStandIn(t, "slack", s.serve, opts)
	return s
}

// URL is the incoming-webhook URL (slack_configs[].api_url).
func (s *SlackWebhook) URL() string { return s.server.URL + s.path }

// Messages lists the accepted messages so far.
func (s *SlackWebhook) Messages() []SlackMessage { return s.messages.all() }

// Wait waits until at least n messages arrived.
func (s *SlackWebhook) Wait(n int, timeout time.Duration) []SlackMessage {
	s.t.Helper()
	return s.messages.wait(s.t, "Slack message(s)", n, timeout)
}

func (s *SlackWebhook) serve(w http.ResponseWriter, r *http.Request) {
	const text = "text/html"
	if r.URL.Path != s.path {
		s.reject(w, r, http.StatusForbidden, text, "invalid_token", "unknown webhook URL")
		return
	}
	if r.Method != http.MethodPost {
		s.reject(w, r, http.StatusBadRequest, text, "invalid_payload", "incoming webhooks take POST")
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.reject(w, r, http.StatusBadRequest, text, "invalid_payload", err.Error())
		return
	}
	// Slack takes a JSON body, or a form field "payload" holding JSON.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err == nil {
			body = []byte(r.PostForm.Get("payload"))
		}
	}
	var m SlackMessage
	if err := json.Unmarshal(body, &m); err != nil {
		s.reject(w, r, http.StatusBadRequest, text, "invalid_payload", "body is not JSON: "+err.Error())
		return
	}
	switch {
	case m.Text == "" && len(m.Attachments) == 0 && len(m.Blocks) == 0:
		s.reject(w, r, http.StatusBadRequest, text, "no_text", "no text, attachments or blocks")
		return
	case len(m.Attachments) > slackMaxAttachments:
		s.reject(w, r, http.StatusBadRequest, text, "too_many_attachments", "over 100 attachments")
		return
	case len(m.Blocks) > slackMaxBlocks:
		s.reject(w, r, http.StatusBadRequest, text, "invalid_blocks", "over 50 blocks")
		return
	case len([]rune(m.Text)) > slackMaxText:
		s.reject(w, r, http.StatusBadRequest, text, "invalid_payload", "text over 40,000 characters would be truncated")
		return
	}
	// Stricter than Slack, which would show an empty box: an attachment
	// without any text is a broken notification. (invalid_attachments is the
	// Web API's error code for it.)
	for _, a := range m.Attachments {
		if a.Text == "" && a.Title == "" && a.Pretext == "" && a.Fallback == "" {
			s.reject(w, r, http.StatusBadRequest, text, "invalid_attachments", "an attachment without any text")
			return
		}
	}
	s.messages.add(m)
	w.Header().Set("Content-Type", text)
	_, _ = w.Write([]byte("ok"))
}
