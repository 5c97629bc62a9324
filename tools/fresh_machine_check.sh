#!/usr/bin/env bash
# Checks that the README's two commands work on a fresh Debian 12 machine, by making this
# machine as fresh as it can first. DESTRUCTIVE: it PURGES every package tools/setup.sh
# installs (the list is read from `tools/setup.sh --list`, so the two cannot drift), then
# whatever `apt-get autoremove --purge` removes after that, and deletes this checkout's
# build/ folder. Anything else on the machine that needs those packages (other checkouts'
# builds, other users) breaks until tools/setup.sh reinstalls them. Hence it refuses to run
# without --yes. It needs root (or sudo) and the Debian mirrors (setup.sh reinstalls).
#
# In order: clone this checkout's committed HEAD into a temporary directory (first: git is
# one of the packages purged); purge; remove build/; then, in the clone, run
#   tools/test.sh                   (the README's test command)
#   tools/main_job.sh --steps 20    (the README's main job, shortened)
# printing what was purged and each command's exit code and time. Exits non-zero if either
# command fails. Uncommitted changes are not in the clone (a warning says so).
#
#   tools/fresh_machine_check.sh --dry-run   # print what would be purged; change nothing
#   tools/fresh_machine_check.sh --yes       # do it
#   --keep-clone                             # keep the clone (its path is printed)
set -euo pipefail
export LC_ALL=C  # one collation for sort and comm

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

mode="" keep_clone=0
for arg in "$@"; do
  case "$arg" in
    --yes) mode=run ;;
    --dry-run) mode=dry ;;
    --keep-clone) keep_clone=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "fresh_machine_check: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$mode" ]; then
  echo "fresh_machine_check: refusing to run: it purges every package tools/setup.sh installs;" \
    "pass --yes to do it, or --dry-run to see what it would purge" >&2
  exit 2
fi

repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
mapfile -t listed < <("$repo/tools/setup.sh" --list)
[ ${#listed[@]} -gt 0 ] || { echo "fresh_machine_check: tools/setup.sh --list printed nothing" >&2; exit 1; }

installed() { dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 ~ /^.i/ {print $2}' | sed 's/:.*//' | sort -u; }
closure() {  # setup.sh's packages and everything they depend on, recursively
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${listed[@]}" 2>/dev/null | grep -v '^ ' | grep -v '^<' | sort -u
}
report_stayed() {  # stdin: setup.sh's dependencies still installed; $1: would | did
  local stayed
  stayed=$(cat)
  echo "fresh_machine_check: $(echo "$stayed" | grep -c . || true) of setup.sh's dependencies" \
    "$1 stay (installed by hand, or needed by other installed packages); the compilers and" \
    "-dev packages among them:"
  echo "$stayed" | grep -E -- '-dev$|clang|llvm|gcc|g\+\+|^cpp' | fmt -w 100 | sed 's/^/  /'
}
to_purge=()
for p in "${listed[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    to_purge+=("$p")
  fi
done

echo "fresh_machine_check: setup.sh's packages (${#listed[@]}): ${listed[*]}"
echo "fresh_machine_check: installed now, to purge (${#to_purge[@]}): ${to_purge[*]:-none}"
if [ "$mode" = dry ]; then
  if [ ${#to_purge[@]} -gt 0 ]; then
    echo "fresh_machine_check: apt-get's simulation of the purge and autoremove:"
    simulated=$(apt-get -s --autoremove purge "${to_purge[@]}" | awk '/^Purg/ {print $2}' | sort -u)
    echo "$simulated" | fmt -w 100 | sed 's/^/  /'
    comm -23 <(comm -12 <(closure) <(installed)) <(echo "$simulated") | report_stayed would
  fi
  echo "fresh_machine_check: would remove $repo/build, clone $repo's HEAD, then run" \
    "tools/test.sh and tools/main_job.sh --steps 20 in the clone (dry run: nothing done)"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "fresh_machine_check: needs root (or sudo)" >&2; exit 1; }
  sudo=sudo
fi

# 1. The clone, before git goes.
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  echo "fresh_machine_check: warning: uncommitted changes in $repo are not checked" >&2
fi
work=$(mktemp -d /tmp/adacc-fresh.XXXXXX)
clone=$work/adacc
git clone --quiet --no-checkout "$repo" "$clone"
git -C "$clone" fetch --quiet "$repo" HEAD
git -C "$clone" checkout --quiet --detach FETCH_HEAD
echo "fresh_machine_check: cloned $(git -C "$clone" rev-parse --short HEAD) into $clone"

# 2. Purge, and what apt then auto-removes; print what went.
before=$(installed)
export DEBIAN_FRONTEND=noninteractive
if [ ${#to_purge[@]} -gt 0 ]; then
  $sudo apt-get purge -y -qq "${to_purge[@]}" >/dev/null
fi
$sudo apt-get autoremove --purge -y -qq >/dev/null
purged=$(comm -23 <(echo "$before") <(installed))
echo "fresh_machine_check: purged $(echo "$purged" | grep -c . || true) packages:"
echo "$purged" | fmt -w 100 | sed 's/^/  /'
comm -12 <(closure) <(installed) | report_stayed did

# 3. Every build folder: this checkout's (the clone has none).
rm -rf "$repo/build"
echo "fresh_machine_check: removed $repo/build"

# 4. The README's two commands, in the clone.
status=0
run() {  # run NAME COMMAND...
  local name=$1 begin rc=0
  shift
  begin=$(date +%s)
  echo "fresh_machine_check: == $name"
  (cd "$clone" && "$@") || rc=$?
  results+=("$name: exit $rc in $(($(date +%s) - begin)) s")
  [ "$rc" -eq 0 ] || status=1
}
results=()
run "tools/test.sh" tools/test.sh
run "tools/main_job.sh --steps 20" tools/main_job.sh --steps 20

echo "fresh_machine_check: results"
printf '  %s\n' "${results[@]}"
if [ "$keep_clone" -eq 1 ]; then
  echo "fresh_machine_check: the clone is kept in $clone"
else
  rm -rf "$work"
fi
exit "$status"
