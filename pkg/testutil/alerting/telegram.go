package alerting

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// TelegramMessage is one accepted sendMessage call.
type TelegramMessage struct {
	ChatID                int64
	Text                  string
	ParseMode             string
	DisableNotification   bool
	DisableWebPagePreview bool
	MessageThreadID       int64
}

// TelegramBot stands in for the Telegram Bot API (https://core.telegram.org/bots/api)
// for one bot and one chat: POST /bot<token>/sendMessage with chat_id, text and
// parse_mode, as JSON, form or query parameters ("Making requests"). It
// answers {"ok":true,"result":Message} or the API's error objects, for
// example 401 {"ok":false,"error_code":401,"description":"Unauthorized"} for a
// wrong token.
type TelegramBot struct {
	*standIn
	token    string
	chatID   int64
	nextID   atomic.Int64
	messages inbox[TelegramMessage]
}

// StartTelegramBot starts a Bot API stand-in that knows one bot (token) and
// one chat (chatID).
func StartTelegramBot(t testing.TB, token string, chatID int64, opts ...ServerOption) *TelegramBot {
	t.Helper()
	b := &TelegramBot{token: token, chatID: chatID}
	b.standIn, _ = newStandIn(t, "telegram", b.serve, opts)
	return b
}

// APIURL is the Bot API base URL (telegram_configs[].api_url).
func (b *TelegramBot) APIURL() string { return b.server.URL }

// Messages lists the accepted messages so far.
func (b *TelegramBot) Messages() []TelegramMessage { return b.messages.all() }

// Wait waits until at least n messages arrived.
func (b *TelegramBot) Wait(n int, timeout time.Duration) []TelegramMessage {
	b.t.Helper()
	return b.messages.wait(b.t, "Telegram message(s)", n, timeout)
}

func (b *TelegramBot) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, description, reason string) {
		body, _ := json.Marshal(map[string]any{"ok": false, "error_code": code, "description": description})
		b.reject(w, r, code, "application/json", string(body), reason)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, _ := strings.Cut(rest, "/")
	if !ok || token != b.token {
		fail(http.StatusUnauthorized, "Unauthorized", "unknown bot token")
		return
	}
	if !strings.EqualFold(method, "sendMessage") {
		fail(http.StatusNotFound, "Not Found", "method "+method+" is not sendMessage")
		return
	}
	params, err := telegramParams(r)
	if err != nil {
		fail(http.StatusBadRequest, "Bad Request: "+err.Error(), err.Error())
		return
	}
	m := TelegramMessage{Text: params["text"], ParseMode: params["parse_mode"]}
	m.DisableNotification, _ = strconv.ParseBool(orFalse(params["disable_notification"]))
	m.DisableWebPagePreview, _ = strconv.ParseBool(orFalse(params["disable_web_page_preview"]))
	m.MessageThreadID, _ = strconv.ParseInt(params["message_thread_id"], 10, 64)
	chat := params["chat_id"]
	if chat == "" {
		fail(http.StatusBadRequest, "Bad Request: chat_id is empty", "no chat_id")
		return
	}
	if m.ChatID, err = strconv.ParseInt(chat, 10, 64); err != nil || m.ChatID != b.chatID {
		fail(http.StatusBadRequest, "Bad Request: chat not found", "chat_id "+chat+" is not the bot's chat")
		return
	}
	if strings.TrimSpace(m.Text) == "" {
		fail(http.StatusBadRequest, "Bad Request: message text is empty", "no text")
		return
	}
	visible := m.Text
	switch m.ParseMode {
	case "":
	case "HTML":
		if visible, err = telegramHTMLText(m.Text); err != nil {
			fail(http.StatusBadRequest, "Bad Request: can't parse entities: "+err.Error(), "text is not Telegram's HTML: "+err.Error())
			return
		}
	case "Markdown", "MarkdownV2":
		// Accepted as is: checking Markdown entities is not needed by homelab.
	default:
		fail(http.StatusBadRequest, "Bad Request: unsupported parse_mode", "parse_mode "+m.ParseMode)
		return
	}
	if utf8.RuneCountInString(visible) > 4096 {
		fail(http.StatusBadRequest, "Bad Request: message is too long", "text over 4096 characters after entities parsing")
		return
	}
	b.messages.add(m)
	result := map[string]any{
		"message_id": b.nextID.Add(1),
		"from":       map[string]any{"id": 1, "is_bot": true, "first_name": "homelab test bot", "username": "homelab_test_bot"},
		"chat":       map[string]any{"id": m.ChatID, "type": "private", "first_name": "homelab"},
		"date":       time.Now().Unix(),
		"text":       visible,
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func orFalse(s string) string {
	if s == "" {
		return "false"
	}
	return s
}

// telegramParams reads the parameters the way the Bot API does: URL query,
// then an application/json or application/x-www-form-urlencoded body.
// Values become strings ("42" and 42 are the same chat_id).
func telegramParams(r *http.Request) (map[string]string, error) {
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	if r.Method == http.MethodGet {
		return params, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	switch mt {
	case "application/json":
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, fmt.Errorf("can't parse JSON object")
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				params[k] = v
			case nil:
			default:
				raw, _ := json.Marshal(v)
				params[k] = string(raw)
			}
		}
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("can't parse form")
		}
		for k, v := range form {
			params[k] = v[0]
		}
	case "":
	default:
		return nil, fmt.Errorf("unsupported Content-Type %s", mt)
	}
	return params, nil
}

