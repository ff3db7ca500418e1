package doctor

import (
	"fmt"
	"net/url"
	"strings"
)

// directive is one nginx directive: `name args...;` or `name args... { block }`.
type directive struct {
	name  string
	args  []string
	block []*directive
	line  int
}

// parseNginx reads nginx configuration syntax (no includes): enough to find
// upstreams, server blocks, locations and their proxy_pass.
func parseNginx(data string) ([]*directive, error) {
	p := &nginxParser{src: data, line: 1}
	ds, err := p.block(false)
	if err != nil {
		return nil, err
	}
	return ds, nil
}

type nginxParser struct {
	src  string
	pos  int
	line int
}

// token returns the next word, or one of "{", "}", ";" ("" at the end).
func (p *nginxParser) token() (tok string, quoted bool, err error) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case c == '{' || c == '}' || c == ';':
			p.pos++
			return string(c), false, nil
		case c == '"' || c == '\'':
			var b strings.Builder
			p.pos++
			for p.pos < len(p.src) && p.src[p.pos] != c {
				if p.src[p.pos] == '\\' && p.pos+1 < len(p.src) {
					p.pos++
				}
				if p.src[p.pos] == '\n' {
					p.line++
				}
				b.WriteByte(p.src[p.pos])
				p.pos++
			}
			if p.pos >= len(p.src) {
				return "", false, fmt.Errorf("line %d: unterminated quote", p.line)
			}
			p.pos++
			return b.String(), true, nil
		default:
			start := p.pos
			for p.pos < len(p.src) && !strings.ContainsRune(" \t\r\n;{}", rune(p.src[p.pos])) {
				p.pos++
			}
			return p.src[start:p.pos], false, nil
		}
	}
	return "", false, nil
}

func (p *nginxParser) block(inner bool) ([]*directive, error) {
	var out []*directive
	var cur *directive
	for {
		tok, quoted, err := p.token()
		if err != nil {
			return nil, err
		}
		switch {
		case tok == "" && !quoted:
			if inner || cur != nil {
				return nil, fmt.Errorf("line %d: unexpected end of file", p.line)
			}
			return out, nil
		case tok == "}" && !quoted:
			if !inner || cur != nil {
				return nil, fmt.Errorf("line %d: unexpected \"}\"", p.line)
			}
			return out, nil
		case tok == ";" && !quoted:
			if cur == nil {
				return nil, fmt.Errorf("line %d: unexpected \";\"", p.line)
			}
			out, cur = append(out, cur), nil
		case tok == "{" && !quoted:
			if cur == nil {
				return nil, fmt.Errorf("line %d: unexpected \"{\"", p.line)
			}
			b, err := p.block(true)
			if err != nil {
				return nil, err
			}
			cur.block = b
			out, cur = append(out, cur), nil
		case cur == nil:
			cur = &directive{name: tok, line: p.line}
		default:
			cur.args = append(cur.args, tok)
		}
	}
}

func (d *directive) arg(i int) string {
	if i < len(d.args) {
		return d.args[i]
	}
	return ""
}

// find returns the directives named name directly in ds.
func find(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// site is the parts of an Nginx site doctor reasons about.
type site struct {
	upstreams map[string][]string // name -> server addresses
	servers   []*directive
}

func parseSite(data []byte) (*site, error) {
	ds, err := parseNginx(string(data))
	if err != nil {
		return nil, err
	}
	s := &site{upstreams: map[string][]string{}}
	for _, u := range find(ds, "upstream") {
		for _, srv := range find(u.block, "server") {
			s.upstreams[u.arg(0)] = append(s.upstreams[u.arg(0)], srv.arg(0))
		}
	}
	// Sites are included inside http {}; accept one written with it too.
	for _, h := range find(ds, "http") {
		ds = append(ds, h.block...)
	}
	s.servers = find(ds, "server")
	return s, nil
}

// location returns the location block for path (exact prefix match, any
// modifier but "="), in the server that serves the domain's pages (the one
// with the most locations: the HTTPS one when TLS redirects HTTP).
func (s *site) location(path string) *directive {
	var best *directive
	bestN := -1
	for _, srv := range s.servers {
		locs := find(srv.block, "location")
		for _, l := range locs {
			p, mod := l.arg(0), ""
			if len(l.args) == 2 {
				mod, p = l.arg(0), l.arg(1)
			}
			if p == path && (mod == "" || mod == "^~") && len(locs) > bestN {
				best, bestN = l, len(locs)
			}
		}
	}
	return best
}

// proxyPass is a location's proxy_pass, split into what it talks to.
type proxyPass struct {
	raw  string
	line int
	// hostport is the URL's host (an upstream name or an address).
	hostport string
	// uri is the URI part after the host ("" when none: the request URI is
	// passed unchanged).
	uri string
}

func (l *directive) proxyPass() (proxyPass, bool) {
	pp := find(l.block, "proxy_pass")
	if len(pp) == 0 {
		return proxyPass{}, false
	}
	raw, line := pp[0].arg(0), pp[0].line
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return proxyPass{raw: raw, line: line}, true
	}
	uri := u.EscapedPath()
	if u.RawQuery != "" {
		uri += "?" + u.RawQuery
	}
	return proxyPass{raw: raw, line: line, hostport: u.Host, uri: uri}, true
}

// backends resolves a proxy_pass host to addresses: an upstream's servers,
// or the host:port itself.
func (s *site) backends(hostport string) []string {
	if servers, ok := s.upstreams[hostport]; ok {
		return servers
	}
	return []string{hostport}
}
