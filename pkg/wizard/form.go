package wizard

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"

	"github.com/homelab-dev/homelab/pkg/config"
)

// form is the wizard's questions over one set of answers.
type form struct {
	ctx     context.Context
	answers *Answers
	base    *config.Config
	dns     DNS
}

// build makes the huh form: one group per screen, the groups that do not
// apply to earlier answers hidden, the review last.
func (w *form) build() *huh.Form {
	a := w.answers
	groups := []*huh.Group{
		huh.NewGroup(
			w.input("Domain", "domain", &a.Domain, "").
				Placeholder("blog.example.com").
				DescriptionFunc(w.domainNote, &a.Domain),
		).Title("Your server").Description("The public DNS name Nginx serves the app and Grafana (/grafana/) on."),
		huh.NewGroup(
			huh.NewSelect[string]().Title("HTTPS").Value(&a.TLSMode).Options(
				huh.NewOption("Let's Encrypt certificate (certbot)", config.TLSCertbot),
				huh.NewOption("No HTTPS (plain HTTP)", config.TLSNone),
				huh.NewOption("My own certificate files", config.TLSFiles),
			),
		).Title("HTTPS"),
		huh.NewGroup(
			w.input("E-mail for Let's Encrypt", "email", &a.Email, "Let's Encrypt sends certificate expiry notices here.").
				Placeholder("you@example.com"),
		).Title("HTTPS").WithHideFunc(func() bool { return a.TLSMode != config.TLSCertbot }),
		huh.NewGroup(
			w.input("Certificate chain", "tls.certFile", &a.CertFile, "An absolute path, like /etc/ssl/homelab/fullchain.pem."),
			w.input("Private key", "tls.keyFile", &a.KeyFile, "An absolute path, like /etc/ssl/homelab/privkey.pem."),
		).Title("HTTPS").WithHideFunc(func() bool { return a.TLSMode != config.TLSFiles }),
		huh.NewGroup(
			w.input("Image", "app.image", &a.Image, "The image deploy-app imports, like nextjs-app:latest."),
			w.number("Port", "app.port", "3000", &a.Port, "The port the app listens on inside its container."),
			w.input("Health path", "app.healthPath", &a.HealthPath, "A path that answers 2xx when the app is healthy, like / or /api/health."),
		).Title("Your app"),
		huh.NewGroup(
			huh.NewSelect[string]().Title("Send alerts to").Value(&a.Alert).Options(
				huh.NewOption("Nowhere for now (Grafana and Alertmanager only)", ""),
				huh.NewOption("ntfy topic", "ntfy"),
				huh.NewOption("Discord channel webhook", "discord"),
				huh.NewOption("Slack incoming webhook", "slack"),
				huh.NewOption("Telegram bot", "telegram"),
				huh.NewOption("E-mail (SMTP)", "email"),
				huh.NewOption("Webhook (Alertmanager's JSON)", "webhook"),
			),
		).Title("Alerts").Description("Who is told when the app is down, crashing or slow."),
		w.alertGroup("ntfy",
			w.input("Topic URL", alertKey, &a.NtfyURL, "Like https://ntfy.sh/my-blog-alerts; anyone who knows it can read it.").EchoMode(huh.EchoModePassword),
			w.input("Access token", alertKey, &a.NtfyToken, "For a protected topic; empty otherwise.").EchoMode(huh.EchoModePassword)),
		w.alertGroup("discord",
			w.input("Webhook URL", alertKey, &a.DiscordURL, "Channel settings, Integrations, Webhooks.").EchoMode(huh.EchoModePassword)),
		w.alertGroup("slack",
			w.input("Webhook URL", alertKey, &a.SlackURL, "Like https://hooks.slack.com/services/T/B/X.").EchoMode(huh.EchoModePassword),
			w.input("Channel", alertKey, &a.SlackChannel, "Empty for the webhook's own channel, or like #alerts.")),
		w.alertGroup("telegram",
			w.input("Bot token", alertKey, &a.TelegramToken, "The token @BotFather gave.").EchoMode(huh.EchoModePassword),
			w.number("Chat id", alertKey, "42", &a.TelegramChatID, "The chat's numeric id (negative for groups).")),
		w.alertGroup("email",
			w.input("To", alertKey, &a.MailTo, "Like me@example.com; several separated by commas."),
			w.input("From", alertKey, &a.MailFrom, "Like homelab@example.com."),
			w.input("SMTP server", alertKey, &a.MailSmarthost, "host:port, like smtp.example.com:587."),
			w.input("Username", alertKey, &a.MailUsername, "Empty when the server needs no login."),
			w.input("Password", alertKey, &a.MailPassword, "").EchoMode(huh.EchoModePassword)),
		w.alertGroup("webhook",
			w.input("URL", alertKey, &a.WebhookURL, "An http(s) URL that accepts Alertmanager's JSON.").EchoMode(huh.EchoModePassword),
			w.input("Bearer token", alertKey, &a.WebhookToken, "Empty when the URL needs none.").EchoMode(huh.EchoModePassword)),
		huh.NewGroup(
			huh.NewNote().Title("homelab.yaml").DescriptionFunc(w.review, a),
			huh.NewSelect[string]().Title("Then").Value(&a.Then).Options(
				huh.NewOption("Write homelab.yaml and run init with it", Continue),
				huh.NewOption("Write homelab.yaml only", SaveOnly),
			),
		).Title("Review").Description("Esc goes back to change an answer; Ctrl-C leaves without writing anything."),
	}
	return huh.NewForm(groups...).WithKeyMap(keyMap()).WithShowErrors(true)
}

