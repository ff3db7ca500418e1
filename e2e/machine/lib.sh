# shellcheck shell=bash disable=SC2034  # (variables used by the scripts that source this)
# Shared by e2e/machine/machine and e2e/machine/build.sh. Source it; do not run it.
# Nothing here writes the Debian mirror's host name anywhere: it is read from apt's configuration
# when needed and masked in every log.

MACHINE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$MACHINE_DIR/../.." && pwd)
CACHE=${HOMELAB_E2E_CACHE:-$HOME/.cache/homelab-e2e}
SUITE=bookworm
APT_SOURCES=/etc/apt/sources.list.d/debian.sources

die() { echo "machine: $*" >&2; exit 1; }
log() { echo "[machine $(date +%T)] $*" >&2; }
now() { date +%s.%N; }
# seconds since $1 (a `now` value), one decimal
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# poll CMD... every 0.2 s until it succeeds or TIMEOUT seconds pass. Returns 1 on timeout.
poll() {
  local timeout=$1 t0; shift
  t0=$(now)
  until "$@"; do
    awk -v a="$t0" -v b="$(now)" -v t="$timeout" 'BEGIN { exit !(b - a > t) }' && return 1
    sleep 0.2
  done
}

# --- the Debian mirror (read at run time, never stored) ---------------------------------------------
mirror_url() {
  [ -r "$APT_SOURCES" ] || die "no $APT_SOURCES: cannot find the Debian mirror"
  awk '/^URIs:/ { print $2; exit }' "$APT_SOURCES"
}
mirror_hosts() { awk '/^URIs:/ { print $2 }' "$APT_SOURCES" 2>/dev/null | sed -E 's#^[a-z+]+://([^/:]+).*#\1#' | sort -u; }
# mask the mirror host names in a stream (for logs)
mask() {
  local expr=() h
  for h in $(mirror_hosts); do expr+=(-e "s/${h//./\\.}/MIRROR/g"); done
  if [ ${#expr[@]} -gt 0 ]; then sed -u "${expr[@]}"; else cat; fi
}

# --- cgroups --------------------------------------------------------------------------------------------
# The machine gets its own cgroup in every hierarchy, below the caller's: <hierarchy><caller's cgroup>/
# homelab-e2e/<name>. systemd-nspawn's cgroup namespace makes it the machine's root, so everything inside
# (systemd, containerd, runc, the kubelet) nests below it and its memory use can be read in one place.
# cg_create NAME LISTFILE: create them, write their paths to LISTFILE.
cg_create() {
  local name=$1 list=$2 ctrl cur mnt d sub
  : > "$list"
  if [ -e /sys/fs/cgroup/cgroup.controllers ]; then   # pure cgroup v2
    cur=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
    d="/sys/fs/cgroup${cur%/}/homelab-e2e/$name"
    mkdir -p "$d"; echo "$d" >> "$list"; return 0
  fi
  while IFS=: read -r _ ctrl cur; do
    case "$ctrl" in
      "") mnt=/sys/fs/cgroup/unified ;;
      name=systemd) mnt=/sys/fs/cgroup/systemd ;;
      name=*) continue ;;
      *) mnt=/sys/fs/cgroup/$ctrl ;;
    esac
    [ -d "$mnt" ] || continue
    d="$mnt${cur%/}/homelab-e2e"
    # (another machine's cg_remove may remove the shared parent at the same moment: try again)
    mkdir -p "$d/$name" 2>/dev/null || mkdir -p "$d/$name" 2>/dev/null || mkdir -p "$d/$name"
    for sub in "$d" "$d/$name"; do
      if [ -e "$sub/cpuset.cpus" ] && [ -z "$(cat "$sub/cpuset.cpus")" ]; then
        cat "$(dirname "$sub")/cpuset.cpus" > "$sub/cpuset.cpus"
        cat "$(dirname "$sub")/cpuset.mems" > "$sub/cpuset.mems"
      fi
    done
    echo "$d/$name" >> "$list"
  done < /proc/self/cgroup
}
# cg_join LISTFILE: move the calling shell ($BASHPID) into them
cg_join() { local cg; while read -r cg; do echo "$BASHPID" > "$cg/cgroup.procs"; done < "$1"; }
# cg_remove LISTFILE: remove them, deepest first (the kubelet's and runc's leftovers too). Returns 1 when
# some are left (a process is still inside).
cg_remove() {
  local cg left=0
  [ -f "$1" ] || return 0
  while read -r cg; do
    [ -d "$cg" ] || continue
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    rmdir "$(dirname "$cg")" 2>/dev/null || true   # the shared homelab-e2e parent, when empty
    [ -d "$cg" ] && { echo "machine: cgroup left: $cg" >&2; left=1; }
  done < "$1"
  return $left
}
cg_memory_dir() { grep -m1 -E '/memory/|/unified/|^/sys/fs/cgroup/[^/]*homelab' "$1" 2>/dev/null || true; }

