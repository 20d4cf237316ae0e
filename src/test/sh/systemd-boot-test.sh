#!/usr/bin/env bash
# The operator's whole story under a real systemd: boots Debian 12 with systemd as PID 1 in a
# systemd-nspawn container, installs writeboost there with systemd/install and drives the
# installed units: format, start (READY, STATUS), loop unit, ext4 through the example .mount
# unit, kill -9 of the server and systemd's restart, a clean stop, a reboot with everything
# enabled, and a poweroff whose console has no [FAILED] line.
#
#   src/test/sh/systemd-boot-test.sh WORKDIR                 (as root; run by e2e.SystemdBootIT)
#   src/test/sh/systemd-boot-test.sh WORKDIR --prepare-only  only build the cached tarball
#
# Exit 0: passed. Exit 77: this machine cannot boot a container at all (why is on stderr).
# Anything else: failed; the container's journal tail and console are printed.
# The Debian tree is built once with debootstrap (about 90 s) and kept as a tarball in
# $WRITEBOOST_TEST_CACHE (default /var/cache/writeboost-test); later runs extract it.
set -euo pipefail

repo="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)"
work="${1:?usage: systemd-boot-test.sh WORKDIR}"
cache="${WRITEBOOST_TEST_CACHE:-/var/cache/writeboost-test}"
suite=bookworm
include=systemd,systemd-sysv,dbus,openjdk-17-jre-headless,fuse,libfuse2,e2fsprogs,util-linux,procps
tarball="$cache/rootfs-$suite-$(printf '%s %s' "$suite" "$include" | sha256sum | cut -c1-12).tar"
machine="wb-boot-$$"
rootfs="$work/rootfs"
console="$work/console.log"
cg="wb-boot-$$"
# The cache's mount point, unique to this run: the host's loop devices are every container's,
# and a device is told ours by the file it is attached to.
mp="/srv/wb$$"
launcher_pid=""
ct_pid=""
lock=""
t0=$SECONDS

say() { printf 'boot-test [%3ds] %s\n' $((SECONDS - t0)) "$*"; }
skip() { echo "boot-test: SKIP: $*" >&2; exit 77; }

# The host's Debian mirror: debootstrap needs one, and this machine reaches no other.
mirror() {
  local m
  m="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [ -n "$m" ] || m="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
    /etc/apt/sources.list 2>/dev/null || true)"
  [ -n "$m" ] || { echo "boot-test: no Debian mirror in /etc/apt/sources.list{,.d}: cannot debootstrap" >&2; return 1; }
  echo "$m"
}

# Builds the tarball once; a half-built one never lands under its final name.
build_tarball() {
  local tmp="$cache/build.$$" m
  m="$(mirror)"
  mkdir -p "$cache"
  rm -rf "$tmp"
  say "building the Debian $suite tree with debootstrap from $m (once; cached as $tarball)"
  if ! debootstrap --variant=minbase --include="$include" "$suite" "$tmp/root" "$m" >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log"
    rm -rf --one-file-system "$tmp"
    echo "boot-test: debootstrap failed (log above)" >&2
    return 1
  fi
  # What a test never reads: downloaded packages, documentation, other languages.
  rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/usr/share/doc" "$tmp/root/usr/share/man" "$tmp/root/usr/share/locale"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$tmp/root" -cf "$tmp/rootfs.tar" .
  mv "$tmp/rootfs.tar" "$tarball"
  rm -rf --one-file-system "$tmp"
  say "cached $(du -h "$tarball" | cut -f1) in $tarball"
}

if [ "${2:-}" = --prepare-only ]; then
  mkdir -p "$work"
  [ -f "$tarball" ] || build_tarball
  exit 0
fi

# --- the container ----------------------------------------------------------------------

# A command in the container: all of its namespaces, its root, a clean environment.
ct() {
  nsenter -t "$ct_pid" -m -u -i -p -C -r -w \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}
ctsh() { ct bash -c "$1"; }

