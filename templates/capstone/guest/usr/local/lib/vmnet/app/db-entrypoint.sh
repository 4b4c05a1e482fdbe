#!/bin/sh
# vmnet capstone: the db container's entrypoint (PostgreSQL 15).
#
# Runs as root in the container, then becomes postgres in the foreground:
#  - first start (no PG_VERSION in $PGDATA): initdb with the password from the
#    secret file, passed to initdb through a file readable only by postgres
#    (--pwfile), never on a command line or in the environment;
#  - later starts: set the role's password to the secret's again, in
#    single-user mode from stdin, so a data directory that survived a new
#    secret still accepts it (and a second start with the same secret is a
#    no-op for the clients);
#  - with --init-only: initialise $PGDATA as on a first start, then exit
#    (the image build runs this once, through vmnet-app-db-prepare, so a
#    VM's first start only sets the password: initdb takes 12 s under TCG);
#  - then exec postgres, listening on every address; pg_hba.conf allows
#    password (SCRAM) logins from loopback and from the container's own
#    networks (samenet: app-net), peer logins on the socket.
# The defaults are the container's paths; the tests point PGDATA,
# PGSOCKETDIR and DB_PASSWORD_FILE at a temporary directory.
set -eu

init_only=
case ${1:-} in
--init-only) init_only=1 ;;
'') ;;
*) echo "usage: db-entrypoint.sh [--init-only]" >&2; exit 2 ;;
esac

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGDATA=${PGDATA:-/var/lib/postgresql/data}
PGSOCKETDIR=${PGSOCKETDIR:-/run/postgresql}
SECRET=${DB_PASSWORD_FILE:-/run/secrets/db-password}
DBUSER=postgres

log() { echo "db: $*" >&2; }
die() { log "$*"; exit 1; }

[ -x "$PGBIN/postgres" ] || die "$PGBIN/postgres is missing: the container rootfs needs postgresql-15"
id "$DBUSER" >/dev/null 2>&1 || die "user $DBUSER is missing from the container rootfs: it comes with postgresql-15"
[ -f "$SECRET" ] || die "the password file $SECRET is missing: bind-mount /etc/vmnet/secrets/db-password there read-only"
[ -s "$SECRET" ] || die "the password file $SECRET is empty: vmnet writes the lab's password there"

as_postgres() { setpriv --reuid="$DBUSER" --regid="$DBUSER" --init-groups -- "$@"; }

umask 077
install -d -o "$DBUSER" -g "$DBUSER" -m 0700 "$PGDATA"
install -d -o "$DBUSER" -g "$DBUSER" -m 0755 "$PGSOCKETDIR"

# A copy of the password that postgres may read (the secret itself is
# root's, mode 0600): in tmpfs (/dev/shm) so it never reaches a disk, removed
# before postgres starts.
pwdir=$(mktemp -d /dev/shm/vmnet-db.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$pwdir"' EXIT
pwfile=$pwdir/pwfile
head -n 1 "$SECRET" | tr -d '\r\n' >"$pwfile"
chown -R "$DBUSER:$DBUSER" "$pwdir"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	log "initialising $PGDATA (first start)"
	as_postgres "$PGBIN/initdb" --pgdata="$PGDATA" --username="$DBUSER" --pwfile="$pwfile" \
		--auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
	cat >"$PGDATA/pg_hba.conf" <<-'EOF'
	# Written by vmnet's db-entrypoint.sh at initdb.
	# TYPE  DATABASE  USER  ADDRESS        METHOD
	local   all       all                  peer
	host    all       all   127.0.0.1/32   scram-sha-256
	host    all       all   ::1/128        scram-sha-256
	# samenet: the subnets of this container's interfaces, i.e. app-net.
	host    all       all   samenet        scram-sha-256
	EOF
	chown "$DBUSER:$DBUSER" "$PGDATA/pg_hba.conf"
elif [ -n "$init_only" ]; then
	log "$PGDATA is initialised already"
else
	log "using the existing data in $PGDATA; setting the $DBUSER password from $SECRET"
	# The statement goes through stdin (printf is a shell builtin: no argv
	# carries it), statement logging is off for this one session, and
	# single-user mode echoes nothing unless asked to (-E).
	pw=$(sed "s/'/''/g" "$pwfile")
	printf "ALTER ROLE %s WITH PASSWORD '%s';\n" "$DBUSER" "$pw" |
		as_postgres "$PGBIN/postgres" --single -D "$PGDATA" \
			-c log_min_error_statement=panic -c log_statement=none \
			-c unix_socket_directories="$PGSOCKETDIR" postgres >/dev/null ||
		die "could not set the $DBUSER password in $PGDATA (is another postgres using it?)"
	pw=
fi
rm -rf "$pwdir"
trap - EXIT
[ -z "$init_only" ] || exit 0

log "starting PostgreSQL on *:5432"
# exec: postgres becomes PID 1 of the container and gets podman's stop
# signal (SIGINT, a fast shutdown) itself.
exec setpriv --reuid="$DBUSER" --regid="$DBUSER" --init-groups -- \
	"$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$PGSOCKETDIR"
