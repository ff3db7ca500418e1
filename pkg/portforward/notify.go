package portforward

import (
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier tells the service manager how the forwarder is doing (sd_notify).
type Notifier interface {
	// Notify sends a state such as "READY=1" or "WATCHDOG=1"; it reports
	// false without error when there is no service manager to tell.
	Notify(state string) (bool, error)
}

// Systemd notifies systemd through $NOTIFY_SOCKET; without it (run from a
// shell) every notification is a no-op.
type Systemd struct{}

// Notify implements Notifier.
func (Systemd) Notify(state string) (bool, error) { return daemon.SdNotify(false, state) }

// SystemdWatchdog returns the unit's WatchdogSec (0 when there is none, or
// when the watchdog is meant for another process).
func SystemdWatchdog() (time.Duration, error) { return daemon.SdWatchdogEnabled(false) }