# --- systemd-nspawn -------------------------------------------------------------------------------------
# Use the host's systemd-nspawn if it has one. Otherwise unpack systemd-container (and the matching
# libsystemd-shared) into a private folder of the cache: the host's systemd is never installed or upgraded.
NSPAWN=()
find_nspawn() {
  [ ${#NSPAWN[@]} -gt 0 ] && return 0
  if command -v systemd-nspawn >/dev/null 2>&1; then NSPAWN=(systemd-nspawn); return 0; fi
  local ver dir tmp lib
  ver=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null || true)
  dir="$CACHE/nspawn-${ver:-candidate}"
  if [ ! -x "$dir/root/usr/bin/systemd-nspawn" ]; then
    log "no systemd-nspawn on the host: unpacking systemd-container ${ver:-(candidate)} into $dir"
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/.nspawn.XXXXXX")
    (
      cd "$tmp"
      get() { apt-get download -q "$@" >/dev/null 2>&1; }
      if [ -n "$ver" ]; then
        get "systemd-container=$ver" "libsystemd-shared=$ver" ||
          { apt-get update -q >/dev/null 2>&1 || true; get "systemd-container=$ver" "libsystemd-shared=$ver"; } ||
          get systemd-container libsystemd-shared
      else
        get systemd-container libsystemd-shared ||
          { apt-get update -q >/dev/null 2>&1 || true; get systemd-container libsystemd-shared; }
      fi
      for deb in ./*.deb; do dpkg-deb -x "$deb" root; done
    ) || { rm -rf "$tmp"; die "could not download systemd-container with apt-get download"; }
    [ -x "$tmp/root/usr/bin/systemd-nspawn" ] || { rm -rf "$tmp"; die "systemd-container has no systemd-nspawn"; }
    rm -rf "$dir"; mv "$tmp" "$dir"
  fi
  lib=$(dirname "$(find "$dir/root" -name 'libsystemd-shared-*.so' | head -1)")
  NSPAWN=(env "LD_LIBRARY_PATH=$lib" "$dir/root/usr/bin/systemd-nspawn")
}

# --- paths with nothing mounted below them -------------------------------------------------------------
# has_mounts DIR: true when something is mounted at or below DIR in the host's mount namespace
has_mounts() {
  local d; d=$(readlink -f "$1")
  awk -v d="$d" '{ gsub(/\\040/, " ", $5); if ($5 == d || index($5, d "/") == 1) { found = 1 } } END { exit !found }' /proc/self/mountinfo
}
# safe_rm DIR: rm -rf that refuses when anything is mounted inside DIR
safe_rm() {
  [ -e "$1" ] || return 0
  has_mounts "$1" && die "refusing to remove $1: something is mounted inside it (see /proc/self/mountinfo)"
  rm -rf --one-file-system "$1"
}
