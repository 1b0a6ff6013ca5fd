#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
# It installs redis-server when missing; the tests start their own
# redis-server processes on free loopback ports (or use REDIS_URL when set).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: installing redis-server"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
# The Python client's tests run Debian's python3 (3.10 or later) with
# redis-py (python3-redis, 4.3 on Debian 12: redis.asyncio) and mypy;
# STORAGEGEN_PYTHON names another interpreter that has both. With CI set,
# a missing one fails those tests instead of skipping them.
python=${STORAGEGEN_PYTHON:-/usr/bin/python3}
if ! "$python" -c 'import redis.asyncio, mypy' >/dev/null 2>&1; then
  echo "test.sh: installing python3, python3-redis and python3-mypy"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-redis python3-mypy >/dev/null
fi
"$python" -c 'import sys, redis, mypy.version; print("test.sh: python", sys.version.split()[0], "redis-py", redis.__version__, "mypy", mypy.version.__version__)'
# The dashboard's browser test (internal/dashboard TestBrowser) drives
# Debian's chromium, headless, through chromedp; STORAGEGEN_CHROMIUM names
# another binary. With CI set, a missing browser fails that test instead
# of skipping it.
chromium=${STORAGEGEN_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  echo "test.sh: installing chromium"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
echo "test.sh: $("$chromium" --version 2>/dev/null || echo "$chromium: no version")"
# Debian's package starts a system service on 6379; the tests do not use it.
# REDIS_URL, when set, must not be exported to this script: the runs on a
# cluster and on a Sentinel group start their own (redistest.Main refuses
# a REDIS_URL of another topology than STORAGEGEN_TEST_TOPOLOGY's).
# The same binary runs the cluster nodes and the sentinels of
# internal/redistest (redis-server --cluster-enabled yes, --sentinel): no
# other package is needed, but Redis 7.0 or later is (cluster-port,
# SENTINEL DEBUG).
redis-server --version

echo "test.sh: go vet (and for darwin and windows, where the Linux-only test code must stay out)"
go vet ./...
GOOS=darwin go vet ./...
GOOS=windows go vet ./...

echo "test.sh: gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

echo "test.sh: storagegen -check, lint"
# The same flags as the go:generate directive, read from it, so that the
# check covers exactly what go generate writes.
gen_args=$(sed -n 's|^//go:generate go run ./cmd/storagegen ||p' generate.go)
go run ./cmd/storagegen -check $gen_args
go run ./cmd/storagegen lint -schema schema.yaml

echo "test.sh: go test -race"
go test -race -count=1 -timeout 20m ./...

echo "test.sh: allocation tests, without -race"
# The race detector's sync.Pool drops items at random, so allocation
# counts are only exact without it; these tests skip under -race.
go test -count=1 -run 'NoAllocs' ./runtime

# The integration packages again on the other topologies (the run above is
# on one server): a Redis Cluster of 3 primaries and 3 replicas, and a
# Sentinel group of a primary, a replica and 3 sentinels, each started by
# the packages' TestMain (internal/redistest.Main) and named by a
# redis+cluster:// or redis+sentinel:// URL. STORAGEGEN_TEST_TOPOLOGY
# selects one for a run of your own.
integration="./runtime ./generated"
for topology in cluster sentinel; do
  echo "test.sh: go test -race on a $topology ($integration)"
  STORAGEGEN_TEST_TOPOLOGY=$topology go test -race -count=1 -timeout 20m $integration
done
