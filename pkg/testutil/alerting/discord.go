package alerting

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Discord's documented limits for Execute Webhook and embeds:
// https://discord.com/developers/docs/resources/webhook#execute-webhook
// https://discord.com/developers/docs/resources/message#embed-object-embed-limits
const (
	discordMaxContent     = 2000
	discordMaxEmbeds      = 10
	discordMaxTitle       = 256
	discordMaxDescription = 4096
	discordMaxFields      = 25
	discordMaxFieldName   = 256
	discordMaxFieldValue  = 1024
	discordMaxFooter      = 2048
	discordMaxAuthorName  = 256
	discordMaxEmbedsTotal = 6000
)

// DiscordMessage is the JSON body of an Execute Webhook request (the parts a
// notification uses).
type DiscordMessage struct {
	Content   string         `json:"content"`
	Username  string         `json:"username"`
	AvatarURL string         `json:"avatar_url"`
	Embeds    []DiscordEmbed `json:"embeds"`
}

// DiscordEmbed is one embed object.
type DiscordEmbed struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	URL         string `json:"url"`
	Color       int    `json:"color"`
	Footer      *struct {
		Text string `json:"text"`
	} `json:"footer"`
	Author *struct {
		Name string `json:"name"`
	} `json:"author"`
	Fields []struct {
		Name   string `json:"name"`
		Value  string `json:"value"`
		Inline bool   `json:"inline"`
	} `json:"fields"`
}

// DiscordWebhook stands in for one Discord webhook,
// POST /api/webhooks/{id}/{token}. It answers 204 like Discord does without
// ?wait=true, and Discord's JSON errors otherwise.
type DiscordWebhook struct {
	*standIn
	id, token string
	messages  inbox[DiscordMessage]
}

// StartDiscordWebhook starts a Discord webhook stand-in for webhook id and token.
func StartDiscordWebhook(t testing.TB, id, token string, opts ...ServerOption) *DiscordWebhook {
	t.Helper()
	d := &DiscordWebhook{id: id, token: token}
	d.standIn, _ = newStandIn(t, "discord", d.serve, opts)
	return d
}

// URL is the webhook URL (discord_configs[].webhook_url).
func (d *DiscordWebhook) URL() string {
	return d.server.URL + "/api/webhooks/" + d.id + "/" + d.token
}

// Messages lists the accepted messages so far.
func (d *DiscordWebhook) Messages() []DiscordMessage { return d.messages.all() }

// Wait waits until at least n messages arrived.
func (d *DiscordWebhook) Wait(n int, timeout time.Duration) []DiscordMessage {
	d.t.Helper()
	return d.messages.wait(d.t, "Discord message(s)", n, timeout)
}

