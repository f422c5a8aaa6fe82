#!/usr/bin/env bash
# Installs what the lab, the demo and the tests need on a Debian machine, as root. Idempotent: when
# every tool is there it changes nothing and touches no network. README's first command and .ci/run
# both call it.
#
#   bash lab/install.sh              install what is missing
#   bash lab/install.sh --simulate   resolve every package with apt-get --simulate, installed or
#                                    not, and change nothing (the install test uses it)
#
# NATMAPPER_APT_LISTS=DIR points apt at another package-list directory (the install test gives it
# an empty one, as on a brand-new machine).
set -euo pipefail

# command:package for every tool the lab scripts, the tests and the benchmark call.
TOOLS=(ip:iproute2 nft:nftables miniupnpd:miniupnpd-nftables upnpc:miniupnpc natpmpc:natpmpc radvd:radvd
  sysctl:procps curl:curl python3:python3 perl:perl-base flock:util-linux setpriv:util-linux
  unshare:util-linux systemd-analyze:systemd)

say() { printf 'lab/install.sh: %s\n' "$*"; }
die() { printf 'lab/install.sh: %s\n' "$*" >&2; exit "${2:-1}"; }

simulate=no
case ${1:-} in
  '') ;;
  --simulate) simulate=yes ;;
  *) die "usage: bash lab/install.sh [--simulate]" 2 ;;
esac

[[ $(uname -s) == Linux ]] || die "the lab needs Linux (network namespaces); this is $(uname -s)" 2
[[ $(id -u) == 0 ]] || die "must run as root (it installs Debian packages): sudo bash lab/install.sh" 2
command -v apt-get >/dev/null || die "needs apt-get (Debian or Ubuntu); install by hand: ${TOOLS[*]#*:}" 2

has_tool() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]; }

packages=()
for pair in "${TOOLS[@]}"; do
  if [[ $simulate == yes ]] || ! has_tool "${pair%%:*}"; then
    [[ " ${packages[*]} " == *" ${pair#*:} "* ]] || packages+=("${pair#*:}")
  fi
done
if ((${#packages[@]} == 0)); then
  say "every lab tool is installed"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt_options=(-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
if [[ -n ${NATMAPPER_APT_LISTS:-} ]]; then
  # Its own cache too, so that the machine's package cache is not rebuilt from these lists.
  mkdir -p "$NATMAPPER_APT_LISTS/partial" "$NATMAPPER_APT_LISTS/cache/archives/partial"
  apt_options+=(-o "Dir::State::Lists=$NATMAPPER_APT_LISTS" -o "Dir::Cache=$NATMAPPER_APT_LISTS/cache")
fi

# A brand-new machine has empty package lists: every install then fails with "Unable to locate
# package". Update only when the lists lack one of our packages (`apt-cache madison` reads the
# lists alone, not what dpkg has installed), so a machine that has them stays offline.
unlisted() {
  local package
  for package in "${packages[@]}"; do
    [[ -n $(apt-cache "${apt_options[@]}" madison "$package" 2>/dev/null) ]] || printf '%s ' "$package"
  done
}
missing=$(unlisted)
if [[ -n $missing ]]; then
  say "updating the package lists (apt-get update): they do not list ${missing% }"
  apt-get "${apt_options[@]}" update -qq --error-on=any >/dev/null 2>&1 ||
    die "apt-get update failed: the Debian package source cannot be reached; check /etc/apt/sources.list* and the network, then run again"
  missing=$(unlisted)
  [[ -z $missing ]] || die "the package lists have no ${missing% } (is this Debian 12 or later, with the main component enabled?)"
fi

if [[ $simulate == yes ]]; then
  apt-get "${apt_options[@]}" install --simulate --no-install-recommends "${packages[@]}" >/dev/null ||
    die "apt-get --simulate install ${packages[*]} failed"
  say "resolved: ${packages[*]}"
  exit 0
fi

# miniupnpd's package would start a daemon in the machine's own network namespace, whose gateway
# and multicast group are not ours: forbid service starts during the install (policy-rc.d exit 101).
policy=/usr/sbin/policy-rc.d
created_policy=no
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=yes
fi
remove_policy() { [[ $created_policy == no ]] || rm -f "$policy"; }
trap remove_policy EXIT

say "installing ${packages[*]}"
apt-get "${apt_options[@]}" install -y -qq --no-install-recommends "${packages[@]}" >/dev/null ||
  die "apt-get install ${packages[*]} failed"
say "done"
