package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

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

// Overrides are the values set on the command line, in the order given;
// later ones win.
type Overrides []Setting

// Setting is one configuration key set on the command line.
type Setting struct {
	// Key is the dotted key, like app.port.
	Key string
	// Value is YAML, as it would follow "key: " in homelab.yaml.
	Value string
	// Flag is how it was set: "--domain", or "--set" for --set KEY=VALUE.
	Flag string
}

// Flag is a command-line flag of its own for one configuration key.
type Flag struct {
	Name, Key, Help string
	// Number: the value is read as YAML (a number), not taken literally.
	Number bool
}

// Flags are the keys with a flag of their own; every other key is set with
// --set KEY=VALUE. Both go through the same decoder as homelab.yaml.
var Flags = []Flag{
	{Name: "domain", Key: "domain", Help: "public DNS name of the server"},
	{Name: "email", Key: "email", Help: "contact e-mail for Let's Encrypt"},
	{Name: "image", Key: "app.image", Help: "the app's image, like nextjs-app:latest (deploy-app takes it from the local Docker daemon)"},
	{Name: "app-port", Key: "app.port", Help: "port the app listens on in its container", Number: true},
	{Name: "tls-mode", Key: "tls.mode", Help: "none, certbot or files"},
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
		// Lstat: a dangling ./homelab.yaml symlink is a mistake to report,
		// not a reason to fall back to the defaults.
		if _, err := os.Lstat(opts.FallbackPath); err == nil || !errors.Is(err, fs.ErrNotExist) {
			source = opts.FallbackPath
		}
	}
	var data []byte
	applied := false
	switch {
	case source != "":
		var err error
		if data, err = readFile(source); err != nil {
			return nil, &Error{Problems: []Problem{{Key: "--config", Msg: err.Error()}}}
		}
	case opts.AppliedPath != "" && opts.ReadApplied != nil:
		d, err := opts.ReadApplied(opts.AppliedPath)
		switch {
		case err == nil && len(d) > MaxFileSize:
			return nil, &Error{Problems: []Problem{{Key: "--config", Msg: fmt.Sprintf("the applied configuration %s is %d bytes, more than the %d a configuration may have", opts.AppliedPath, len(d), MaxFileSize)}}}
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

// MaxFileSize caps a configuration file: a real one is a few KiB, and
// reading (and parsing) a huge file would take seconds and gigabytes only to
// refuse it.
const MaxFileSize = 1 << 20

// readFile reads a configuration file that is a regular file of at most
// MaxFileSize bytes. It opens without blocking, so a FIFO is refused instead
// of waiting forever for a writer, and checks the opened file, not the name.
func readFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if target, lerr := os.Readlink(name); lerr == nil && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cannot read %s: it is a symbolic link to %s, which does not exist", name, target)
		}
		return nil, fmt.Errorf("cannot read %s: %v", name, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", name, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read %s: it is %s, not a regular file", name, fileKind(st.Mode()))
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Errorf("cannot read %s: it is %d bytes, more than the %d a configuration may have", name, st.Size(), MaxFileSize)
	}
	// The size can change after Stat: read at most one byte more than allowed.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("cannot read %s: it is more than the %d bytes a configuration may have", name, MaxFileSize)
	}
	return data, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file (" + m.Type().String() + ")"
}

