#!/usr/bin/env bash
# The Debian/Ubuntu packages the test suite needs, installed when missing (README, docs/contributing.md
# and .ci/run call this one script). Needs root, or sudo; says so in one line otherwise.
#   systemd-analyze (systemd)          the unit files in deploy/ are checked with systemd-analyze verify
#   flock (util-linux)                 the cron recipe
#   timeout (coreutils)                the README's scheduler block is bounded with it
#   strace                             fault injection in tests/test_crash_safety.py
#   chromium + chromedriver            the HTML report is opened in a real headless browser
#   postgresql                         tests/pg.py starts a throwaway cluster (SQL source, MLflow backend, Airflow's metadata)
#   redis-server                       the broker of the Airflow CeleryExecutor test (tests/test_airflow_celery.py)
set -euo pipefail

need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v flock >/dev/null 2>&1 || need+=(util-linux)
command -v timeout >/dev/null 2>&1 || need+=(coreutils)
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)

if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system packages: missing ${need[*]}, and this is not a Debian or Ubuntu system (no apt-get); install them by hand, see docs/contributing.md" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || { [ -t 0 ] && command -v sudo >/dev/null 2>&1; }; then
  as_root=(sudo)
else
  echo "system packages: missing ${need[*]}; run this as root or with sudo (apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "system packages: installing ${need[*]}"
"${as_root[@]}" apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
