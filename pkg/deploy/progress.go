package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/homelab-dev/homelab/pkg/images"
)

// progressEvery is how often the import says how far it got: often enough
// to look alive, seldom enough not to flood plain output.
const progressEvery = 500 * time.Millisecond

// progressSource is src telling, as the import reads it, how much was read
// and how fast ("read 120.0 of 512.0 MiB, 40.1 MiB/s"): a large image takes
// minutes, and a live display should show it moving.
type progressSource struct {
	images.Source
	report func(string)
	now    func() time.Time
}

func withProgress(src images.Source, report func(string)) images.Source {
	return progressSource{Source: src, report: report, now: time.Now}
}

func (s progressSource) Open(ctx context.Context) (io.ReadCloser, error) {
	rc, err := s.Source.Open(ctx)
	if err != nil {
		return nil, err
	}
	total := int64(-1) // a stream (docker save) has no size known before its end
	if a, ok := s.Source.(images.ArchiveSource); ok {
		if st, err := os.Stat(a.Path); err == nil {
			total = st.Size()
		}
	}
	start := s.now()
	return &progressReader{ReadCloser: rc, total: total, start: start, last: start, report: s.report, now: s.now}, nil
}

// progressReader counts what is read through it. The importer reads from
// one goroutine, so the counts need no lock.
type progressReader struct {
	io.ReadCloser
	read, total int64
	start, last time.Time
	report      func(string)
	now         func() time.Time
}

func (r *progressReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.read += int64(n)
	if t := r.now(); t.Sub(r.last) >= progressEvery || err == io.EOF {
		r.last = t
		r.report(r.line(t))
	}
	return n, err
}

func (r *progressReader) line(t time.Time) string {
	const mib = 1 << 20
	read := fmt.Sprintf("read %.1f MiB", float64(r.read)/mib)
	if r.total >= 0 {
		read = fmt.Sprintf("read %.1f of %.1f MiB", float64(r.read)/mib, float64(r.total)/mib)
	}
	if elapsed := t.Sub(r.start).Seconds(); elapsed > 0 {
		read += fmt.Sprintf(", %.1f MiB/s", float64(r.read)/mib/elapsed)
	}
	return read
}