// flags names the configuration flags that are set, in a fixed order.
func (o Overrides) flags() []string {
	var set []string
	for _, st := range o {
		name := st.Flag
		if st.Flag == "--set" {
			name = "--set " + st.Key
		}
		if !slices.Contains(set, name) {
			set = append(set, name)
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
	overrides.apply(cfg, &d)
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

// apply decodes each setting as a one-key document with d's rules, so a
// flag is checked and typed exactly as the same key in homelab.yaml, and
// its source is the flag.
func (o Overrides) apply(cfg *Config, d *decoder) {
	for _, st := range o {
		doc, err := settingDocument(st)
		if err != nil {
			d.problems = append(d.problems, Problem{Key: st.Key, Source: "from " + st.Flag, Msg: err.Error()})
			continue
		}
		from := decoder{file: d.file, origin: "from " + st.Flag, sources: d.sources}
		from.decodeStruct("", doc, reflect.ValueOf(cfg).Elem())
		d.problems = append(d.problems, from.problems...)
	}
}

// settingDocument is the mapping {a: {b: VALUE}} for key a.b.
func settingDocument(st Setting) (*yaml.Node, error) {
	var value yaml.Node
	if err := yaml.Unmarshal([]byte(st.Value), &value); err != nil {
		return nil, fmt.Errorf("the value is not valid YAML: %s", yamlSyntaxError(err))
	}
	// An empty value is an empty string (KEY= clears a key), not YAML's
	// "no value", which would keep the default without a word.
	node := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
	if len(value.Content) > 0 {
		node = value.Content[0]
	}
	parts := strings.Split(st.Key, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		if parts[i] == "" || strings.ContainsAny(parts[i], "[]") {
			return nil, fmt.Errorf("is not a key for --set: write dotted mapping keys like app.port (a list such as alerts.notify is set in homelab.yaml)")
		}
		node = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: parts[i]}, node}}
	}
	return node, nil
}

// decoder overlays a YAML document onto a Config, key by key, so that an
// unknown key or a wrongly typed value is reported with its full dotted path
// and line, and so that every such problem is found in one pass (yaml.v3's
// KnownFields stops at type names, not key paths).
type decoder struct {
	file string
	// origin, when set, is where every value comes from ("from --domain"),
	// instead of the file and line.
	origin   string
	problems []Problem
	// sources maps a dotted key to where its value came from (file:line).
	sources map[string]string
}

func (d *decoder) add(key string, n *yaml.Node, format string, args ...any) {
	p := Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Source = d.where(n)
	}
	d.problems = append(d.problems, p)
}

// where is where n's value comes from: file:line, or the flag.
func (d *decoder) where(n *yaml.Node) string {
	if d.origin != "" {
		return d.origin
	}
	return fmt.Sprintf("%s:%d", d.file, n.Line)
}

func (d *decoder) decodeDocument(data []byte, cfg *Config) {
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		if err.Error() == "EOF" {
			return // an empty file means all defaults
		}
		d.problems = append(d.problems, Problem{Key: "(file)", Source: d.file, Msg: "not valid YAML: " + yamlSyntaxError(err)})
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

// yamlParserProblems are the messages of yaml.v3's parser (not its
// scanner). For these, yaml.v3 prints a 0-based line (where the enclosing
// list or mapping starts, else where the problem is) as if it were 1-based
// (decode.go, parser.fail adds 1 only for scanner errors), and no line at
// all for the first line: one less than the line an editor shows.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected '-' indicator", "did not find expected <document start>",
	"did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive",
	"found duplicate %YAML directive", "found incompatible YAML document",
	"found undefined tag handle",
}

var yamlLinePrefix = regexp.MustCompile(`^line ([0-9]+): `)

// yamlSyntaxError says what yaml.v3 found wrong, with the line an editor
// shows.
func yamlSyntaxError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	problem := yamlLinePrefix.ReplaceAllString(msg, "")
	if !slices.Contains(yamlParserProblems, problem) {
		return msg
	}
	line := 0
	if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return fmt.Sprintf("line %d: %s", line+1, problem)
}

func (d *decoder) decodeStruct(prefix string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.add(keyOrRoot(prefix), n, "must be a mapping of keys (valid keys: %s)", strings.Join(yamlKeys(v.Type()), ", "))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		// A key is echoed in messages: cut a huge one like a huge value.
		key := join(prefix, kn.Value)
		if len(kn.Value) > maxShownValue {
			key = join(prefix, shortQuote(kn.Value))
		}
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
		d.sources[key] = d.where(vn)
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
			d.sources[itemKey] = d.where(item)
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
			break
		}
		// yaml.v3 drops a null item from a []string without a word: the
		// command would silently lose an argument.
		bad := false
		for i, item := range n.Content {
			if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
				what := describe(item, secret)
				if item.Kind == yaml.ScalarNode {
					what = "null (write \"\" or quote the word)"
				}
				d.add(fmt.Sprintf("%s[%d]", key, i), item, "must be a string, got %s", what)
				bad = true
			}
		}
		if bad {
			return
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
	return shortQuote(n.Value)
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
