package wizard

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/huh"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/homelab-dev/homelab/pkg/config"
)

// fakeDNS resolves blog.example.com to an address of "this machine",
// other.example.com elsewhere, and nothing else: no test asks the network.
func fakeDNS(t *testing.T) DNS {
	return DNS{
		LookupHost: func(_ context.Context, host string) ([]string, error) {
			switch host {
			case "blog.example.com":
				return []string{"192.0.2.10"}, nil
			case "other.example.com":
				return []string{"203.0.113.7"}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		},
		Addrs: func() ([]net.Addr, error) {
			return []net.Addr{
				&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
				&net.IPNet{IP: net.ParseIP("192.0.2.10"), Mask: net.CIDRMask(24, 32)},
				&net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)},
			}, nil
		},
		Timeout: time.Second,
	}
}

func defaults(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// goldenScreen compares a screen (80x30) with testdata/name.golden, or
// rewrites it with -update (the flag github.com/charmbracelet/x/exp/golden
// defines; teatest imports it).
func goldenScreen(t *testing.T, name, view string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(view), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./pkg/wizard -update writes it)", err)
	}
	if string(want) != view {
		t.Errorf("screen %s differs from %s (go test ./pkg/wizard -update if intended):\n got:\n%s\nwant:\n%s", name, path, view, want)
	}
}

// driver sends messages to a model through Update, runs the commands they
// return and feeds their messages back, as a program would, without a
// terminal. A command that does not answer within 50 ms is a timer (the
// cursor's blink) and is dropped, so that every screen is the same on
// every run.
type driver struct {
	t       *testing.T
	model   tea.Model
	answers *Answers
}

func newDriver(t *testing.T, base *config.Config) *driver {
	a := answersFrom(base)
	w := &form{ctx: context.Background(), answers: &a, base: base, dns: fakeDNS(t)}
	d := &driver{t: t, model: screen{form: w.build()}, answers: &a}
	d.send(nil)
	d.send(tea.WindowSizeMsg{Width: 80, Height: 30})
	return d
}

func (d *driver) send(msg tea.Msg) {
	var queue []tea.Msg
	if msg == nil {
		queue = run(d.model.Init())
	} else {
		queue = []tea.Msg{msg}
	}
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 1000 {
			d.t.Fatal("the model keeps sending itself messages")
		}
		next := queue[0]
		queue = queue[1:]
		var cmd tea.Cmd
		d.model, cmd = d.model.Update(next)
		queue = append(queue, run(cmd)...)
	}
}

func run(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	got := make(chan tea.Msg, 1)
	go func() { got <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-got:
	case <-time.After(50 * time.Millisecond):
		return nil
	}
	switch m := msg.(type) {
	case nil, tea.QuitMsg:
		return nil
	case tea.BatchMsg:
		var all []tea.Msg
		for _, c := range m {
			all = append(all, run(c)...)
		}
		return all
	}
	// tea.Sequence's message is an unexported []tea.Cmd.
	if v := reflect.ValueOf(msg); v.Kind() == reflect.Slice && v.Type().Elem() == reflect.TypeOf(tea.Cmd(nil)) {
		var all []tea.Msg
		for i := 0; i < v.Len(); i++ {
			all = append(all, run(v.Index(i).Interface().(tea.Cmd))...)
		}
		return all
	}
	return []tea.Msg{msg}
}

func (d *driver) typeText(s string) {
	for _, r := range s {
		d.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

func (d *driver) key(k tea.KeyType, times int) {
	for range times {
		d.send(tea.KeyMsg{Type: k})
	}
}

// flatten is text without its layout: the form's border and line breaks.
func flatten(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "┃", " ")), " ")
}

func (d *driver) view() string { return d.model.View() }

func (d *driver) state() huh.FormState { return d.model.(screen).form.State }

// requireScreen wants text on the screen, however the form wrapped it.
func (d *driver) requireScreen(want string) {
	d.t.Helper()
	if !strings.Contains(flatten(d.view()), flatten(want)) {
		d.t.Fatalf("the screen does not show %q:\n%s", want, d.view())
	}
}

