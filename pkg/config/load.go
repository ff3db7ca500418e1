package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// PlaceholderDomain is the defaults' domain: fine for previews and
// rendering, never for a real install.
const PlaceholderDomain = "homelab.example.com"

// Problem is one thing wrong with a configuration: the key (dotted path), the
// place it came from (file:line or a flag) and what would be valid.
type Problem struct {
	Key    string
	Source string
	Msg    string
}

func (p Problem) String() string {
	if p.Source != "" {
		return fmt.Sprintf("%s: %s (%s)", p.Key, p.Msg, p.Source)
	}
	return fmt.Sprintf("%s: %s", p.Key, p.Msg)
}

// Error lists every problem found in a configuration. Loading and validation
// both collect all of them before returning, so a user fixes a file in one go.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	noun := "problem"
	if len(e.Problems) != 1 {
		noun = "problems"
	}
	lines = append(lines, fmt.Sprintf("invalid configuration (%d %s):", len(e.Problems), noun))
	for _, p := range e.Problems {
		lines = append(lines, "  "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Options says where configuration comes from, in increasing precedence:
// embedded defaults, a file, flags.
type Options struct {
	// Path is the file named by --config; an error if it does not exist.
	Path string
	// FallbackPath is read when Path is empty and the file exists (./homelab.yaml).
	FallbackPath string
	// AppliedPath is the configuration the last init applied on this host
	// (/etc/homelab/homelab.yaml), read through ReadApplied when neither
	// Path nor FallbackPath gives one: later commands then act on what is
	// really on the machine, not on the placeholders of the defaults.
	AppliedPath string
	ReadApplied func(path string) ([]byte, error)
	Overrides   Overrides
}

// Overrides are the values set by command-line flags; nil means not set.
type Overrides struct {
	Domain   *string
	Email    *string
	AppImage *string
	AppPort  *int
	TLSMode  *string
}

// Loaded is a resolved configuration and where it came from.
type Loaded struct {
	Config *Config
	// Source is the file read, or "" when only defaults (and flags) were used.
	Source string
	// Applied is set when Source is the configuration init last applied.
	Applied bool
	// Flags are the configuration flags that overrode keys, like "--domain".
	Flags []string
}

// Describe says which configuration a command used, for its first line.
func (l *Loaded) Describe() string {
	var s string
	switch {
	case l.Applied:
		s = l.Source + " (applied by the last init)"
	case l.Source != "":
		s = l.Source
	default:
		s = "built-in defaults"
	}
	if len(l.Flags) > 0 {
		s += " with " + strings.Join(l.Flags, ", ")
	}
	return s
}

// Load resolves the configuration from defaults, a file and flags, then
// validates it. Every problem is reported at once in an *Error.
func Load(opts Options) (*Loaded, error) {
	source := opts.Path
	if source == "" && opts.FallbackPath != "" {
		if _, err := os.Stat(opts.FallbackPath); err == nil {
			source = opts.FallbackPath
		}
	}
	var data []byte
	applied := false
	switch {
	case source != "":
		var err error
		if data, err = os.ReadFile(source); err != nil {
			return nil, &Error{Problems: []Problem{{Key: "--config", Msg: fmt.Sprintf("cannot read %s: %v", source, errors.Unwrap(err))}}}
		}
	case opts.AppliedPath != "" && opts.ReadApplied != nil:
		d, err := opts.ReadApplied(opts.AppliedPath)
		switch {
		case err == nil:
			data, source, applied = d, opts.AppliedPath, true
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, fs.ErrPermission):
			return nil, &Error{Problems: []Problem{{Key: "--config", Msg: fmt.Sprintf(
				"cannot read the configuration init applied, %s (mode 0600): run as root (sudo), or pass --config FILE", opts.AppliedPath)}}}
		default:
			return nil, &Error{Problems: []Problem{{Key: "--config", Msg: fmt.Sprintf("cannot read the applied configuration %s: %v", opts.AppliedPath, err)}}}
		}
	}
	cfg, err := resolve(source, data, opts.Overrides)
	if err != nil {
		return nil, err
	}
	return &Loaded{Config: cfg, Source: source, Applied: applied, Flags: opts.Overrides.flags()}, nil
}

// flags names the configuration flags that are set, in a fixed order.
func (o Overrides) flags() []string {
	var set []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"--domain", o.Domain != nil}, {"--email", o.Email != nil}, {"--app-image", o.AppImage != nil},
		{"--app-port", o.AppPort != nil}, {"--tls-mode", o.TLSMode != nil}} {
		if f.on {
			set = append(set, f.name)
		}
	}
	return set
}

// Parse decodes and validates one configuration document on top of the
// defaults, without flags: what Load does for a file.
func Parse(name string, data []byte) (*Config, error) {
	return resolve(name, data, Overrides{})
}

// Defaults returns the embedded default configuration.
func Defaults() (*Config, error) {
	cfg := &Config{}
	d := decoder{file: "defaults.yaml", sources: map[string]string{}}
	d.decodeDocument(defaultsYAML, cfg)
	if len(d.problems) > 0 {
		return nil, fmt.Errorf("embedded defaults are broken: %w", &Error{Problems: d.problems})
	}
	return cfg, nil
}