// telegramHTMLTags are the tags of the HTML style in "Formatting options".
var telegramHTMLTags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true,
	"s": true, "strike": true, "del": true, "span": true, "tg-spoiler": true,
	"a": true, "tg-emoji": true, "code": true, "pre": true, "blockquote": true,
}

// telegramHTMLText checks text against Telegram's HTML style and returns the
// visible text: only the documented tags, properly nested; "<", ">" and "&"
// as text must be written &lt; &gt; &amp;; named entities other than &lt;
// &gt; &amp; &quot; are refused; numeric ones are fine.
func telegramHTMLText(s string) (string, error) {
	var visible strings.Builder
	var open []string
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return "", fmt.Errorf("unclosed start tag at byte offset %d", i)
			}
			tag := s[i+1 : i+end]
			closing := strings.HasPrefix(tag, "/")
			name := strings.ToLower(strings.Fields(strings.TrimPrefix(tag, "/") + " ")[0])
			if !telegramHTMLTags[name] {
				return "", fmt.Errorf("unsupported start tag %q at byte offset %d", name, i)
			}
			if closing {
				if len(open) == 0 || open[len(open)-1] != name {
					return "", fmt.Errorf("can't find end tag corresponding to start tag at byte offset %d", i)
				}
				open = open[:len(open)-1]
			} else {
				open = append(open, name)
			}
			i += end + 1
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 {
				return "", fmt.Errorf("can't find end of the entity starting at byte offset %d", i)
			}
			entity := s[i+1 : i+end]
			switch {
			case entity == "lt":
				visible.WriteByte('<')
			case entity == "gt":
				visible.WriteByte('>')
			case entity == "amp":
				visible.WriteByte('&')
			case entity == "quot":
				visible.WriteByte('"')
			case strings.HasPrefix(entity, "#"):
				visible.WriteByte('?')
			default:
				return "", fmt.Errorf("unsupported HTML entity &%s; at byte offset %d", entity, i)
			}
			i += end + 1
		case '>':
			return "", fmt.Errorf("unexpected end tag at byte offset %d", i)
		default:
			visible.WriteByte(s[i])
			i++
		}
	}
	if len(open) > 0 {
		return "", fmt.Errorf("can't find end tag corresponding to start tag %q", open[len(open)-1])
	}
	return visible.String(), nil
}