// The whole walk: domain, Let's Encrypt with an e-mail, the app, a webhook
// for alerts, the review. The file written loads with config.Parse into
// exactly the configuration the answers describe, and holds the secret, so
// it is mode 0600.
func TestWalkThroughWritesAFileTheLoaderAccepts(t *testing.T) {
	d := newDriver(t, defaults(t))
	d.requireScreen("Domain")
	d.typeText("blog.example.com")
	d.requireScreen("ok: blog.example.com resolves to 192.0.2.10, an address of this machine")
	goldenScreen(t, "domain-resolves-here", d.view())
	d.key(tea.KeyEnter, 1)
	d.requireScreen("Let's Encrypt certificate (certbot)")
	d.key(tea.KeyEnter, 1)
	d.requireScreen("E-mail for Let's Encrypt")
	d.typeText("me@example.com")
	d.key(tea.KeyEnter, 1)
	d.requireScreen("Your app")
	d.key(tea.KeyEnter, 1) // image: the default nextjs-app:latest
	d.send(tea.KeyMsg{Type: tea.KeyBackspace})
	d.send(tea.KeyMsg{Type: tea.KeyBackspace})
	d.send(tea.KeyMsg{Type: tea.KeyBackspace})
	d.send(tea.KeyMsg{Type: tea.KeyBackspace})
	d.typeText("8080")
	d.key(tea.KeyEnter, 1)
	d.typeText("api/health") // after the default "/"
	d.key(tea.KeyEnter, 1)
	d.requireScreen("Send alerts to")
	d.key(tea.KeyDown, 6) // Webhook
	d.key(tea.KeyEnter, 1)
	d.requireScreen("Alerts: webhook")
	d.typeText("https://hooks.example.com/homelab?token=s3cret")
	if strings.Contains(d.view(), "s3cret") {
		t.Fatalf("a secret is echoed:\n%s", d.view())
	}
	d.key(tea.KeyEnter, 2)
	d.requireScreen("Review")
	if strings.Contains(d.view(), "s3cret") {
		t.Fatalf("the review shows a secret:\n%s", d.view())
	}
	goldenScreen(t, "review", screenOf(t, d.view(), "Review"))
	d.key(tea.KeyEnter, 1) // the note is read, not focused: Enter answers "Then"
	if d.state() != huh.StateCompleted {
		t.Fatalf("form state %v after the review, want completed:\n%s", d.state(), d.view())
	}

	path := filepath.Join(t.TempDir(), "homelab.yaml")
	res, err := save(Options{Base: defaults(t), Path: path}, *d.answers)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Continue || !res.Secret || res.Path != path {
		t.Errorf("result %+v, want continue, secret, %s", res, path)
	}
	cfg := loadWritten(t, path)
	want := defaults(t)
	want.Domain, want.Email, want.TLS.Mode = "blog.example.com", "me@example.com", config.TLSCertbot
	want.App.Port, want.App.HealthPath = 8080, "/api/health"
	want.Alerts.Notify = []config.Notify{{Webhook: &config.WebhookNotify{URL: "https://hooks.example.com/homelab?token=s3cret"}}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("loaded configuration differs:\n got %+v\nwant %+v", cfg, want)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v for a file with a secret, want 0600", st.Mode().Perm())
	}
}

// loadWritten loads the file the wizard wrote with the loader every
// command uses.
func loadWritten(t *testing.T, path string) *config.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		t.Fatalf("the written file does not load: %v\n%s", err, data)
	}
	return cfg
}

// screenOf is the view from its line holding marker on: the review is the
// screen's lower part, the same at every size once it fits.
func screenOf(t *testing.T, view, marker string) string {
	t.Helper()
	i := strings.Index(view, marker)
	if i < 0 {
		t.Fatalf("no %q on the screen:\n%s", marker, view)
	}
	return view[strings.LastIndex(view[:i], "\n")+1:]
}

// An answer the configuration would refuse is refused as the user leaves
// the field, with the loader's own message, and the form stays there.
func TestInvalidAnswerIsRefusedWithTheLoadersMessage(t *testing.T) {
	d := newDriver(t, defaults(t))
	d.typeText("https://blog.example.com")
	d.requireScreen("a bare DNS name, without scheme, port or path")
	d.key(tea.KeyEnter, 1)
	d.requireScreen("Domain")
	if strings.Contains(d.view(), "Let's Encrypt certificate") {
		t.Fatalf("went on past an invalid domain:\n%s", d.view())
	}
	goldenScreen(t, "domain-refused", d.view())
}