# Control characters out, so that "[FAILED]" matches whatever colours the console used.
plain() { sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' -e 's/\r//g' "$@"; }

diagnostics() {
  if [ -n "$ct_pid" ] && kill -0 "$ct_pid" 2>/dev/null; then
    # Through a file: piped straight on from within the ERR trap, the lines went missing.
    ct journalctl -b --no-pager -o short-monotonic >"$work/journal.txt" 2>&1 || true
    echo "--- the container's journal, last 60 lines of this boot ($work/journal.txt) ---"
    tail -n 60 "$work/journal.txt" | cut -c1-300
  fi
  if [ -s "$console" ]; then
    echo "--- the container's console, last 40 lines ($console) ---"
    plain "$console" | grep -v '^[[:space:]]*$' | tail -n 40 | cut -c1-300
  fi
}

fail() {
  trap - ERR
  say "FAILED: $*"
  diagnostics
  exit 1
}
trap 'fail "line $LINENO: \`$BASH_COMMAND\` exited $?"' ERR

# Waits up to $2 seconds for the shell condition $3, run in the container.
wait_in() {
  local what="$1" limit=$((SECONDS + $2))
  until ctsh "$3" >/dev/null 2>&1; do
    [ $SECONDS -lt $limit ] || fail "no $what within $2 s"
    sleep 0.3
  done
}

# The container's PID 1, other than $1: the child named systemd of the systemd-nspawn that
# the launcher runs.
container_init() {
  local n p
  for n in $(ps -o pid= --ppid "$launcher_pid" 2>/dev/null); do
    for p in $(ps -o pid= --ppid "$n" 2>/dev/null); do
      if [ "$p" != "${1:-}" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ]; then
        echo "$p"
        return 0
      fi
    done
  done
  return 1
}

# Waits for a (new) boot to finish: systemd in the container reports running.
wait_boot() {
  local old="${1:-}" limit=$((SECONDS + 90)) state=""
  ct_pid=""
  until ct_pid="$(container_init "$old")"; do
    kill -0 "$launcher_pid" 2>/dev/null || fail "systemd-nspawn exited ($(wait "$launcher_pid"; echo "status $?"))"
    [ $SECONDS -lt $limit ] || fail "no container init within 90 s"
    sleep 0.2
  done
  until state="$(ct systemctl is-system-running 2>/dev/null)"; [ "$state" = running ] || [ "$state" = degraded ]; do
    [ $SECONDS -lt $limit ] || fail "the boot did not finish within 90 s (state: $state)"
    sleep 0.3
  done
  [ "$state" = running ] || fail "the boot ended degraded: $(ct systemctl --failed --no-legend --plain | tr '\n' ' ')"
}

unit_prop() { ct systemctl show -P "$2" "$1"; }

# The overall exposure level systemd-analyze security gives unit $1 (0.0 safest .. 10.0).
exposure() {
  local out level
  out="$(ct systemd-analyze security --no-pager "$1" 2>&1 || true)"
  level="$(plain <<<"$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p')"
  [ -n "$level" ] || fail "no exposure level from systemd-analyze security $1: $(tail -n 3 <<<"$out")"
  echo "$level"
}

# The loop device the container attached for the volume, recorded from the host's side as it
# appears, so that a failed run can detach it (it outlives the container). Only this one:
# the host's loop devices are visible in the container too, and other builds use them.
record_loop() {
  local d
  d="$(ct readlink /run/writeboost/demo/data 2>/dev/null || true)"
  [ -z "$d" ] || grep -qx "$d" "$work/loops" 2>/dev/null || echo "$d" >>"$work/loops"
}

# Whether loop device $1 is attached to the volume file of this test's cache.
ours_attached() {
  local f="/sys/block/${1#/dev/}/loop/backing_file"
  [ -e "$f" ] && grep -q "$mp/data" "$f"
}

# Our loop devices still attached, as the container's losetup lists them.
our_loops() { ct losetup -n -l -O NAME,BACK-FILE | grep "$mp/" || true; }

cleanup() {
  local status=$? d p
  set +e
  trap - ERR
  if [ -n "$launcher_pid" ] && kill -0 "$launcher_pid" 2>/dev/null; then
    # SIGTERM: systemd-nspawn asks the container to power off; after 30 s it is killed.
    kill -TERM $(ps -o pid= --ppid "$launcher_pid") 2>/dev/null
    for _ in $(seq 300); do kill -0 "$launcher_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$launcher_pid" 2>/dev/null; then
      echo "boot-test: killing the container" >&2
      kill -KILL "$launcher_pid" $(ps -o pid= --ppid "$launcher_pid") 2>/dev/null
    fi
  fi
  [ -z "$ct_pid" ] || kill -KILL "$ct_pid" 2>/dev/null
  for h in systemd unified; do
    if [ -d "/sys/fs/cgroup/$h/$cg" ]; then
      for p in $(cat $(find "/sys/fs/cgroup/$h/$cg" -name cgroup.procs) 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
      sleep 0.2
      find "/sys/fs/cgroup/$h/$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
      [ ! -d "/sys/fs/cgroup/$h/$cg" ] || echo "boot-test: could not remove the cgroup /sys/fs/cgroup/$h/$cg" >&2
    fi
  done
  for d in $(cat "$work/loops" 2>/dev/null); do
    if ours_attached "$d"; then
      echo "boot-test: detaching $d, left attached by the container ($(cat "/sys/block/${d#/dev/}/loop/backing_file"))" >&2
      losetup -d "$d" || echo "boot-test: cannot detach $d" >&2
    fi
  done
  rm -rf --one-file-system "$cache/build.$$"   # a debootstrap cut short
  rm -rf "/run/systemd/nspawn/propagate/$machine" "/run/systemd/nspawn/unix-export/$machine"
  [ -z "$lock" ] || rm -f "$lock"   # left behind when systemd-nspawn had to be killed
  rmdir /run/systemd/nspawn/propagate /run/systemd/nspawn/unix-export /run/systemd/nspawn/locks /run/systemd/nspawn \
    2>/dev/null
  if [ -d "$rootfs" ]; then
    if grep -q " $rootfs" /proc/self/mountinfo; then
      echo "boot-test: something is still mounted under $rootfs; not removing it" >&2
    else
      rm -rf --one-file-system "$rootfs"
    fi
  fi
  exit "$status"
}

# --- what the machine must offer ---------------------------------------------------------

[ "$(id -u)" -eq 0 ] || skip "not root: booting a container needs root"
for tool in systemd-nspawn nsenter losetup; do
  command -v "$tool" >/dev/null || { echo "boot-test: $tool is missing (src/test/sh/install-test-deps.sh installs it)" >&2; exit 1; }
done
[ -f "$tarball" ] || command -v debootstrap >/dev/null \
  || { echo "boot-test: debootstrap is missing (src/test/sh/install-test-deps.sh installs it)" >&2; exit 1; }
[ -c /dev/fuse ] || skip "no /dev/fuse on this machine (modprobe fuse)"
[ -c /dev/loop-control ] || skip "no /dev/loop-control: this kernel has no loop devices"
# systemd-nspawn puts the container in the cgroup it is started from. With no systemd on the
# host nobody made one for it: a fresh one per hierarchy systemd uses, the shell's PID in it.
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
  hierarchies=(/sys/fs/cgroup)
elif grep -q ' /sys/fs/cgroup/systemd .* - cgroup .*name=systemd' /proc/self/mountinfo; then
  hierarchies=(/sys/fs/cgroup/systemd)
  grep -q ' /sys/fs/cgroup/unified .* - cgroup2 ' /proc/self/mountinfo && hierarchies+=(/sys/fs/cgroup/unified)
else
  skip "no cgroup hierarchy for systemd (neither cgroup2 on /sys/fs/cgroup nor name=systemd on /sys/fs/cgroup/systemd)"
fi

trap cleanup EXIT
# A signal (the IT's timeout) ends the run through the same cleanup.
trap 'exit 143' TERM INT
mkdir -p "$work"
: >"$work/loops"
[ -f "$tarball" ] || build_tarball
mkdir -p "$rootfs"
# systemd-nspawn's lock on the tree: /run/systemd/nspawn/locks/inode-DEV:INODE.
lock="/run/systemd/nspawn/locks/inode-$(stat -c '%d:%i' "$rootfs")"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$rootfs" -xf "$tarball"
say "extracted the Debian $suite tree ($tarball)"

# What the operator would unpack: the launcher, the units, the jar and its libraries.
src="$rootfs/root/writeboost"
mkdir -p "$src/target"
cp -a "$repo/fuse-mount" "$repo/README.md" "$repo/systemd" "$src/"
cp -a "$repo/target/writeboost.jar" "$repo/target/lib" "$src/target/"
# No udev in the container: its /dev gets nodes for the loop devices losetup may pick (the
# host's loop devices are the container's too, and other builds may hold the first ones).
nloops=$(( $(ls /sys/block | grep -c '^loop') + 32 ))
for ((n = 0; n < nloops; n++)); do echo "b /dev/loop$n 0660 root disk - 7:$n"; done >"$rootfs/etc/tmpfiles.d/wb-loop-nodes.conf"
echo "$machine" >"$rootfs/etc/hostname"

for h in "${hierarchies[@]}"; do mkdir -p "$h/$cg"; done
# The launcher: systemd-nspawn exits with 133 when the container reboots, and is started
# again, as systemd-nspawn@.service does (RestartForceExitStatus=133).
(
  for h in "${hierarchies[@]}"; do echo "$BASHPID" >"$h/$cg/cgroup.procs"; done
  while :; do
    status=0
    systemd-nspawn -b -D "$rootfs" -M "$machine" --register=no --keep-unit --link-journal=no \
      --bind=/dev/fuse --bind=/dev/loop-control || status=$?
    [ "$status" -eq 133 ] || exit "$status"
  done
) </dev/null >"$console" 2>&1 &
launcher_pid=$!
wait_boot
say "booted systemd $(ct systemctl --version | head -n 1 | cut -d' ' -f2) as PID 1 in container $machine"

# --- the operator's story ----------------------------------------------------------------

ct /root/writeboost/systemd/install >/dev/null
ctsh "mkdir -p /var/lib/writeboost $mp && truncate -s 256M /var/lib/writeboost/demo-disk.img
  cat >/etc/writeboost/demo.conf <<CONF
cache = /var/lib/writeboost/demo-cache.img
backing = data=/var/lib/writeboost/demo-disk.img
mountpoint = $mp
allow_migrate = 1
CONF
  systemctl daemon-reload"
after="$(unit_prop writeboost@demo.service After)"
[[ " $after " == *" srv-wb$$.mount "* ]] || fail "writeboost@demo is not ordered after srv-wb$$.mount (the generator's drop-in): After=$after"
say "installed with systemd/install; /etc/writeboost/demo.conf (mount point $mp); writeboost@demo ordered after srv-wb$$.mount"

# The administrator formats once by hand, the mount point given by the config alone.
out="$(ct fuse-mount --config /etc/writeboost/demo.conf --format --cache-size 64M 2>&1)"
[[ "$out" == *"log /var/log/writeboost/wb$$.log"* ]] && [[ "$out" != *readlink* ]] \
  || fail "fuse-mount --config --format: expected the log /var/log/writeboost/wb$$.log, got: $out"
ct fusermount -u "$mp"
wait_in "clean stop of the formatting server" 60 "grep -q 'stopped cleanly' /var/log/writeboost/wb$$.log"
say "formatted: $out"

ct systemctl enable --now writeboost@demo.service 2>/dev/null
[ "$(unit_prop writeboost@demo.service ActiveState)" = active ] || fail "writeboost@demo is not active after start"
status="$(unit_prop writeboost@demo.service StatusText)"
[[ "$status" == *"dirty line"* ]] || fail "no STATUS line from writeboost@demo: '$status'"
say "writeboost@demo active (READY=1); STATUS: $status"

# The hardening, rated: the unit as installed against a copy without its hardening lines.
[ "$(unit_prop writeboost@demo.service RestrictAddressFamilies)" = AF_UNIX ] \
  || fail "writeboost@demo may open $(unit_prop writeboost@demo.service RestrictAddressFamilies) sockets, not AF_UNIX alone (no metrics-listen)"
[ "$(unit_prop writeboost@demo.service NoNewPrivileges)" = yes ] || fail "writeboost@demo runs without NoNewPrivileges"
ctsh "sed -E '/^(NoNewPrivileges|CapabilityBoundingSet|RestrictAddressFamilies|SystemCallArchitectures|LockPersonality|UMask)=/d' \
  /etc/systemd/system/writeboost@.service >/etc/systemd/system/wb-unhardened@.service && systemctl daemon-reload"
hardened="$(exposure writeboost@demo.service)"
unhardened="$(exposure wb-unhardened@demo.service)"
awk -v h="$hardened" -v u="$unhardened" 'BEGIN { exit !(h + 0 < u + 0) }' \
  || fail "systemd-analyze security: writeboost@demo rates $hardened, not below the unit without its hardening ($unhardened)"
ct rm /etc/systemd/system/wb-unhardened@.service
ct systemctl daemon-reload
say "systemd-analyze security: exposure $hardened for writeboost@demo, $unhardened for the same unit without its hardening lines"

ct systemctl enable --now writeboost-loop@demo.service 2>/dev/null
record_loop
dev="$(ct readlink /run/writeboost/demo/data)"
[[ "$dev" == /dev/loop* ]] || fail "/run/writeboost/demo/data links to '$dev', not a loop device"
ct mkfs.ext4 -q "$dev"
ctsh 'sed s/example/demo/g /usr/local/share/doc/writeboost/examples/srv-data.mount.example >/etc/systemd/system/srv-data.mount
  systemctl daemon-reload && systemctl enable --now srv-data.mount 2>/dev/null'
[ "$(ct findmnt -n -o SOURCE /srv/data)" = "$dev" ] || fail "/srv/data is not $dev: $(ct findmnt /srv/data)"
ctsh 'head -c 8M /dev/urandom >/srv/data/file && sync'
sum="$(ct sha256sum /srv/data/file | cut -d' ' -f1)"
say "writeboost-loop@demo attached $dev; ext4 on it at /srv/data (srv-data.mount); wrote 8 MiB to /srv/data/file"

# A crash: systemd restarts the server, which clears its dead mount and replays its log.
pid="$(unit_prop writeboost@demo.service MainPID)"
ct kill -KILL "$pid"
wait_in "restart of writeboost@demo after kill -9" 90 \
  "[ \$(systemctl show -P NRestarts writeboost@demo) -ge 1 ] && [ \$(systemctl show -P MainPID writeboost@demo) != $pid ] \
   && systemctl is-active -q writeboost@demo && systemctl is-active -q writeboost-loop@demo && systemctl is-active -q srv-data.mount"
record_loop
stale="$(ct journalctl -b -u writeboost@demo.service --no-pager -o cat | grep -m1 'stale FUSE mount' || true)"
[ -n "$stale" ] || fail "the restarted server did not log clearing the stale mount"
# O_DIRECT: past any page cache, through ext4, the loop device and the restarted server.
[ "$(ct dd if=/srv/data/file iflag=direct bs=1M status=none | sha256sum | cut -d' ' -f1)" = "$sum" ] \
  || fail "/srv/data/file changed across the crash and restart"
say "kill -9 $pid: systemd restarted it (PID $(unit_prop writeboost@demo.service MainPID)), loop and mount back, the file intact"
stale="${stale#*MountPoint: }"
say "  the log: ${stale:0:200}"

start=$SECONDS
ct systemctl stop writeboost@demo.service
for u in srv-data.mount writeboost-loop@demo.service writeboost@demo.service; do
  [ "$(unit_prop "$u" ActiveState)" = inactive ] || fail "$u is $(unit_prop "$u" ActiveState) after systemctl stop, not inactive"
done
[ -z "$(our_loops)" ] || fail "loop devices still attached after the stop: $(our_loops)"
# The unit's only stop in this boot (the crash logged none).
ct journalctl -b -u writeboost@demo.service --no-pager -o cat | grep -q 'cache 1 stopped cleanly' \
  || fail "writeboost@demo did not log a clean stop"
say "systemctl stop: mount, loop device and cache down in $((SECONDS - start)) s, stopped cleanly"

# A shutdown with the cache running and no loop device on it, then a boot with everything.
ct systemctl enable writeboost-loop@demo.service srv-data.mount 2>/dev/null
ct systemctl start writeboost@demo.service
old="$ct_pid"
ct systemctl reboot || true
wait_boot "$old"
for u in writeboost@demo.service writeboost-loop@demo.service srv-data.mount; do
  [ "$(unit_prop "$u" ActiveState)" = active ] || fail "$u is $(unit_prop "$u" ActiveState) after the reboot"
done
record_loop
[ "$(ct dd if=/srv/data/file iflag=direct bs=1M status=none | sha256sum | cut -d' ' -f1)" = "$sum" ] \
  || fail "/srv/data/file changed across the reboot"
say "rebooted (cache running, no loop device): cache, loop device and /srv/data back, the file intact"

# The previous boot's shutdown: SIGTERM, not systemd's unmount, stopped the server.
prev="$(ct journalctl -b -1 -u writeboost@demo.service --no-pager -o cat 2>&1 || true)"
[[ "$prev" == *"stop requested by signal"*"cache 1 stopped cleanly"* ]] \
  || fail "the shutdown before the reboot did not stop the server by its signal: $(tail -n 5 <<<"$prev")"

ct systemctl poweroff || true
limit=$((SECONDS + 90))
while kill -0 "$launcher_pid" 2>/dev/null; do
  [ $SECONDS -lt $limit ] || fail "the container did not power off within 90 s"
  sleep 0.2
done
ct_pid=""
status=0
wait "$launcher_pid" || status=$?
launcher_pid=""
[ "$status" -eq 0 ] || fail "systemd-nspawn exited with status $status after the poweroff"
bad="$(plain "$console" | grep -a -e 'FAILED' -e 'Failed unmounting' || true)"
[ -z "$bad" ] || fail "the console has failures: $bad"
for d in $(cat "$work/loops"); do
  ! ours_attached "$d" || fail "$d is still attached after the poweroff"
done
say "powered off (cache, loop device and /srv/data running): no [FAILED] line on the console, no loop device left"
say "passed"