func (d *DiscordWebhook) serve(w http.ResponseWriter, r *http.Request) {
	const js = "application/json"
	var id, token string
	if _, err := fmt.Sscanf(r.URL.Path, "/api/webhooks/%s", &id); err != nil {
		d.reject(w, r, http.StatusNotFound, js, `{"message": "404: Not Found", "code": 0}`, "not a webhook path")
		return
	}
	id, token, _ = strings.Cut(id, "/")
	if r.Method != http.MethodPost {
		d.reject(w, r, http.StatusMethodNotAllowed, js, `{"message": "405: Method Not Allowed", "code": 0}`, "Execute Webhook is POST")
		return
	}
	if id != d.id {
		d.reject(w, r, http.StatusNotFound, js, `{"message": "Unknown Webhook", "code": 10015}`, "unknown webhook id")
		return
	}
	if token != d.token {
		d.reject(w, r, http.StatusUnauthorized, js, `{"message": "Invalid Webhook Token", "code": 50027}`, "wrong webhook token")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != js {
		d.reject(w, r, http.StatusBadRequest, js, `{"message": "Cannot send an empty message", "code": 50006}`,
			fmt.Sprintf("Content-Type %q: Discord reads JSON bodies only as application/json", r.Header.Get("Content-Type")))
		return
	}
	body, err := readBody(r)
	if err != nil {
		d.reject(w, r, http.StatusBadRequest, js, `{"message": "The request body contains invalid JSON.", "code": 50109}`, err.Error())
		return
	}
	var m DiscordMessage
	if err := json.Unmarshal(body, &m); err != nil {
		d.reject(w, r, http.StatusBadRequest, js, `{"message": "The request body contains invalid JSON.", "code": 50109}`, err.Error())
		return
	}
	if field, limit := discordTooLong(m); field != "" {
		d.reject(w, r, http.StatusBadRequest, js, fmt.Sprintf(
			`{"message": "Invalid Form Body", "code": 50035, "errors": {%q: {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be %d or fewer in length."}]}}}`,
			field, limit), fmt.Sprintf("%s is over Discord's limit of %d", field, limit))
		return
	}
	if total := discordEmbedChars(m); total > discordMaxEmbedsTotal {
		d.reject(w, r, http.StatusBadRequest, js,
			`{"message": "Invalid Form Body", "code": 50035, "errors": {"embeds": {"_errors": [{"code": "MAX_EMBED_SIZE_EXCEEDED", "message": "Embed size exceeds maximum size of 6000"}]}}}`,
			fmt.Sprintf("embeds hold %d characters, over 6000", total))
		return
	}
	if m.Content == "" && len(m.Embeds) == 0 {
		d.reject(w, r, http.StatusBadRequest, js, `{"message": "Cannot send an empty message", "code": 50006}`, "neither content nor embeds")
		return
	}
	// An embed without any text tells nobody anything; the stand-in refuses
	// it like an empty message.
	for i, e := range m.Embeds {
		if e.Title == "" && e.Description == "" && len(e.Fields) == 0 && e.Footer == nil && e.Author == nil {
			d.reject(w, r, http.StatusBadRequest, js, `{"message": "Cannot send an empty message", "code": 50006}`,
				fmt.Sprintf("embeds[%d] is empty", i))
			return
		}
	}
	d.messages.add(m)
	w.WriteHeader(http.StatusNoContent)
}

// discordTooLong names the first field over its documented limit.
func discordTooLong(m DiscordMessage) (string, int) {
	n := utf8.RuneCountInString
	if n(m.Content) > discordMaxContent {
		return "content", discordMaxContent
	}
	if len(m.Embeds) > discordMaxEmbeds {
		return "embeds", discordMaxEmbeds
	}
	for i, e := range m.Embeds {
		at := func(f string) string { return fmt.Sprintf("embeds.%d.%s", i, f) }
		switch {
		case n(e.Title) > discordMaxTitle:
			return at("title"), discordMaxTitle
		case n(e.Description) > discordMaxDescription:
			return at("description"), discordMaxDescription
		case len(e.Fields) > discordMaxFields:
			return at("fields"), discordMaxFields
		case e.Footer != nil && n(e.Footer.Text) > discordMaxFooter:
			return at("footer.text"), discordMaxFooter
		case e.Author != nil && n(e.Author.Name) > discordMaxAuthorName:
			return at("author.name"), discordMaxAuthorName
		}
		for j, f := range e.Fields {
			if n(f.Name) > discordMaxFieldName {
				return at(fmt.Sprintf("fields.%d.name", j)), discordMaxFieldName
			}
			if n(f.Value) > discordMaxFieldValue {
				return at(fmt.Sprintf("fields.%d.value", j)), discordMaxFieldValue
			}
		}
	}
	return "", 0
}

// discordEmbedChars counts the characters Discord's 6000 limit covers.
func discordEmbedChars(m DiscordMessage) int {
	n := utf8.RuneCountInString
	total := 0
	for _, e := range m.Embeds {
		total += n(e.Title) + n(e.Description)
		for _, f := range e.Fields {
			total += n(f.Name) + n(f.Value)
		}
		if e.Footer != nil {
			total += n(e.Footer.Text)
		}
		if e.Author != nil {
			total += n(e.Author.Name)
		}
	}
	return total
}