// Esc goes back one field, and from a group's first field to the group
// before, keeping what was typed.
func TestEscGoesBack(t *testing.T) {
	d := newDriver(t, defaults(t))
	d.typeText("other.example.com")
	d.requireScreen("! other.example.com resolves to 203.0.113.7, not an address of this machine (192.0.2.10)")
	d.key(tea.KeyEnter, 1)
	d.requireScreen("No HTTPS (plain HTTP)")
	d.key(tea.KeyEsc, 1)
	d.requireScreen("Domain")
	if d.answers.Domain != "other.example.com" {
		t.Errorf("domain %q after going back", d.answers.Domain)
	}
	if d.state() != huh.StateNormal {
		t.Errorf("Esc ended the form: %v", d.state())
	}
}

// A non-number port is refused as such.
func TestPortMustBeANumber(t *testing.T) {
	d := newDriver(t, defaults(t))
	d.typeText("blog.example.com")
	d.key(tea.KeyEnter, 3) // domain, certbot, then the e-mail is empty...
	d.requireScreen("required with tls.mode certbot")
	d.typeText("me@example.com")
	d.key(tea.KeyEnter, 2)
	d.send(tea.KeyMsg{Type: tea.KeyCtrlU})
	d.typeText("http")
	d.key(tea.KeyEnter, 1)
	d.requireScreen("a whole number, like 3000")
}

// Ctrl-C in the middle of the real program leaves with ErrCancelled and no
// file.
func TestCtrlCLeavesNothingWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "homelab.yaml")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Run(ctx, Options{In: strings.NewReader("blog.example.com\r\x03"), Out: &out, Base: defaults(t), DNS: fakeDNS(t), Path: path})
	if !errors.Is(err, ErrCancelled) {
		t.Fatalf("Run = %v, want ErrCancelled; screen:\n%s", err, out.String())
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Ctrl-C: %v, want no file", err)
	}
	requireEntries(t, filepath.Dir(path), 0)
}

// requireEntries wants n entries in dir: no temporary file left behind.
func requireEntries(t *testing.T, dir string, n int) {
	t.Helper()
	if entries, _ := os.ReadDir(dir); len(entries) != n {
		t.Errorf("%d entries in %s, want %d: %v", len(entries), dir, n, entries)
	}
}

// The wizard never starts over an existing file, and a file that appears
// while it runs is not replaced.
func TestNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "homelab.yaml")
	if err := os.WriteFile(path, []byte("domain: mine.example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), Options{In: strings.NewReader(""), Out: &bytes.Buffer{}, Base: defaults(t), Path: path})
	if err == nil || !strings.Contains(err.Error(), "never overwrites") {
		t.Errorf("Run over an existing file: %v", err)
	}
	a := answersFrom(defaults(t))
	a.Domain = "blog.example.com"
	a.Email = "me@example.com"
	if _, err := save(Options{Base: defaults(t), Path: path}, a); err == nil || !strings.Contains(err.Error(), "not overwritten") {
		t.Errorf("save over an existing file: %v", err)
	}
	data, _ := os.ReadFile(path)
	if string(data) != "domain: mine.example.com\n" {
		t.Errorf("the file changed: %q", data)
	}
	requireEntries(t, filepath.Dir(path), 1)
}

// Without a secret the file is an ordinary 0644 one.
func TestFileWithoutSecretsIsWorldReadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "homelab.yaml")
	a := answersFrom(defaults(t))
	a.Domain, a.TLSMode = "blog.example.com", config.TLSNone
	res, err := save(Options{Base: defaults(t), Path: path}, a)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if res.Secret || st.Mode().Perm() != 0o644 {
		t.Errorf("secret=%v mode %v, want false and 0644", res.Secret, st.Mode().Perm())
	}
}

// Flags given with init fill in the first answers; the placeholder domain
// does not.
func TestAnswersStartFromFlags(t *testing.T) {
	c := defaults(t)
	if a := answersFrom(c); a.Domain != "" || a.TLSMode != config.TLSCertbot {
		t.Errorf("from the defaults: domain %q, tls %q", a.Domain, a.TLSMode)
	}
	c.Domain, c.TLS.Mode, c.App.Port = "blog.example.com", config.TLSNone, 8080
	c.Email = "me@example.com"
	a := answersFrom(c)
	if a.Domain != "blog.example.com" || a.TLSMode != config.TLSNone || a.Port != "8080" {
		t.Errorf("from flags: %+v", a)
	}
}

