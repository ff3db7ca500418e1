package cmdutil

import (
	"runtime/debug"
)

// The commit and date of a release build, stamped by the linker (Makefile's
// build target, .goreleaser.yaml) next to pkg/app's version:
//
//	-X github.com/homelab-dev/homelab/pkg/cmdutil.buildCommit=<sha>
//	-X github.com/homelab-dev/homelab/pkg/cmdutil.buildDate=<RFC 3339 time>
//
// Only the linker writes them; New copies them into the Factory, which is
// what commands read.
var (
	buildCommit = ""
	buildDate   = ""
)

// unknown is reported for a build fact nobody recorded.
const unknown = "unknown"

// unstamped is pkg/app's version when the linker did not set it.
const unstamped = "dev"

// stampBuild fills f.Version, f.Commit and f.BuildDate. The linker's stamps
// win; a binary built without them (`go install ...@v1.2.3`, `go build` in a
// checkout) still knows its module version and, when Go recorded it, the
// commit and its time, so that it does not claim to be "dev" of unknown
// origin.
func (f *Factory) stampBuild(version string, info *debug.BuildInfo) {
	f.Version, f.Commit, f.BuildDate = version, buildCommit, buildDate
	if info == nil {
		info = &debug.BuildInfo{}
	}
	if f.Version == unstamped && info.Main.Version != "" && info.Main.Version != "(devel)" {
		f.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && f.Commit == "":
			f.Commit = s.Value
		case s.Key == "vcs.time" && f.BuildDate == "":
			f.BuildDate = s.Value
		}
	}
	if f.Commit == "" {
		f.Commit = unknown
	}
	if f.BuildDate == "" {
		f.BuildDate = unknown
	}
}

// readBuildInfo is debug.ReadBuildInfo without its ok flag: nil when the
// binary carries none.
func readBuildInfo() *debug.BuildInfo {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return info
}
