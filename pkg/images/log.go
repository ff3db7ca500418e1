package images

import (
	"context"
	"io"
	"log/slog"

	"github.com/containerd/log"
	"github.com/sirupsen/logrus"
)

// withLogger routes the containerd client's own log lines (logrus, by
// default straight to stderr, e.g. "apply failure, attempting cleanup" on
// a damaged layer) into logger, or drops them when logger is nil: the
// errors they describe are returned anyway, and homelab's stderr belongs to
// its own progress output. The logger travels in ctx, so nothing global is
// touched.
func withLogger(ctx context.Context, logger *slog.Logger) context.Context {
	l := logrus.New()
	l.Out = io.Discard
	if logger != nil {
		l.SetLevel(logrus.DebugLevel)
		l.AddHook(slogHook{logger})
	}
	return log.WithLogger(ctx, logrus.NewEntry(l))
}

type slogHook struct{ logger *slog.Logger }

func (h slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	}
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "component", "containerd-client")
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	h.logger.Log(ctx, level, e.Message, attrs...)
	return nil
}
