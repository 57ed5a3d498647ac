#!/bin/sh
# Renders the broker's boot definitions, then runs the given command (the image's own
# docker-entrypoint.sh rabbitmq-server).
#
# RabbitMQ skips its default user and vhost when it loads definitions at boot, and a
# definitions file cannot read the environment; so the vhost, the application user (with the
# password from RABBITMQ_PASSWORD) and its permissions are written here, in front of the
# topology generated from the event catalogue. Nothing secret is stored in the repository.
set -eu

: "${RABBITMQ_USER:?set RABBITMQ_USER}"
: "${RABBITMQ_PASSWORD:?set RABBITMQ_PASSWORD}"
topology=${CC_TOPOLOGY_FILE:-/etc/rabbitmq/customer-center-topology.json}
target=${CC_DEFINITIONS_FILE:-/etc/rabbitmq/customer-center-definitions.json}

json_string() {
    case $1 in
        *[[:cntrl:]]*) echo "entrypoint.sh: control characters are not allowed in RabbitMQ credentials" >&2; exit 64 ;;
    esac
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

user=$(json_string "$RABBITMQ_USER")
password=$(json_string "$RABBITMQ_PASSWORD")
if [ "$(head -c 1 "$topology")" != "{" ]; then
    echo "entrypoint.sh: $topology is not a JSON object (run make definitions)" >&2
    exit 65
fi

umask 077
{
    printf '{\n  "vhosts": [{"name": "/"}],\n'
    printf '  "users": [{"name": %s, "password": %s, "tags": "administrator"}],\n' "$user" "$password"
    printf '  "permissions": [{"user": %s, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],' "$user"
    tail -c +2 "$topology"  # the topology object without its opening brace
} > "$target.tmp"
mv "$target.tmp" "$target"
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    chown rabbitmq:rabbitmq "$target"
fi

exec "$@"
