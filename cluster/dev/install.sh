#!/usr/bin/env bash
# Install what the dev Slurm cluster needs (Debian/Ubuntu, run as root): Slurm 22.05
# (slurmctld, slurmd, client commands), slurmdbd, munge, MariaDB server and client.
# Idempotent: packages already installed are not touched, and when everything is present
# it prints one line and exits in well under a second (no apt-get call at all).
#
# The packages' init scripts are kept from starting system daemons during the install
# (a temporary /usr/sbin/policy-rc.d when none exists): start.sh runs its own daemons
# with their own state, so a system munged/mariadbd/slurmd would only get in the way.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client slurmdbd slurm-wlm-mysql-plugin munge
          mariadb-server mariadb-client)

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install.sh: all present (${PACKAGES[*]}); nothing to do"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: missing ${missing[*]}; run as root (apt-get install)" >&2
    exit 1
fi

t0=$(date +%s)
echo "install.sh: installing ${missing[*]}"

policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, written by pul cluster/dev/install.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() { if [[ $made_policy -eq 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
lists=/var/lib/apt/lists
if [[ -z $(find "$lists" -maxdepth 1 -name '*Packages*' -mmin -1440 -print -quit 2>/dev/null) ]]; then
    echo "install.sh: apt-get update"
    apt-get update -qq
fi
apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
echo "install.sh: installed ${missing[*]} in $(( $(date +%s) - t0 )) s"
