#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or exit 1.
# Order: PATH (python3.13, python3.12, python3, python), pyenv's versions, `uv python find`.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

for name in python3.12 python3.13 python3 python; do
  p=$(command -v "$name" 2>/dev/null) || continue
  if ok "$p"; then echo "$p"; exit 0; fi
done

if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -V); do
    if ok "$p"; then echo "$p"; exit 0; fi
  done
fi

if command -v uv >/dev/null 2>&1; then
  p=$(uv python find '>=3.12' 2>/dev/null) && ok "$p" && { echo "$p"; exit 0; }
fi
exit 1
