package cmdutil

import (
	"fmt"

	"github.com/homelab-dev/homelab/pkg/host"
	"github.com/homelab-dev/homelab/pkg/layout"
)

// Lock takes homelab's machine-wide lock for a command that changes the
// machine, so init, deploy-app and uninstall never race. A dry run changes
// nothing and takes no lock.
func Lock(h host.Host, dryRun bool) (unlock func(), err error) {
	if dryRun {
		return func() {}, nil
	}
	locker, ok := h.(host.Locker)
	if !ok {
		return nil, fmt.Errorf("this host (%T) cannot take homelab's lock %s", h, layout.Lock)
	}
	return locker.Lock(layout.Lock)
}