// input is a text field whose answer is checked, as the user leaves it,
// with the configuration's own validator for key.
func (w *form) input(title, key string, value *string, description string) *huh.Input {
	return huh.NewInput().Title(title).Description(description).Value(value).Validate(func(s string) error {
		*value = s
		return config.CheckField(w.answers.apply(w.base), key)
	})
}

// number is an input for a whole number: text that is not one is refused
// as such, before the validator would quote the -1 or 0 it stands for.
func (w *form) number(title, key, example string, value *string, description string) *huh.Input {
	return huh.NewInput().Title(title).Description(description).Value(value).Validate(func(s string) error {
		*value = s
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			return errors.New("a whole number, like " + example)
		}
		return config.CheckField(w.answers.apply(w.base), key)
	})
}

// alertGroup asks the fields of one destination kind, shown only when it
// was chosen.
func (w *form) alertGroup(kind string, fields ...huh.Field) *huh.Group {
	return huh.NewGroup(fields...).Title("Alerts: " + kind).
		WithHideFunc(func() bool { return w.answers.Alert != kind })
}

// domainNote checks the domain as it is typed: the validator's verdict,
// then (a warning only) where DNS points it.
func (w *form) domainNote() string {
	d := w.answers.Domain
	if d == "" {
		return "The public DNS name of this server."
	}
	if err := config.CheckField(w.answers.apply(w.base), "domain"); err != nil {
		return err.Error()
	}
	return w.dns.Check(w.ctx, d)
}

// review is the file the answers make, secrets hidden.
func (w *form) review() string {
	doc, err := w.answers.document(w.base, true)
	if err != nil {
		return err.Error()
	}
	// Without the final newline, which the note would show as an empty,
	// styled line.
	return strings.TrimRight(string(doc), "\n")
}

// keyMap is huh's, with Esc going back as well as Shift-Tab.
func keyMap() *huh.KeyMap {
	km := huh.NewDefaultKeyMap()
	back := key.NewBinding(key.WithKeys("shift+tab", "esc"), key.WithHelp("esc", "back"))
	km.Input.Prev = back
	km.Select.Prev = back
	km.Note.Prev = back
	km.Confirm.Prev = back
	km.Text.Prev = back
	return km
}

// screen runs the form full-screen: every group as tall as the terminal (a
// long review is not cut to the height of the first screen), quitting when
// the form is done or abandoned.
type screen struct{ form *huh.Form }

func (s screen) Init() tea.Cmd { return s.form.Init() }

func (s screen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if size, ok := msg.(tea.WindowSizeMsg); ok {
		s.form = s.form.WithHeight(size.Height - 1)
	}
	m, cmd := s.form.Update(msg)
	s.form = m.(*huh.Form)
	if s.form.State != huh.StateNormal {
		return s, tea.Quit
	}
	return s, cmd
}

func (s screen) View() string {
	if s.form.State != huh.StateNormal {
		return ""
	}
	return s.form.View()
}
