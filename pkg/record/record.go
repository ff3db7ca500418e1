// Package record keeps the list of what homelab created on a host, at
// layout.Record, so that `homelab uninstall` removes exactly that and leaves
// everything else alone.
//
// Only what homelab created is listed: a package apt installed because it was
// missing, k3s when homelab installed it, a file that did not exist before, a
// Helm release, Secret or namespace homelab made, the CRDs its chart install
// created. A file that existed before homelab first wrote it is listed as
// modified, with a copy of its original content (Backup) that uninstall puts
// back.
//
// The record is JSON:
//
//	{
//	  "version": 1,
//	  "items": [
//	    {"kind": "apt-package", "name": "nginx"},
//	    {"kind": "k3s", "version": "v1.37.2+k3s1", "path": "/usr/local/bin/k3s", "unit": "/etc/systemd/system/k3s.service"},
//	    {"kind": "secret", "namespace": "monitoring", "name": "lightweight-monitoring-grafana-admin"},
//	    {"kind": "file", "path": "/etc/homelab/values/kube-prometheus-stack.yaml", "dirs": ["/etc/homelab/values", "/etc/homelab"]},
//	    {"kind": "crds", "namespace": "monitoring", "name": "lightweight-monitoring", "names": ["probes.monitoring.coreos.com"]},
//	    {"kind": "helm-release", "namespace": "monitoring", "name": "lightweight-monitoring"},
//	    {"kind": "systemd-unit", "name": "grafana-portforward.service", "path": "/etc/systemd/system/grafana-portforward.service"},
//	    {"kind": "nginx-site", "path": "/etc/nginx/sites-available/homelab.conf", "link": "/etc/nginx/sites-enabled/homelab.conf",
//	     "target": "../sites-available/homelab.conf", "stamp": "/var/lib/homelab/nginx-site.sha256"},
//	    {"kind": "file", "path": "/etc/homelab/homelab.yaml", "modified": true, "mode": "0600",
//	     "backup": "/var/backups/homelab/etc/homelab/homelab.yaml.before-homelab"}
//	  ]
//	}
//
// Items are in the order homelab created them; uninstall goes backwards.
//
// The record holds the list, the Recorder that wraps install steps with
// Watches, and what every kind of item shares: plain files (FileWatch,
// UndoFile), files that replace one the user had (BeforeWrite), cluster
// objects homelab creates (NamespaceWatch, SecretWatch) and which items
// uninstall may trust. Each other kind's watch lives with its install and
// removal steps: nginx.SiteWatch, systemd.UnitWatch, k3s.Watch and
// k3s.LinkWatch, apt.Watch, helm.ReleaseWatch, certbot.Watches.
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// Version is the record format this build writes and reads.
const Version = 1

// Kind says what an item is.
type Kind string

const (
	// AptPackage is a Debian package homelab installed (Name).
	AptPackage Kind = "apt-package"
	// K3s is k3s installed by homelab: Version, its binary (Path) and unit (Unit).
	K3s Kind = "k3s"
	// Namespace is a Kubernetes namespace homelab created (Name).
	Namespace Kind = "namespace"
	// Secret is a Kubernetes Secret homelab created (Namespace, Name).
	Secret Kind = "secret"
	// ConfigSecret is a Secret homelab derives from homelab.yaml on every
	// init (Alertmanager's configuration): no user data, removed with the
	// rest, since it holds the alert destinations' tokens.
	ConfigSecret Kind = "config-secret"
	// File is a file at Path; created by homelab unless Modified.
	File Kind = "file"
	// SystemdUnit is a unit file at Path for unit Name; created unless Modified.
	SystemdUnit Kind = "systemd-unit"
	// NginxSite is the site file at Path (created unless Modified), its
	// sites-enabled Link to Target (when homelab made it), and the Stamp
	// homelab keeps of the last loaded site.
	NginxSite Kind = "nginx-site"
	// HelmRelease is a release homelab installed (Namespace, Name).
	HelmRelease Kind = "helm-release"
	// CRDs are the CustomResourceDefinitions (Names) homelab created while
	// installing the release Namespace/Name.
	CRDs Kind = "crds"
	// K3sLink is a link to k3s (kubectl, crictl, ctr) homelab made at Path;
	// it goes with k3s.
	K3sLink Kind = "k3s-link"
)

