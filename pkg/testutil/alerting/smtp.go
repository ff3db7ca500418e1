package alerting

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is one message the SMTP server accepted.
type Mail struct {
	From string
	To   []string
	// User is who logged in (AUTH), and TLS says STARTTLS was on.
	User string
	TLS  bool
	// Header and Body are the parsed message; Data is it raw.
	Header mail.Header
	Body   []byte
	Data   []byte
}

// SMTPServer is a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1: STARTTLS with a certificate from a throwaway CA, AUTH (PLAIN and
// LOGIN by default) only after STARTTLS, one user. It can be told to refuse
// every login with 535 5.7.8, as a mail provider does for a wrong password.
type SMTPServer struct {
	// Addr is host:port (email_configs[].smarthost).
	Addr string
	// CA signed the server's certificate; pass CA.CertFile to the client.
	CA *CA

	t          testing.TB
	user, pass string
	mechs      []string
	mu         sync.Mutex
	rejectAll  bool
	logins     inbox[string]
	failures   inbox[string]
	mails      inbox[Mail]
}

// SMTPOption changes an SMTPServer.
type SMTPOption func(*SMTPServer)

// SMTPWithCA makes the server's certificate come from ca (one CA for every
// stand-in, since Alertmanager trusts one SSL_CERT_FILE).
func SMTPWithCA(ca *CA) SMTPOption {
	return func(s *SMTPServer) { s.CA = ca }
}

// SMTPMechanisms sets the AUTH mechanisms offered, in order ("PLAIN",
// "LOGIN"). Alertmanager uses the first one it knows.
func SMTPMechanisms(mechs ...string) SMTPOption {
	return func(s *SMTPServer) { s.mechs = mechs }
}

// StartSMTPServer starts the server for one user with password pass.
func StartSMTPServer(t testing.TB, user, pass string, opts ...SMTPOption) *SMTPServer {
	t.Helper()
	s := &SMTPServer{t: t, user: user, pass: pass, mechs: []string{sasl.Plain, sasl.Login}}
	for _, o := range opts {
		o(s)
	}
	if s.CA == nil {
		s.CA = NewCA(t)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{server: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = s.CA.ServerConfig(t)
	srv.AllowInsecureAuth = false // AUTH only after STARTTLS, like a real provider
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 50
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("smtp server on %s: %v", s.Addr, err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// RejectLogins makes every login fail with 535 5.7.8 (or succeed again).
func (s *SMTPServer) RejectLogins(reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectAll = reject
}

// Mails lists the accepted messages so far.
func (s *SMTPServer) Mails() []Mail { return s.mails.all() }

// Wait waits until at least n messages were accepted.
func (s *SMTPServer) Wait(n int, timeout time.Duration) []Mail {
	s.t.Helper()
	return s.mails.wait(s.t, "mail(s)", n, timeout)
}

// WaitFailedLogins waits until at least n logins were refused and returns
// why each was.
func (s *SMTPServer) WaitFailedLogins(n int, timeout time.Duration) []string {
	s.t.Helper()
	return s.failures.wait(s.t, "refused SMTP login(s)", n, timeout)
}

func (s *SMTPServer) checkLogin(mech, user, pass string) error {
	s.mu.Lock()
	reject := s.rejectAll
	s.mu.Unlock()
	switch {
	case reject:
		s.failures.add(fmt.Sprintf("%s login of %q refused: the server was told to refuse logins", mech, user))
		return smtp.ErrAuthFailed
	case user != s.user || pass != s.pass:
		s.failures.add(fmt.Sprintf("%s login of %q refused: wrong user or password", mech, user))
		return smtp.ErrAuthFailed
	}
	s.logins.add(user)
	return nil
}

type smtpSession struct {
	server *SMTPServer
	conn   *smtp.Conn
	user   string
	from   string
	to     []string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (ss *smtpSession) AuthMechanisms() []string { return ss.server.mechs }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if !slices.Contains(ss.server.mechs, mech) {
		return nil, smtp.ErrAuthUnsupported
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return smtp.ErrAuthFailed
			}
			if err := ss.server.checkLogin(mech, user, pass); err != nil {
				return err
			}
			ss.user = user
			return nil
		}), nil
	case sasl.Login:
		return &loginServer{check: func(user, pass string) error {
			if err := ss.server.checkLogin(mech, user, pass); err != nil {
				return err
			}
			ss.user = user
			return nil
		}}, nil
	}
	return nil, smtp.ErrAuthUnsupported
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return ss.refuse("message is not RFC 5322: " + err.Error())
	}
	// RFC 5322 section 3.6: Date and From are required.
	for _, h := range []string{"Date", "From"} {
		if msg.Header.Get(h) == "" {
			return ss.refuse("no " + h + " header")
		}
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.server.mails.add(Mail{
		From: ss.from, To: ss.to, User: ss.user, TLS: isTLS,
		Header: msg.Header, Body: body, Data: data,
	})
	return nil
}

// refuse answers 554 and fails the test: the client sent a broken message.
func (ss *smtpSession) refuse(reason string) error {
	ss.server.t.Errorf("SMTP server refused a message: %s", reason)
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: reason}
}

func (ss *smtpSession) Reset() { ss.from, ss.to = "", nil }

func (ss *smtpSession) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (draft-murchison-sasl-login):
// go-sasl has only its client. It asks "Username:" then "Password:".
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) > 0 { // an initial response carries the user name
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(response))
	}
	return nil, false, errors.New("unexpected client response")
}
