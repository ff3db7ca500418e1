package config

import "reflect"

// RedactedSecret stands in for every secret in the copy of the
// configuration init keeps on the machine (/etc/homelab/homelab.yaml): the
// secrets themselves live only in the user's own file, in
// /etc/homelab/alertmanager.yaml and in the Secret Alertmanager reads.
const RedactedSecret = "<secret>"

// WithoutSecrets returns a copy of cfg with every field tagged secret:"true"
// that is set replaced by RedactedSecret.
func WithoutSecrets(cfg *Config) *Config {
	c := *cfg
	c.Alerts.Notify = nil
	for _, n := range cfg.Alerts.Notify {
		c.Alerts.Notify = append(c.Alerts.Notify, copyNotify(n))
	}
	visitSecrets(reflect.ValueOf(&c).Elem(), func(v reflect.Value) {
		if v.String() != "" {
			v.SetString(RedactedSecret)
		}
	})
	return &c
}

// HasRedactedSecrets reports whether cfg is a copy made by WithoutSecrets:
// good for reading, not for writing Alertmanager's configuration.
func HasRedactedSecrets(cfg *Config) bool {
	found := false
	visitSecrets(reflect.ValueOf(cfg).Elem(), func(v reflect.Value) {
		if v.String() == RedactedSecret {
			found = true
		}
	})
	return found
}

// copyNotify copies the destination a Notify points to, so redacting the
// copy leaves the original alone.
func copyNotify(n Notify) Notify {
	out := Notify{}
	src, dst := reflect.ValueOf(n), reflect.ValueOf(&out).Elem()
	for i := 0; i < src.NumField(); i++ {
		if p := src.Field(i); !p.IsNil() {
			fresh := reflect.New(p.Type().Elem())
			fresh.Elem().Set(p.Elem())
			dst.Field(i).Set(fresh)
		}
	}
	return out
}

// visitSecrets calls f on every settable string field tagged secret:"true".
func visitSecrets(v reflect.Value, f func(reflect.Value)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			visitSecrets(v.Elem(), f)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			visitSecrets(v.Index(i), f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			field := v.Field(i)
			if t.Field(i).Tag.Get("secret") == "true" && field.Kind() == reflect.String {
				f(field)
				continue
			}
			visitSecrets(field, f)
		}
	}
}
