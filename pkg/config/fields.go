package config

import (
	"errors"
	"strings"
)

// ProblemsAt validates c with Validate's rules and returns the problems of
// key and of the keys under it ("alerts.notify[0]" covers its fields). It
// lets a caller that asks for one value at a time (init's first-run wizard)
// refuse exactly what loading the finished file would refuse, without a
// second copy of the rules.
func ProblemsAt(c *Config, key string) []Problem {
	var at []Problem
	for _, p := range Validate(c) {
		if p.Key == key || strings.HasPrefix(p.Key, key+".") || strings.HasPrefix(p.Key, key+"[") {
			at = append(at, p)
		}
	}
	return at
}

// CheckField is ProblemsAt as an error: nil when key is valid in c, else
// the problems' messages (without the key, which the asking field shows).
func CheckField(c *Config, key string) error {
	problems := ProblemsAt(c, key)
	if len(problems) == 0 {
		return nil
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Msg
		if p.Key != key {
			msgs[i] = p.Key + ": " + p.Msg
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}