// Item is one thing homelab created or modified. Which fields are set
// depends on Kind.
type Item struct {
	Kind      Kind   `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Version   string `json:"version,omitempty"`
	Path      string `json:"path,omitempty"`
	Unit      string `json:"unit,omitempty"`
	Link      string `json:"link,omitempty"`
	Target    string `json:"target,omitempty"`
	Stamp     string `json:"stamp,omitempty"`
	// Names are CRD names.
	Names []string `json:"names,omitempty"`
	// Modified marks a file that existed before homelab wrote it: uninstall
	// puts Backup (its original content) back with Mode, or leaves the file
	// when there is no Backup.
	Modified bool   `json:"modified,omitempty"`
	Backup   string `json:"backup,omitempty"`
	Mode     string `json:"mode,omitempty"`
	// Dirs are the parent directories homelab created for Path (and Link),
	// deepest first; uninstall removes those that are empty.
	Dirs []string `json:"dirs,omitempty"`
}

// Key identifies an item: two items with one key are the same thing.
func (i Item) Key() string {
	switch i.Kind {
	case AptPackage, Namespace:
		return string(i.Kind) + ":" + i.Name
	case K3s:
		return string(i.Kind)
	case Secret, ConfigSecret, HelmRelease, CRDs:
		return string(i.Kind) + ":" + i.Namespace + "/" + i.Name
	}
	return string(i.Kind) + ":" + i.Path
}

// String describes the item for people.
func (i Item) String() string {
	switch i.Kind {
	case AptPackage:
		return "apt package " + i.Name
	case K3s:
		return "k3s " + i.Version
	case Namespace:
		return "namespace " + i.Name
	case Secret:
		return "Secret " + i.Namespace + "/" + i.Name
	case ConfigSecret:
		return "Secret " + i.Namespace + "/" + i.Name + " (Alertmanager configuration)"
	case HelmRelease:
		return "Helm release " + i.Namespace + "/" + i.Name
	case CRDs:
		return "CRDs " + strings.Join(i.Names, ", ")
	case SystemdUnit:
		return "systemd unit " + i.Name
	case NginxSite:
		return "Nginx site " + i.Path
	}
	return i.Path
}

// merge folds a newer observation of the same thing into i: the first
// observation says what was there before homelab, so only the k3s version
// and new CRD names are taken from later ones.
func (i Item) merge(newer Item) Item {
	if newer.Version != "" {
		i.Version = newer.Version
	}
	for _, n := range newer.Names {
		if !slices.Contains(i.Names, n) {
			i.Names = append(i.Names, n)
		}
	}
	return i
}

// Record is the list of what homelab created on a host.
type Record struct {
	Version int    `json:"version"`
	Items   []Item `json:"items"`
}

// New is an empty record.
func New() *Record { return &Record{Version: Version, Items: []Item{}} }

// ErrNoRecord means there is no record: homelab created nothing on this host
// (or the record was removed).
var ErrNoRecord = errors.New("nothing recorded: homelab did not install anything here (or the record " + layout.Record + " was removed)")

// Load reads the record at layout.Record; ErrNoRecord when there is none.
func Load(h host.Host) (*Record, error) {
	data, err := h.ReadFile(layout.Record)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoRecord
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("the record %s is not valid JSON (%v); homelab cannot tell what it installed", layout.Record, err)
	}
	if r.Version != Version {
		return nil, fmt.Errorf("the record %s has format version %d; this homelab reads version %d (use the homelab that wrote it)", layout.Record, r.Version, Version)
	}
	if r.Items == nil {
		r.Items = []Item{}
	}
	return &r, nil
}

// Marshal is the record as saved: indented JSON with a final newline.
func (r *Record) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save writes the record to layout.Record atomically, readable by root only.
// An unchanged record is not written again.
func (r *Record) Save(h host.Host) error {
	data, err := r.Marshal()
	if err != nil {
		return err
	}
	if _, err := h.WriteFile(layout.Record, data, 0o600); err != nil {
		return fmt.Errorf("save the record of what homelab installed: %w", err)
	}
	return nil
}

// Find returns the item with key, if any.
func (r *Record) Find(key string) (Item, bool) {
	for _, it := range r.Items {
		if it.Key() == key {
			return it, true
		}
	}
	return Item{}, false
}

// Has reports whether the record lists the item's key.
func (r *Record) Has(it Item) bool {
	_, ok := r.Find(it.Key())
	return ok
}

// Add appends new items and merges items the record already lists (see
// Item.merge). It reports whether the record changed.
func (r *Record) Add(items ...Item) bool {
	changed := false
	for _, it := range items {
		i := slices.IndexFunc(r.Items, func(have Item) bool { return have.Key() == it.Key() })
		if i < 0 {
			r.Items = append(r.Items, it)
			changed = true
			continue
		}
		if merged := r.Items[i].merge(it); !reflect.DeepEqual(merged, r.Items[i]) {
			r.Items[i] = merged
			changed = true
		}
	}
	return changed
}
