#!/bin/sh
# vmnet capstone: the proxy container's entrypoint (nginx).
#
# nginx resolves a host name in proxy_pass through the `resolver` directive
# only (not /etc/resolv.conf), and podman writes aardvark-dns's address
# (app-net's gateway) into the container's /etc/resolv.conf at every start.
# So this script turns resolv.conf's name servers into resolver.conf, puts it
# beside a copy of nginx.conf in the run directory and runs nginx in the
# foreground with that directory as its prefix. The defaults are the
# container's paths; the tests point the three variables elsewhere.
set -eu

CONF=${NGINX_CONF:-/usr/local/lib/vmnet/app/nginx.conf}
RESOLV=${RESOLV_CONF:-/etc/resolv.conf}
RUN=${VMNET_PROXY_RUN:-/run/vmnet-proxy}

die() { echo "proxy: $*" >&2; exit 1; }

[ -r "$CONF" ] || die "$CONF is missing: bind-mount /usr/local/lib/vmnet/app into the container"
[ -r "$RESOLV" ] || die "$RESOLV is missing: podman writes it for containers on app-net"

servers=
while read -r key addr _; do
	[ "$key" = nameserver ] || continue
	# Only the first: podman lists aardvark-dns first, then the guest's own
	# name servers, and nginx asks its resolvers in turn; the upstream ones
	# refuse or do not know "api", which made one request in two fail.
	[ -z "$servers" ] || break
	case $addr in
	*:*) servers="$servers [${addr%%%*}]" ;; # IPv6 in brackets, without a %zone
	?*) servers="$servers $addr" ;;
	esac
done <"$RESOLV"
[ -n "$servers" ] || die "no nameserver in $RESOLV: nginx finds api through aardvark-dns (podman network app-net with DNS on)"

mkdir -p "$RUN"
cp "$CONF" "$RUN/nginx.conf"
printf 'resolver%s valid=5s ipv6=off;\n' "$servers" >"$RUN/resolver.conf"
echo "proxy: resolver$servers; forwarding :8080 to http://api:5000" >&2

# exec: nginx's master becomes PID 1 of the container and gets podman's stop
# signal itself.
exec nginx -e stderr -p "$RUN/" -c "$RUN/nginx.conf" -g 'daemon off;'