// Every destination kind makes a file the loader accepts, with only the
// fields given.
func TestEveryDestinationLoads(t *testing.T) {
	for _, a := range []Answers{
		{Alert: "ntfy", NtfyURL: "https://ntfy.sh/my-blog-alerts"},
		{Alert: "discord", DiscordURL: "https://discord.com/api/webhooks/1/abc"},
		{Alert: "slack", SlackURL: "https://hooks.slack.com/services/T/B/X", SlackChannel: "#alerts"},
		{Alert: "telegram", TelegramToken: "123:abc", TelegramChatID: "-42"},
		{Alert: "email", MailTo: "me@example.com", MailFrom: "homelab@example.com", MailSmarthost: "smtp.example.com:587", MailUsername: "me", MailPassword: "pw"},
		{Alert: "webhook", WebhookURL: "http://127.0.0.1:9/hook", WebhookToken: "t"},
	} {
		a.Domain, a.TLSMode, a.Image, a.Port, a.HealthPath = "blog.example.com", config.TLSNone, "blog:1", "3000", "/"
		doc, err := a.document(defaults(t), false)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse("homelab.yaml", doc)
		if err != nil {
			t.Errorf("%s: %v\n%s", a.Alert, err, doc)
			continue
		}
		if k := cfg.Alerts.Notify[0].Kind(); k != a.Alert {
			t.Errorf("%s loaded as %s", a.Alert, k)
		}
		if strings.Contains(string(doc), `""`) {
			t.Errorf("%s: empty fields written:\n%s", a.Alert, doc)
		}
	}
}

func TestDNSCheck(t *testing.T) {
	dns := fakeDNS(t)
	for domain, want := range map[string]string{
		"blog.example.com":    "ok: blog.example.com resolves to 192.0.2.10, an address of this machine",
		"other.example.com":   "! other.example.com resolves to 203.0.113.7, not an address of this machine (192.0.2.10)",
		"nowhere.example.com": "! nowhere.example.com does not resolve yet (lookup nowhere.example.com: no such host)",
	} {
		if got := dns.Check(context.Background(), domain); !strings.HasPrefix(got, want) {
			t.Errorf("Check(%s) = %q, want it to start with %q", domain, got, want)
		}
	}
	// A resolver that hangs is cut off by the timeout.
	slow := DNS{Timeout: 100 * time.Millisecond, LookupHost: func(ctx context.Context, _ string) ([]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	start := time.Now()
	got := slow.Check(context.Background(), "blog.example.com")
	if !strings.Contains(got, "deadline exceeded") || time.Since(start) > 2*time.Second {
		t.Errorf("slow resolver: %q after %s", got, time.Since(start))
	}
}

// teatest drives the form in a real program at a fixed size to the end.
func TestProgramCompletes(t *testing.T) {
	base := defaults(t)
	a := answersFrom(base)
	a.TLSMode = config.TLSNone
	w := &form{ctx: context.Background(), answers: &a, base: base, dns: fakeDNS(t)}
	tm := teatest.NewTestModel(t, screen{form: w.build()}, teatest.WithInitialTermSize(80, 30))
	tm.Type("blog.example.com")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("resolves to 192.0.2.10")) },
		teatest.WithDuration(5*time.Second))
	// Each key waits for the screen it leads to: a key sent while the form
	// moves between groups would land on the group it leaves.
	for _, step := range []struct {
		key  tea.KeyType
		next string
	}{
		{tea.KeyEnter, "No HTTPS (plain HTTP)"},
		{tea.KeyEnter, "The image deploy-app imports"},
		{tea.KeyEnter, "The port the app listens on"},
		{tea.KeyEnter, "A path that answers 2xx"},
		{tea.KeyEnter, "Send alerts to"},
		{tea.KeyEnter, "Write homelab.yaml only"},
		{tea.KeyDown, "> Write homelab.yaml only"},
	} {
		tm.Send(tea.KeyMsg{Type: step.key})
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(step.next)) },
			teatest.WithDuration(5*time.Second))
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(screen)
	if final.form.State != huh.StateCompleted {
		t.Fatalf("state %v", final.form.State)
	}
	if a.Domain != "blog.example.com" || a.Then != SaveOnly || a.Alert != "" {
		t.Errorf("answers %+v", a)
	}
}
