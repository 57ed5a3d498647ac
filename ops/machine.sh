#!/usr/bin/env bash
# Makes this machine ready for `make test` (ops/machine.sh test) or `make run` (ops/machine.sh run),
# so a fresh machine needs only the README's two commands. Cheap when nothing is missing: a few
# `command -v` look-ups and port probes, no apt, no Erlang tool.
#
#  test: the Debian packages the tests use (chromium: browser tests; docker-compose: the compose
#        file's tests and its schema; nginx-light: the edge tests; wrk: the benchmarks' load
#        generator), then the services below.
#  run:  only the services.
#  services: the local PostgreSQL (test only) and RabbitMQ are started when they are installed but
#        down, and RabbitMQ's management plugin is enabled (licensing asks its API about partners'
#        broker users). A service whose URL points at another host is left alone.
#
# Missing packages are installed when it can (root with apt-get: one `apt-get update`, then one
# `apt-get install` of just the missing ones); otherwise it stops (exit 2) printing the exact
# command to run. Nothing is ever removed.
set -euo pipefail

mode="${1:-test}"
case "$mode" in test | run) ;; *) echo "usage: $0 test|run" >&2; exit 64 ;; esac

# Debian keeps nginx and RabbitMQ's tools in sbin, which is not on a plain user's PATH.
# CC_MACHINE_SBIN exists for this script's own tests (a PATH of stubs only).
sbin="${CC_MACHINE_SBIN-/usr/local/sbin:/usr/sbin:/sbin}"
[ -n "$sbin" ] && PATH="$PATH:$sbin"
export PATH

say() { echo "machine: $*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

# --- Debian packages: (command it provides, package) ---------------------------------------
packages() {
  local missing=()
  have chromium || missing+=(chromium)
  have docker-compose || missing+=(docker-compose)
  have nginx || missing+=(nginx-light)
  have wrk || missing+=(wrk)
  [ ${#missing[@]} -eq 0 ] && return 0

  local command="apt-get install -y ${missing[*]}"
  if ! have apt-get; then
    say "missing: ${missing[*]} (Debian package names). This machine has no apt-get: install them, e.g."
    echo "  sudo $command" >&2
    exit 2
  fi
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${missing[*]}. Run this once, then the make command again:"
    echo "  sudo $command" >&2
    exit 2
  fi
  say "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# --- services -------------------------------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

local_url() {  # the URL's host is this machine (or the URL is unset: the default is this machine's)
  case "${1:-localhost}" in
    *://localhost[:/]* | *://127.0.0.1[:/]* | *@localhost[:/]* | *@127.0.0.1[:/]* | localhost) return 0 ;;
    *) return 1 ;;
  esac
}

wait_port() {
  for _ in $(seq 60); do port_open 127.0.0.1 "$1" && return 0; sleep 0.5; done
  return 1
}

stop_with() {
  say "$1. Start it, then run the make command again:"
  echo "  $2" >&2
  exit 2
}

postgresql() {
  local_url "${POSTGRES_URL:-}" || return 0
  port_open 127.0.0.1 5432 && return 0
  have pg_ctlcluster || return 0  # not installed: the tests say what to do (or use testcontainers)
  local start="pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main start"
  say "PostgreSQL is down; starting it"
  $start >&2 || stop_with "PostgreSQL could not be started" "sudo $start"
  wait_port 5432 || stop_with "PostgreSQL does not answer on 127.0.0.1:5432" "sudo $start"
}

rabbitmq() {
  local_url "${AMQP_URL:-}" || return 0
  have rabbitmqctl || return 0  # not installed: ops/run.py and the tests say what to do
  if ! port_open 127.0.0.1 5672; then
    say "RabbitMQ is down; starting it"
    # A node left with its application stopped (a fault test that died midway) only needs start_app.
    rabbitmqctl start_app >/dev/null 2>&1 || rabbitmq-server -detached >&2 ||
      stop_with "RabbitMQ could not be started" "sudo rabbitmq-server -detached"
    wait_port 5672 || stop_with "RabbitMQ does not answer on 127.0.0.1:5672" "sudo rabbitmq-server -detached"
  fi
  # The management API's port answers once the plugin runs; enabling it restarts nothing.
  if ! port_open 127.0.0.1 15672; then
    say "enabling RabbitMQ's management plugin"
    rabbitmq-plugins enable rabbitmq_management >/dev/null ||
      stop_with "the management plugin could not be enabled" "sudo rabbitmq-plugins enable rabbitmq_management"
    wait_port 15672 || stop_with "RabbitMQ's management API does not answer on 127.0.0.1:15672" \
      "sudo rabbitmq-plugins enable rabbitmq_management"
  fi
}

if [ "$mode" = test ]; then
  packages
  postgresql
fi
rabbitmq
