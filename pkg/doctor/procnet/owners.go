package procnet

import (
	"io/fs"
	"strconv"
	"strings"
)

// Proc is the part of /proc that Owners reads.
type Proc interface {
	ReadDir(path string) ([]fs.DirEntry, error)
	Readlink(path string) (string, error)
	ReadFile(path string) ([]byte, error)
}

// Owners names the processes holding the sockets with the given inodes:
// inode -> command name (/proc/PID/comm), for every inode found. Each
// /proc/PID/fd/N of a socket links to "socket:[INODE]". Processes whose fd
// directory cannot be read (another user's, without root) or that exit
// meanwhile are passed over: their sockets stay unnamed.
func Owners(p Proc, inodes map[uint64]bool) map[uint64]string {
	names := map[uint64]string{}
	if len(inodes) == 0 {
		return names
	}
	procs, err := p.ReadDir("/proc")
	if err != nil {
		return names
	}
	for _, d := range procs {
		if _, err := strconv.Atoi(d.Name()); err != nil || !d.IsDir() {
			continue
		}
		dir := "/proc/" + d.Name()
		fds, err := p.ReadDir(dir + "/fd")
		if err != nil {
			continue
		}
		var comm string
		for _, fd := range fds {
			target, err := p.Readlink(dir + "/fd/" + fd.Name())
			if err != nil {
				continue
			}
			n, ok := socketInode(target)
			if !ok || !inodes[n] {
				continue
			}
			if comm == "" {
				data, err := p.ReadFile(dir + "/comm")
				if err != nil {
					break
				}
				comm = strings.TrimSpace(string(data))
			}
			if _, seen := names[n]; !seen && comm != "" {
				names[n] = comm
			}
		}
		if len(names) == len(inodes) {
			break
		}
	}
	return names
}

// socketInode reads "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
