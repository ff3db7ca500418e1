package cmdutil

import (
	"runtime/debug"
	"testing"
)

func TestStampBuild(t *testing.T) {
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-11-01T00:00:00Z"}}
	for _, c := range []struct {
		name, version string
		info          *debug.BuildInfo
		want          [3]string
	}{
		{"no build info", "dev", nil, [3]string{"dev", unknown, unknown}},
		{"checkout build", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			[3]string{"dev", "abc123", "2026-11-01T00:00:00Z"}},
		{"go install of a tag", "dev", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, [3]string{"v1.4.0", unknown, unknown}},
		{"release stamp wins", "v2.0.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, [3]string{"v2.0.0", unknown, unknown}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var f Factory
			f.stampBuild(c.version, c.info)
			if got := [3]string{f.Version, f.Commit, f.BuildDate}; got != c.want {
				t.Fatalf("version, commit, date = %q, want %q", got, c.want)
			}
		})
	}
}
