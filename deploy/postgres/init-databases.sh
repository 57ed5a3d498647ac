#!/bin/bash
# Creates one database per component on the first start of an empty data volume
# (the postgres image runs /docker-entrypoint-initdb.d/*.sh once). Each component keeps its
# own schema in its own database and migrates it itself (`python -m <component> migrate`).
set -euo pipefail

for database in identity licensing distribution forum gateway; do
    echo "creating database $database"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -c "CREATE DATABASE \"$database\" OWNER \"$POSTGRES_USER\""
done
