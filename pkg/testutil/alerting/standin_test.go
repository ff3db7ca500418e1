package alerting

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// post sends body to url and returns the status and reply.
func post(t *testing.T, url, contentType, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := loopbackClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type reply struct {
	status int
	body   string // a substring of the reply
}

func expectReply(t *testing.T, what string, status int, body string, want reply) {
	t.Helper()
	if status != want.status || !strings.Contains(body, want.body) {
		t.Errorf("%s: got %d %q, want %d with %q", what, status, body, want.status, want.body)
	}
}

// The stand-ins refuse what the real services refuse, with their replies:
// otherwise a test with a badly formatted notification could pass.
func TestStandInsRefuseWhatTheServicesRefuse(t *testing.T) {
	const js = "application/json"

	t.Run("discord", func(t *testing.T) {
		d := StartDiscordWebhook(t, "1234567890", "tok")
		d.TolerateRejections()
		for _, c := range []struct {
			what, url, body string
			want            reply
		}{
			{"empty message", d.URL(), `{"content":""}`, reply{400, `"code": 50006`}},
			{"content over 2000", d.URL(), `{"content":"` + strings.Repeat("x", 2001) + `"}`, reply{400, `"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"`}},
			{"title over 256", d.URL(), `{"embeds":[{"title":"` + strings.Repeat("é", 257) + `"}]}`, reply{400, `embeds.0.title`}},
			{"embeds over 6000", d.URL(), `{"embeds":[{"description":"` + strings.Repeat("x", 4000) + `"},{"description":"` + strings.Repeat("x", 2001) + `"}]}`, reply{400, "6000"}},
			{"not JSON", d.URL(), `content=hi`, reply{400, `"code": 50109`}},
			{"wrong token", strings.TrimSuffix(d.URL(), "tok") + "bad", `{"content":"hi"}`, reply{401, `"code": 50027`}},
		} {
			status, body := post(t, c.url, js, c.body)
			expectReply(t, c.what, status, body, c.want)
		}
		status, body := post(t, d.URL(), js, `{"content":"","embeds":[{"title":"t","description":"d"}]}`)
		expectReply(t, "valid embed", status, body, reply{204, ""})
		if n := len(d.Rejections()); n != 6 {
			t.Errorf("%d rejections recorded, want 6", n)
		}
	})

	t.Run("slack", func(t *testing.T) {
		s := StartSlackWebhook(t, "secret")
		s.TolerateRejections()
		status, body := post(t, s.URL(), js, `{"channel":"#x"}`)
		expectReply(t, "no text", status, body, reply{400, "no_text"})
		status, body = post(t, s.URL(), js, `{"text":`)
		expectReply(t, "bad JSON", status, body, reply{400, "invalid_payload"})
		status, body = post(t, s.URL()+"x", js, `{"text":"hi"}`)
		expectReply(t, "unknown webhook", status, body, reply{403, "invalid_token"})
		status, body = post(t, s.URL(), js, `{"text":"hi"}`)
		expectReply(t, "text", status, body, reply{200, "ok"})
	})

	t.Run("telegram", func(t *testing.T) {
		b := StartTelegramBot(t, "123:abc", 42)
		b.TolerateRejections()
		send := b.APIURL() + "/bot123:abc/sendMessage"
		status, body := post(t, b.APIURL()+"/bot123:wrong/sendMessage", js, `{"chat_id":42,"text":"hi"}`)
		expectReply(t, "wrong token", status, body, reply{401, `{"description":"Unauthorized","error_code":401,"ok":false}`})
		status, body = post(t, send, js, `{"chat_id":43,"text":"hi"}`)
		expectReply(t, "other chat", status, body, reply{400, "Bad Request: chat not found"})
		status, body = post(t, send, js, `{"chat_id":"42","text":""}`)
		expectReply(t, "empty text", status, body, reply{400, "Bad Request: message text is empty"})
		status, body = post(t, send, js, `{"chat_id":42,"text":"<div>x</div>","parse_mode":"HTML"}`)
		expectReply(t, "unsupported tag", status, body, reply{400, `can't parse entities: unsupported start tag \"div\"`})
		status, body = post(t, send, js, `{"chat_id":42,"text":"a < b","parse_mode":"HTML"}`)
		expectReply(t, "bare <", status, body, reply{400, "can't parse entities"})
		status, body = post(t, send, js, `{"chat_id":42,"text":"`+strings.Repeat("x", 4097)+`"}`)
		expectReply(t, "too long", status, body, reply{400, "message is too long"})
		status, body = post(t, send, js, `{"chat_id":42,"text":"x","parse_mode":"BBCode"}`)
		expectReply(t, "parse mode", status, body, reply{400, "unsupported parse_mode"})
		status, body = post(t, send, "application/x-www-form-urlencoded", `chat_id=42&text=%3Cb%3Eup%3C%2Fb%3E+%26amp%3B+running&parse_mode=HTML`)
		expectReply(t, "form", status, body, reply{200, `"text":"up \u0026 running"`})
		if got := b.Messages(); len(got) != 1 || got[0].Text != "<b>up</b> &amp; running" {
			t.Errorf("accepted messages: %+v", got)
		}
	})

	t.Run("ntfy", func(t *testing.T) {
		n := StartNtfyServer(t, "tk_x")
		n.TolerateRejections()
		auth := []string{"Authorization", "Bearer tk_x"}
		status, body := post(t, n.URL()+"/alerts", "", "hi")
		expectReply(t, "no token", status, body, reply{403, `"code":40301`})
		status, body = post(t, n.URL()+"/alerts", "", "hi", "Authorization", "Bearer tk_y")
		expectReply(t, "wrong token", status, body, reply{401, `"code":40101`})
		status, body = post(t, n.URL()+"/alerts?template=yes&m={{.a}}", "", "not json", auth...)
		expectReply(t, "not JSON", status, body, reply{400, `"code":40042`})
		status, body = post(t, n.URL()+"/alerts?tpl=1&m=%7B%7Bdefine+%22x%22%7D%7D%7B%7Bend%7D%7D", js, `{}`, auth...)
		expectReply(t, "define", status, body, reply{400, `"code":40044`})
		status, body = post(t, n.URL()+"/alerts?tpl=1&m=%7B%7BtoJson+.%7D%7D", js, `{}`, auth...)
		expectReply(t, "sprig's toJson is not ntfy's", status, body, reply{400, `"code":40043`})
		status, body = post(t, n.URL()+"/alerts?template=alertmanager", js, `{}`, auth...)
		expectReply(t, "named template", status, body, reply{400, "template file not found"})
		status, body = post(t, n.URL()+"/alerts?p=9", "", "hi", auth...)
		expectReply(t, "priority", status, body, reply{400, `"code":40007`})

		status, body = post(t, n.URL()+`/alerts?template=yes&t=%7B%7B.host%7D%7D:+%7B%7B.error.level+|+upper%7D%7D&m=Error:\n%7B%7B.error.desc%7D%7D&p=%7B%7Bif+eq+.error.level+%22severe%22%7D%7D5%7B%7Bend%7D%7D`,
			js, `{"host":"pc","error":{"level":"severe","desc":"disk full"}}`, auth...)
		expectReply(t, "templated", status, body, reply{200, `"event":"message"`})
		got := n.Wait(1, time.Second)[0]
		if got.Title != "pc: SEVERE" || got.Message != "Error:\ndisk full" || got.Priority != 5 {
			t.Errorf("templated message: title %q message %q priority %d", got.Title, got.Message, got.Priority)
		}
		status, _ = post(t, n.URL()+"/alerts", "", "  plain text  ", "Authorization", "Bearer tk_x", "X-Title", "T", "X-Tags", "a, b")
		if got := n.Wait(2, time.Second)[1]; status != 200 || got.Message != "plain text" || got.Title != "T" || len(got.Tags) != 2 {
			t.Errorf("plain message: %d %+v", status, got)
		}
	})

	t.Run("webhook", func(t *testing.T) {
		w := StartWebhookReceiver(t, RequireBearer("b"))
		w.TolerateRejections()
		auth := []string{"Authorization", "Bearer b"}
		status, body := post(t, w.URL(), js, `{"version":"4"}`)
		expectReply(t, "no bearer", status, body, reply{401, "unauthorized"})
		status, body = post(t, w.URL(), js, `{"version":"3","groupKey":"k","receiver":"r","status":"firing"}`, auth...)
		expectReply(t, "old version", status, body, reply{400, `version "3"`})
		status, body = post(t, w.URL(), "text/plain", `{}`, auth...)
		expectReply(t, "content type", status, body, reply{400, "application/json"})
		status, body = post(t, w.URL(), js, `{"version":"4","groupKey":"k","receiver":"r","status":"firing","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"alerts":[{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f"}]}`, auth...)
		expectReply(t, "no alertname", status, body, reply{400, "no alertname"})
	})
}

// Without TolerateRejections, a rejected request fails the test that
// started the stand-in.
func TestUnexpectedRejectionFailsTheTest(t *testing.T) {
	inner := &recordingTB{TB: t}
	s := StartSlackWebhook(inner, "secret")
	post(t, s.URL(), "application/json", `{}`)
	inner.mu.Lock()
	defer inner.mu.Unlock()
	if len(inner.errors) != 1 || !strings.Contains(inner.errors[0], "no_text") {
		t.Errorf("errors reported to the test: %q", inner.errors)
	}
}

// recordingTB records Errorf instead of failing.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
