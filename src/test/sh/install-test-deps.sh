#!/usr/bin/env bash
# Installs the system tools the test suite drives for real (loop devices, FUSE, mkfs/e2fsck,
# fio, systemd-analyze, systemd-nspawn and debootstrap, promtool and the Prometheus server).
# Run by Maven before the tests; does nothing when everything is already there.
set -u
need=()
command -v losetup    >/dev/null 2>&1 || need+=(mount)
command -v mkfs.ext4  >/dev/null 2>&1 || need+=(e2fsprogs)
command -v fio        >/dev/null 2>&1 || need+=(fio)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v fusermount >/dev/null 2>&1 || need+=(fuse)
# The boot test (e2e.SystemdBootIT): a Debian tree to boot, and systemd-nspawn to boot it.
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
# The metrics test (e2e.MetricsTest): promtool checks the exposition, a Prometheus server scrapes it.
{ command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } || need+=(prometheus)
ldconfig -p 2>/dev/null | grep -q 'libfuse\.so\.2' || need+=(libfuse2)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: missing packages: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
  exit 0
fi
echo "install-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 && apt-get install -y -qq "${need[@]}" >&2 \
  || echo "install-test-deps: apt-get failed; tests that need ${need[*]} will fail" >&2
exit 0
