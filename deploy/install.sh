#!/usr/bin/env bash
# Set up AutoSocial on a Debian VPS, from a checkout with release binaries built
# (`cargo build --release --bins`). Idempotent: run it again to upgrade (it installs the new
# binaries, runs migrations through the migrate unit, and restarts the services).
#
#   sudo deploy/install.sh [--workers N]
set -euo pipefail

workers=2
while (($#)); do
    case $1 in
        --workers) workers=${2:?--workers needs a number}; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $workers =~ ^[1-9][0-9]?$ ]] || { echo "install.sh: --workers must be 1-99" >&2; exit 2; }
((EUID == 0)) || { echo "install.sh: run as root (sudo)" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${CARGO_TARGET_DIR:-$repo/target}/release
for b in autosocial-admin autosocial-worker; do
    [[ -x $bin/$b ]] || { echo "install.sh: $bin/$b missing: run 'cargo build --release --bins' first" >&2; exit 1; }
done

echo "== packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends postgresql redis-server nginx ca-certificates

echo "== system user and directories"
id autosocial >/dev/null 2>&1 || useradd --system --home-dir /var/lib/autosocial --shell /usr/sbin/nologin autosocial
install -d -o autosocial -g autosocial -m 0750 /var/lib/autosocial /var/lib/autosocial/media
install -d -o root -g root -m 0750 /etc/autosocial
install -d -m 0755 /opt/autosocial

echo "== database"
systemctl enable --now postgresql redis-server
if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'autosocial'" | grep -q 1; then
    runuser -u postgres -- psql -q -c "CREATE ROLE autosocial LOGIN"
fi
if ! runuser -u postgres -- psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'autosocial'" | grep -q 1; then
    runuser -u postgres -- psql -q -c "CREATE DATABASE autosocial OWNER autosocial"
fi
# the migration needs the citext extension
runuser -u postgres -- psql -q -d autosocial -c "CREATE EXTENSION IF NOT EXISTS citext"

echo "== configuration"
if [[ ! -f /etc/autosocial/autosocial.env ]]; then
    install -m 0600 -o root -g root "$repo/deploy/env.example" /etc/autosocial/autosocial.env
    # local peer connections over the socket as the autosocial user
    sed -i 's#^DATABASE_URL=.*#DATABASE_URL=postgres:///autosocial?host=/var/run/postgresql#' /etc/autosocial/autosocial.env
    echo "   wrote /etc/autosocial/autosocial.env: set AUTOSOCIAL_PUBLIC_URL"
fi
chmod 0600 /etc/autosocial/autosocial.env
if [[ ! -f /etc/autosocial/keys ]]; then
    umask 077
    "$bin/autosocial-admin" keys generate --id "k$(date +%Y%m%d)" > /etc/autosocial/keys
    echo "   generated the vault key in /etc/autosocial/keys (back it up: without it tokens cannot be read)"
fi
chmod 0600 /etc/autosocial/keys

echo "== binaries and units"
install -m 0755 "$bin/autosocial-admin" "$bin/autosocial-worker" /usr/local/bin/
install -m 0644 "$repo/README.md" /opt/autosocial/README.md
# caption templates, card fonts (with their licences): read at run time
rm -rf /opt/autosocial/templates
cp -r "$repo/templates" /opt/autosocial/templates
chmod -R a+rX /opt/autosocial/templates
install -m 0644 "$repo"/systemd/*.service "$repo"/systemd/*.target /etc/systemd/system/
# the target wants workers 01 and 02; more are enabled by instance
systemctl daemon-reload
systemctl enable autosocial.target autosocial-migrate.service autosocial-admin.service
for i in $(seq 1 "$workers"); do systemctl enable "autosocial-worker@$(printf %02d "$i").service"; done
systemctl restart autosocial-migrate.service
systemctl restart autosocial-admin.service
for i in $(seq 1 "$workers"); do systemctl restart "autosocial-worker@$(printf %02d "$i").service"; done

echo "== nginx"
if [[ ! -f /etc/nginx/sites-available/autosocial ]]; then
    install -m 0644 "$repo/deploy/nginx-autosocial.conf" /etc/nginx/sites-available/autosocial
    echo "   installed /etc/nginx/sites-available/autosocial: set server_name and certificates, then"
    echo "   ln -s ../sites-available/autosocial /etc/nginx/sites-enabled/ && nginx -t && systemctl reload nginx"
fi

echo "== done"
echo "   create the first owner (as root):"
echo "   set -a; . /etc/autosocial/autosocial.env; set +a"
echo "   runuser -p -u autosocial -- autosocial-admin user create --agency NAME --email E --role owner"
