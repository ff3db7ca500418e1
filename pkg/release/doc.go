// Package release tests what `make release-snapshot` builds into dist/: the
// .deb's files, modes and completions, and the packaged binary installed by
// dpkg into a throwaway root. Its tests carry the "release" build tag (they
// need dist/, which `go test ./...` does not build): run them with
// `make release-test` after `make release-snapshot`.
package release
