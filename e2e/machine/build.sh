# shellcheck shell=bash
# The machine's cached base: a Debian root filesystem and a local flat apt repository.
# Sourced by `machine build`. Its own hash is part of the cache key, so any change here rebuilds.
#
# ~/.cache/homelab-e2e/machine-<key>/
#   rootfs/     debootstrap --variant=minbase $SUITE + packages.txt (+ e2e/k3s/machine-needs.txt),
#               upgraded from the mirror's update suites, overlay/ copied in; apt's only source is the repo
#   apt-repo/   flat repository (dpkg-scanpackages): repo-packages.txt and every dependency the rootfs lacks;
#               bind-mounted read-only at /srv/homelab-e2e-apt in every machine
#   ok          written last: the cache entry is complete

# package lists: one name a line, '#' comments
read_list() { [ -f "$1" ] && sed -e 's/#.*//' -e 's/[[:space:]]//g' "$1" | grep -v '^$' || true; }
base_packages() { { read_list "$MACHINE_DIR/packages.txt"; read_list "$REPO/e2e/k3s/machine-needs.txt"; } | sort -u; }
repo_packages() { read_list "$MACHINE_DIR/repo-packages.txt" | sort -u; }

machine_key() {
  {
    echo "suite=$SUITE arch=$(dpkg --print-architecture)"
    echo "base: $(base_packages | tr '\n' ' ')"
    echo "repo: $(repo_packages | tr '\n' ' ')"
    # the mirror snapshot apt is configured with (hashed, never written out)
    sha256sum < "$APT_SOURCES"
    cat "$MACHINE_DIR/build.sh"
    (cd "$MACHINE_DIR/overlay" && find . -type f | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
}
base_dir() { echo "$CACHE/machine-$(machine_key)"; }

# debootstrap: the host's, or one unpacked into the cache (nothing is installed on the host)
DEBOOTSTRAP=()
find_debootstrap() {
  if command -v debootstrap >/dev/null 2>&1; then DEBOOTSTRAP=(debootstrap); return 0; fi
  local dir="$CACHE/debootstrap" tmp
  if [ ! -x "$dir/root/usr/sbin/debootstrap" ]; then
    log "no debootstrap on the host: unpacking it into $dir"
    tmp=$(mktemp -d "$CACHE/.debootstrap.XXXXXX")
    ( cd "$tmp" && { apt-get download -q debootstrap >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1; apt-get download -q debootstrap >/dev/null 2>&1; }; } &&
      dpkg-deb -x ./debootstrap_*.deb root ) || { rm -rf "$tmp"; die "could not get debootstrap with apt-get download"; }
    rm -rf "$dir"; mv "$tmp" "$dir"
  fi
  DEBOOTSTRAP=(env "DEBOOTSTRAP_DIR=$dir/root/usr/share/debootstrap" "$dir/root/usr/sbin/debootstrap")
}

# run a command inside ROOTFS with systemd-nspawn (NOT booted: no systemd, no tmpfiles), host network so
# apt reaches the mirror, /proc/sys read-only, private /tmp; in its own cgroups, removed afterwards.
stage_nspawn() {
  local rootfs=$1; shift
  local cgl; cgl=$(mktemp "$CACHE/.build-cgroups.XXXXXX")
  cg_create "build-$$" "$cgl"
  local rc=0
  ( cg_join "$cgl"
    exec "${NSPAWN[@]}" -q -D "$rootfs" --register=no --keep-unit --link-journal=no \
      --resolv-conf=copy-host --timezone=off -E DEBIAN_FRONTEND=noninteractive -E LANG=C.UTF-8 "$@" < /dev/null
  ) || rc=$?
  cg_remove "$cgl" || true
  rm -f "$cgl"
  return $rc
}

build_base() {
  local dir key tmp rootfs blog t0 mirror
  key=$(machine_key); dir="$CACHE/machine-$key"
  if [ -f "$dir/ok" ]; then log "base is cached: $dir"; echo "$dir"; return 0; fi
  mkdir -p "$CACHE" "$REPO/.e2e/machine"
  blog="$REPO/.e2e/machine/build-$key.log"
  exec 9>"$CACHE/machine-$key.lock"
  flock -w 1800 9 || die "timed out waiting 30 min for another build of $dir (lock $CACHE/machine-$key.lock)"
  if [ -f "$dir/ok" ]; then log "base is cached: $dir"; echo "$dir"; return 0; fi
  find_debootstrap; find_nspawn
  t0=$(now)
  tmp="$dir.tmp"; safe_rm "$tmp"; mkdir -p "$tmp/apt-repo"
  rootfs="$tmp/rootfs"
  mirror=$(mirror_url)
  : > "$blog"
  log "building the machine base $dir (log: $blog)"
  local include; include=$(base_packages | tr '\n' ',' | sed 's/,$//')

  # 1) debootstrap, in a private mount namespace so nothing it mounts can outlive it on the host
  log "debootstrap $SUITE minbase + $include"
  local keyring=(); [ -r /usr/share/keyrings/debian-archive-keyring.gpg ] && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
  if ! unshare --mount --propagation private -- "${DEBOOTSTRAP[@]}" --variant=minbase "${keyring[@]}" \
      --include="$include" "$SUITE" "$rootfs" "$mirror" 2>&1 | mask >> "$blog"; then
    die "debootstrap failed; see $blog"
  fi

  # 2) with the host's apt sources (read now, removed below): the update suites' versions, every base
  #    package, and the repo packages' missing dependency closure downloaded (not installed)
  log "apt: upgrade, install the base packages, download $(repo_packages | tr '\n' ' ')into the local repo"
  rm -f "$rootfs/etc/apt/sources.list"
  cp "$APT_SOURCES" "$rootfs/etc/apt/sources.list.d/debian.sources"
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  mkdir -p "$rootfs/var/cache/homelab-e2e-repo/partial"
  tar -C "$MACHINE_DIR/overlay" --owner=0 --group=0 -cf - . | tar -C "$rootfs" --no-overwrite-dir -xf -
  # shellcheck disable=SC2046
  if ! stage_nspawn "$rootfs" /bin/sh -ec '
      apt-get update -q
      apt-get -y -q dist-upgrade
      apt-get install -y -q --no-install-recommends "$@"
      apt-get install -y -q --download-only -o Dir::Cache::archives=/var/cache/homelab-e2e-repo/ '"$(repo_packages | tr '\n' ' ')"'
      apt-get clean
      systemctl enable homelab-e2e-machine-prep.service systemd-networkd.service
      dpkg-query -W -f="\${Package} \${Version}\n" > /var/log/homelab-e2e-packages.txt
    ' sh $(base_packages) 2>&1 | mask >> "$blog"; then
    die "apt inside the new root filesystem failed; see $blog"
  fi
  mv "$rootfs"/var/cache/homelab-e2e-repo/*.deb "$tmp/apt-repo/" || die "no .deb downloaded for the repo; see $blog"
  rm -rf "$rootfs/var/cache/homelab-e2e-repo"
  (cd "$tmp/apt-repo" && dpkg-scanpackages -m . /dev/null > Packages 2>>"$blog" && gzip -9nk Packages) ||
    die "dpkg-scanpackages failed; see $blog"
  chmod -R a+rX "$tmp/apt-repo"

  # 3) apt's only source is the local repo; scrub everything that names the mirror
  printf '%s\n' "# The machine's only apt source: a flat repository prepared on the host, bind-mounted read-only." \
    "deb [trusted=yes] file:/srv/homelab-e2e-apt ./" > "$rootfs/etc/apt/sources.list.d/homelab-e2e.list"
  rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/apt/sources.list.d/debian.sources" "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/apt/* "$rootfs/var/log/bootstrap.log"
  mkdir -p "$rootfs/var/lib/apt/lists/partial" "$rootfs/srv/homelab-e2e-apt" "$rootfs/var/log/journal"
  : > "$rootfs/etc/machine-id"   # each machine gets its own at `up`
  rm -f "$rootfs/var/lib/dbus/machine-id"; ln -s /etc/machine-id "$rootfs/var/lib/dbus/machine-id"
  echo "nameserver 127.0.0.1" > "$rootfs/etc/resolv.conf.tmp"; mv "$rootfs/etc/resolv.conf.tmp" "$rootfs/etc/resolv.conf"
  local h
  for h in $(mirror_hosts); do
    # where apt, debootstrap and this script write (files Debian ships under /usr may name Debian's public hosts)
    if grep -rIlsF "$h" "$rootfs/etc" "$rootfs/var" "$rootfs/root" "$rootfs/srv" "$tmp/apt-repo/Packages" > "$tmp/leak"; then
      die "the mirror's host name is still in: $(mask < "$tmp/leak" | tr '\n' ' ')"
    fi
  done
  rm -f "$tmp/leak"
  {
    echo "built $(date -u +%FT%TZ) in $(since "$t0") s"
    echo "rootfs $(du -sh "$rootfs" | cut -f1), $(wc -l < "$rootfs/var/log/homelab-e2e-packages.txt") packages"
    echo "apt-repo $(ls "$tmp/apt-repo"/*.deb | wc -l) debs, $(du -sh "$tmp/apt-repo" | cut -f1)"
  } > "$tmp/info"
  cat "$tmp/info" >> "$blog"
  touch "$tmp/ok"
  safe_rm "$dir"; mv "$tmp" "$dir"
  log "built $dir in $(since "$t0") s: $(tr '\n' ';' < "$dir/info")"
  echo "$dir"
}
