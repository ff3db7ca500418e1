package wizard

import (
	"bytes"
	"reflect"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/homelab-dev/homelab/pkg/config"
)

// Answers are what the wizard asks, as typed. Numbers stay text until
// they become a configuration, so that a half-typed port is an answer to
// refuse, not a zero.
type Answers struct {
	Domain     string
	TLSMode    string
	Email      string
	CertFile   string
	KeyFile    string
	Image      string
	Port       string
	HealthPath string
	// Alert is the destination kind (one of config.NotifyKinds), or ""
	// for none; only its fields below are used.
	Alert string

	NtfyURL, NtfyToken              string
	DiscordURL                      string
	SlackURL, SlackChannel          string
	TelegramToken, TelegramChatID   string
	MailTo, MailFrom, MailSmarthost string
	MailUsername, MailPassword      string
	WebhookURL, WebhookToken        string

	// Then is what happens after the review: Continue or SaveOnly.
	Then string
}

// What the review screen offers.
const (
	Continue = "continue"
	SaveOnly = "save"
)

// alertKey is where the one destination the wizard asks for lives.
const alertKey = "alerts.notify[0]"

// answersFrom starts the answers from a configuration: the defaults with
// the flags the user gave (homelab init --domain x starts with x filled in).
func answersFrom(c *config.Config) Answers {
	a := Answers{
		Domain: c.Domain, TLSMode: c.TLS.Mode, Email: c.Email, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
		Image: c.App.Image, Port: strconv.Itoa(c.App.Port), HealthPath: c.App.HealthPath, Then: Continue,
	}
	if a.Domain == config.PlaceholderDomain {
		a.Domain = "" // a real install refuses it: make the user type theirs
	}
	if a.TLSMode == config.TLSNone && c.Email == "" {
		a.TLSMode = config.TLSCertbot // a public site wants HTTPS; the user may pick none
	}
	return a
}

// apply sets the answers on a copy of base: the configuration that loading
// the written file will give.
func (a Answers) apply(base *config.Config) *config.Config {
	c := *base
	c.Domain, c.Email = a.Domain, a.Email
	c.TLS = config.TLS{Mode: a.TLSMode}
	if a.TLSMode == config.TLSFiles {
		c.TLS.CertFile, c.TLS.KeyFile = a.CertFile, a.KeyFile
	}
	c.App.Image, c.App.HealthPath = a.Image, a.HealthPath
	c.App.Port = number(a.Port)
	c.Alerts.Notify = nil
	if n, ok := a.notify(); ok {
		c.Alerts.Notify = []config.Notify{n}
	}
	return &c
}

// number is s as an int, or -1 (never a valid port or id) when it is not one.
func number(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// notify is the chosen destination with its fields.
func (a Answers) notify() (config.Notify, bool) {
	switch a.Alert {
	case "ntfy":
		return config.Notify{Ntfy: &config.NtfyNotify{URL: a.NtfyURL, Token: a.NtfyToken}}, true
	case "discord":
		return config.Notify{Discord: &config.DiscordNotify{WebhookURL: a.DiscordURL}}, true
	case "slack":
		return config.Notify{Slack: &config.SlackNotify{WebhookURL: a.SlackURL, Channel: a.SlackChannel}}, true
	case "telegram":
		id, err := strconv.ParseInt(a.TelegramChatID, 10, 64)
		if err != nil {
			id = 0 // refused by the validator: "the chat's numeric id"
		}
		return config.Notify{Telegram: &config.TelegramNotify{BotToken: a.TelegramToken, ChatID: id}}, true
	case "email":
		return config.Notify{Email: &config.EmailNotify{To: a.MailTo, From: a.MailFrom, Smarthost: a.MailSmarthost,
			Username: a.MailUsername, Password: a.MailPassword}}, true
	case "webhook":
		return config.Notify{Webhook: &config.WebhookNotify{URL: a.WebhookURL, BearerToken: a.WebhookToken}}, true
	}
	return config.Notify{}, false
}

// fileHeader opens the written file: where it came from and how to use it.
const fileHeader = `# homelab.yaml, written by the first-run wizard of homelab init.
# Every key not here takes its default: see them all in the README or with
# homelab render. Edit this file and run homelab init again to apply it.
`

// document is the homelab.yaml the answers make: only the keys the wizard
// asked, in the defaults' order. With redact, secrets are shown as
// config.RedactedSecret (the review screen; the file gets the real ones).
func (a Answers) document(base *config.Config, redact bool) ([]byte, error) {
	c := a.apply(base)
	if redact {
		c = config.WithoutSecrets(c)
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	add(root, "apiVersion", config.APIVersion)
	add(root, "domain", c.Domain)
	if c.Email != "" {
		add(root, "email", c.Email)
	}
	tls := mapping(root, "tls")
	add(tls, "mode", c.TLS.Mode)
	if c.TLS.Mode == config.TLSFiles {
		add(tls, "certFile", c.TLS.CertFile)
		add(tls, "keyFile", c.TLS.KeyFile)
	}
	app := mapping(root, "app")
	add(app, "image", c.App.Image)
	add(app, "port", c.App.Port)
	add(app, "healthPath", c.App.HealthPath)
	if len(c.Alerts.Notify) > 0 {
		var entry yaml.Node
		if err := entry.Encode(nonEmpty(c.Alerts.Notify[0])); err != nil {
			return nil, err
		}
		list := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{&entry}}
		alerts := mapping(root, "alerts")
		alerts.Content = append(alerts.Content, scalar("notify"), list)
	}
	var b bytes.Buffer
	b.WriteString(fileHeader)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// nonEmpty is a destination as a map of its set fields, keyed by its kind
// ({"email": {"to": ..., "from": ...}}): the file says only what was given.
func nonEmpty(n config.Notify) map[string]map[string]any {
	v := reflect.ValueOf(n)
	for i := 0; i < v.NumField(); i++ {
		p := v.Field(i)
		if p.IsNil() {
			continue
		}
		fields := map[string]any{}
		s := p.Elem()
		for j := 0; j < s.NumField(); j++ {
			f := s.Field(j)
			if f.IsZero() {
				continue
			}
			fields[yamlName(s.Type().Field(j))] = f.Interface()
		}
		return map[string]map[string]any{yamlName(v.Type().Field(i)): fields}
	}
	return nil
}

func yamlName(f reflect.StructField) string {
	name, _, _ := bytes.Cut([]byte(f.Tag.Get("yaml")), []byte(","))
	return string(name)
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

func add(m *yaml.Node, key string, value any) {
	var v yaml.Node
	if err := v.Encode(value); err != nil {
		panic(err) // strings and ints always encode
	}
	m.Content = append(m.Content, scalar(key), &v)
}

func mapping(m *yaml.Node, key string) *yaml.Node {
	child := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, scalar(key), child)
	return child
}

// hasSecrets reports whether c holds a token, password or secret URL: its
// file is then readable by its owner only.
func hasSecrets(c *config.Config) bool {
	return config.HasRedactedSecrets(config.WithoutSecrets(c))
}