func resolve(name string, data []byte, overrides Overrides) (*Config, error) {
	cfg, err := Defaults()
	if err != nil {
		return nil, err
	}
	d := decoder{file: name, sources: map[string]string{}}
	if data != nil {
		d.decodeDocument(data, cfg)
	}
	overrides.apply(cfg, d.sources)
	problems := append(d.problems, Validate(cfg)...)
	for i := range problems {
		if problems[i].Source == "" {
			problems[i].Source = d.sources[problems[i].Key]
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return cfg, nil
}

func (o Overrides) apply(cfg *Config, sources map[string]string) {
	set := func(key, flag string) { sources[key] = "from --" + flag }
	if o.Domain != nil {
		cfg.Domain = *o.Domain
		set("domain", "domain")
	}
	if o.Email != nil {
		cfg.Email = *o.Email
		set("email", "email")
	}
	if o.AppImage != nil {
		cfg.App.Image = *o.AppImage
		set("app.image", "app-image")
	}
	if o.AppPort != nil {
		cfg.App.Port = *o.AppPort
		set("app.port", "app-port")
	}
	if o.TLSMode != nil {
		cfg.TLS.Mode = *o.TLSMode
		set("tls.mode", "tls-mode")
	}
}

// decoder overlays a YAML document onto a Config, key by key, so that an
// unknown key or a wrongly typed value is reported with its full dotted path
// and line, and so that every such problem is found in one pass (yaml.v3's
// KnownFields stops at type names, not key paths).
type decoder struct {
	file     string
	problems []Problem
	// sources maps a dotted key to where its value came from (file:line).
	sources map[string]string
}

func (d *decoder) add(key string, n *yaml.Node, format string, args ...any) {
	p := Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Source = fmt.Sprintf("%s:%d", d.file, n.Line)
	}
	d.problems = append(d.problems, p)
}

func (d *decoder) decodeDocument(data []byte, cfg *Config) {
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return // an empty file means all defaults
		}
		d.problems = append(d.problems, Problem{Key: "(file)", Source: d.file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")})
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.add("(file)", &extra, "holds more than one YAML document; put the whole configuration in one")
		return
	}
	if len(doc.Content) == 0 {
		return
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return
	}
	d.decodeStruct("", root, reflect.ValueOf(cfg).Elem())
}

func (d *decoder) decodeStruct(prefix string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.add(keyOrRoot(prefix), n, "must be a mapping of keys (valid keys: %s)", strings.Join(yamlKeys(v.Type()), ", "))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		key := join(prefix, kn.Value)
		if seen[kn.Value] {
			d.add(key, kn, "is set twice; keep one")
			continue
		}
		seen[kn.Value] = true
		field, secret, ok := fieldByTag(v, kn.Value)
		if !ok {
			d.add(key, kn, "unknown key (valid keys%s: %s)", under(prefix), strings.Join(yamlKeys(v.Type()), ", "))
			continue
		}
		d.sources[key] = fmt.Sprintf("%s:%d", d.file, vn.Line)
		if vn.Kind == yaml.ScalarNode && vn.Tag == "!!null" {
			continue // "key:" with no value keeps the default
		}
		d.decodeField(key, vn, field, secret)
	}
}

// decodeField decodes one value into a field of any kind a Config holds:
// nested mappings, optional mappings (pointers), lists of mappings and plain
// values.
func (d *decoder) decodeField(key string, n *yaml.Node, field reflect.Value, secret bool) {
	switch {
	case field.Kind() == reflect.Struct:
		d.decodeStruct(key, n, field)
	case field.Kind() == reflect.Pointer:
		// Set even when a key inside is wrong, so validation does not also
		// call the mapping missing.
		fresh := reflect.New(field.Type().Elem())
		d.decodeField(key, n, fresh.Elem(), secret)
		field.Set(fresh)
	case field.Kind() == reflect.Slice && field.Type().Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			d.add(key, n, "must be a list, got %s", describe(n, secret))
			return
		}
		// The file's list replaces the default list, as for lists of strings.
		list := reflect.MakeSlice(field.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			itemKey := fmt.Sprintf("%s[%d]", key, i)
			d.sources[itemKey] = fmt.Sprintf("%s:%d", d.file, item.Line)
			d.decodeStruct(itemKey, item, list.Index(i))
		}
		field.Set(list)
	default:
		d.decodeValue(key, n, field, secret)
	}
}

func (d *decoder) decodeValue(key string, n *yaml.Node, field reflect.Value, secret bool) {
	want := ""
	switch field.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			want = "a string"
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			want = "a whole number"
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			want = "true or false"
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			want = "a list of strings, like [pnpm, start]"
		}
	}
	if want != "" {
		d.add(key, n, "must be %s, got %s", want, describe(n, secret))
		return
	}
	fresh := reflect.New(field.Type())
	if err := n.Decode(fresh.Interface()); err != nil {
		d.add(key, n, "cannot be read as %s: %s", field.Type(), describe(n, secret))
		return
	}
	field.Set(fresh.Elem())
}

// describe names what a node holds for an error message; a secret's value
// is never shown.
func describe(n *yaml.Node, secret bool) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case secret:
		return "a value (hidden: it is a secret)"
	}
	return fmt.Sprintf("%q", n.Value)
}

// fieldByTag finds the field for a YAML key, and whether it holds a secret.
func fieldByTag(v reflect.Value, name string) (reflect.Value, bool, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tagName(t.Field(i)) == name {
			return v.Field(i), t.Field(i).Tag.Get("secret") == "true", true
		}
	}
	return reflect.Value{}, false, false
}

func yamlKeys(t reflect.Type) []string {
	keys := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		keys = append(keys, tagName(t.Field(i)))
	}
	sort.Strings(keys)
	return keys
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func keyOrRoot(prefix string) string {
	if prefix == "" {
		return "(file)"
	}
	return prefix
}

func under(prefix string) string {
	if prefix == "" {
		return ""
	}
	return " under " + prefix
}
