package alertmanager

// The subset of Alertmanager's configuration file homelab writes, with the
// field names of its documentation. Alertmanager's own types are not used to
// write it because they print secrets as <secret> on purpose.

type document struct {
	Route        route         `yaml:"route"`
	InhibitRules []inhibitRule `yaml:"inhibit_rules,omitempty"`
	Receivers    []receiver    `yaml:"receivers"`
}

type route struct {
	Receiver       string   `yaml:"receiver"`
	Matchers       []string `yaml:"matchers,omitempty"`
	GroupBy        []string `yaml:"group_by,omitempty"`
	GroupWait      string   `yaml:"group_wait,omitempty"`
	GroupInterval  string   `yaml:"group_interval,omitempty"`
	RepeatInterval string   `yaml:"repeat_interval,omitempty"`
	Continue       bool     `yaml:"continue,omitempty"`
	Routes         []route  `yaml:"routes,omitempty"`
}

type inhibitRule struct {
	SourceMatchers []string `yaml:"source_matchers"`
	TargetMatchers []string `yaml:"target_matchers"`
	Equal          []string `yaml:"equal"`
}

type receiver struct {
	Name            string           `yaml:"name"`
	WebhookConfigs  []webhookConfig  `yaml:"webhook_configs,omitempty"`
	DiscordConfigs  []discordConfig  `yaml:"discord_configs,omitempty"`
	SlackConfigs    []slackConfig    `yaml:"slack_configs,omitempty"`
	TelegramConfigs []telegramConfig `yaml:"telegram_configs,omitempty"`
	EmailConfigs    []emailConfig    `yaml:"email_configs,omitempty"`
}

type httpConfig struct {
	Authorization *authorization `yaml:"authorization,omitempty"`
}

type authorization struct {
	Type        string `yaml:"type"`
	Credentials string `yaml:"credentials"`
}

type webhookConfig struct {
	URL          string      `yaml:"url"`
	SendResolved bool        `yaml:"send_resolved"`
	HTTPConfig   *httpConfig `yaml:"http_config,omitempty"`
}

type discordConfig struct {
	WebhookURL   string `yaml:"webhook_url"`
	SendResolved bool   `yaml:"send_resolved"`
	Title        string `yaml:"title,omitempty"`
	Message      string `yaml:"message,omitempty"`
}

type slackConfig struct {
	APIURL       string `yaml:"api_url"`
	Channel      string `yaml:"channel,omitempty"`
	SendResolved bool   `yaml:"send_resolved"`
	Title        string `yaml:"title,omitempty"`
	Text         string `yaml:"text,omitempty"`
}

type telegramConfig struct {
	BotToken     string `yaml:"bot_token"`
	ChatID       int64  `yaml:"chat_id"`
	APIURL       string `yaml:"api_url,omitempty"`
	SendResolved bool   `yaml:"send_resolved"`
	ParseMode    string `yaml:"parse_mode"`
	Message      string `yaml:"message,omitempty"`
}

type emailConfig struct {
	To           string            `yaml:"to"`
	From         string            `yaml:"from"`
	Smarthost    string            `yaml:"smarthost"`
	AuthUsername string            `yaml:"auth_username,omitempty"`
	AuthPassword string            `yaml:"auth_password,omitempty"`
	RequireTLS   *bool             `yaml:"require_tls,omitempty"`
	SendResolved bool              `yaml:"send_resolved"`
	Headers      map[string]string `yaml:"headers,omitempty"`
	Text         string            `yaml:"text,omitempty"`
}
