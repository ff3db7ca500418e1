// notifyd: a minimal sd_notify service for the machine's self-test (Type=notify + WatchdogSec).
// It sends READY=1, then WATCHDOG=1 every WATCHDOG_USEC/3 until /run/notifyd.stop-pinging exists;
// systemd must then kill and restart it. Standard library only: built on the host with `go build`.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func notify(msg string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return fmt.Errorf("NOTIFY_SOCKET is not set")
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(msg))
	return err
}

func main() {
	time.Sleep(300 * time.Millisecond) // a start-up that takes a moment
	if err := notify("READY=1\nSTATUS=serving"); err != nil {
		fmt.Fprintln(os.Stderr, "notifyd:", err)
		os.Exit(1)
	}
	fmt.Println("notifyd: ready")
	usec, _ := strconv.Atoi(os.Getenv("WATCHDOG_USEC"))
	if usec <= 0 {
		select {}
	}
	every := time.Duration(usec) * time.Microsecond / 3
	for range time.Tick(every) {
		if _, err := os.Stat("/run/notifyd.stop-pinging"); err == nil {
			continue
		}
		if err := notify("WATCHDOG=1"); err != nil {
			fmt.Fprintln(os.Stderr, "notifyd:", err)
		}
	}
}
