#!/usr/bin/env bash
# Checks that every relative link in README.md and docs/*.md names a file or directory
# inside this repository (a user's clone has nothing beside it). Web links (http, https,
# mailto) and in-page anchors are not checked. Prints each bad link as FILE: TARGET and
# exits 1 if there is one.
#
#   tools/check_doc_links.sh            (from the repository root or anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)

bad=0
for file in README.md docs/*.md; do
  dir=$(dirname "$file")
  # [text](target) and ![alt](target); the target ends at the first ')' or space.
  while IFS= read -r target; do
    case "$target" in
      http://* | https://* | mailto:* | '#'*) continue ;;
    esac
    path=${target%%#*}
    resolved=$(realpath -m -- "$dir/$path")
    if [[ "$path" == /* || ( "$resolved" != "$root" && "$resolved" != "$root"/* ) ]]; then
      echo "$file: $target (outside the repository)"
      bad=1
    elif [[ ! -e "$resolved" ]]; then
      echo "$file: $target (no such file)"
      bad=1
    fi
  done < <(grep -o '\](\([^) ]*\)' "$file" | sed 's/^](//')
done
if [[ $bad -ne 0 ]]; then
  exit 1
fi
echo "check_doc_links: every relative link in README.md and docs/*.md resolves inside the repository"
