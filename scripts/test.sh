#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine with
# Python 3.11, then run the whole suite.  The README's quick start and .ci/run
# both call exactly this.  Safe to run again: it installs only what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real servers the backend tests start on loopback, and the peer tools the
# benchmark compares with.  (Debian: sshd, XRootD's HTTP server, xxhsum, ...)
# unshare, setpriv and mount: the atime tests mount a strictatime tmpfs in a
# mount namespace of their own and audit as an unprivileged account.
# fish, tcsh and zsh are login shells of SFTP test accounts (remote hashing
# must run the same command under each).  slurm-wlm and munge: the Slurm
# example runs on a single-node cluster the test starts.
# rsync, rclone: the tests run the commands threetwoone plan prints.
APT_PACKAGES=(openssh-server openssh-client xxhash hashdeep rclone rsync
              xrootd-server xrootd-server-plugins xrootd-client
              prometheus chromium util-linux mount fish tcsh zsh slurm-wlm munge)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
