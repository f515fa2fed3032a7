#!/usr/bin/env bash
# Run a command (the test suite) and fail if it changed the machine's own Python: the project
# installs into .venv only. Compares `pip list` of every system python3 before and after.
#   scripts/system-python-unchanged.sh COMMAND [ARGS...]
set -euo pipefail
# The system interpreters: python3 on PATH with any virtual environment left out, and Debian's.
system_path=$(tr ':' '\n' <<<"$PATH" | grep -v -e '/\.venv/bin$' -e "^${VIRTUAL_ENV:-/nonexistent}/bin$" | paste -sd:)
mapfile -t pythons < <({ PATH=$system_path command -v python3 || true; [[ -x /usr/bin/python3 ]] && echo /usr/bin/python3; } | awk 'NF && !seen[$0]++')
snapshot() {
  local py
  for py in "${pythons[@]}"; do
    echo "## $py"
    # No pip (a bare Debian python3) still has a package list: the dist-info folders it sees.
    "$py" -m pip list --format=freeze --disable-pip-version-check 2>/dev/null \
      || "$py" -c 'import importlib.metadata as m; print("\n".join(sorted(f"{d.name}=={d.version}" for d in m.distributions())))'
  done
}
before=$(mktemp) after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
snapshot >"$before"
status=0
"$@" || status=$?
snapshot >"$after"
if ! diff -u "$before" "$after"; then
  echo "FAIL: the command changed the system Python's packages (diff above: - before, + after)" >&2
  exit 1
fi
echo "system Python untouched: pip list of ${pythons[*]} is the same before and after ($(grep -vc '^##' "$before") packages)"
exit "$status"
