#!/usr/bin/env bash
# Creates the certificates for an orderkv cluster with TLS (docs/operations.md "TLS").
#
#   scripts/make-certs.sh DIR [NODES [IPS]]
#
#   DIR    created if absent; the files below are (over)written there
#   NODES  how many node certificates: node1 .. nodeN (default 3)
#   IPS    comma-separated extra IP addresses every node certificate names,
#          e.g. 169.254.7.1,169.254.7.2,169.254.7.3 or 10.0.0.5
#
# Writes, all PEM:
#   ca.crt ca.key             the cluster's CA (keep ca.key offline in production)
#   nodeI.crt nodeI.key       node I: serves clients and peers, and is the client
#                             identity when it dials its peers (mutual TLS);
#                             SANs: IP 127.0.0.1, IP ::1, DNS localhost, + IPS
#   client.crt client.key     a client identity (CN orderkv-client), for
#                             liborderkv / the shell against nodes that require
#                             client certificates (the default with TLS)
#
# Nodes are dialled by IP address, and gRPC checks the server certificate's
# name against the host dialled, so every address a node is reached at must be
# an IP SAN of its certificate. Keys are EC P-256, certificates valid 825 days.
# Needs openssl (Debian: apt-get install openssl). Keys are created mode 0600.
set -euo pipefail

usage() { echo "usage: scripts/make-certs.sh DIR [NODES [IPS]]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 3 ] || usage
dir=$1
nodes=${2:-3}
ips=${3:-}
[[ "$nodes" =~ ^[0-9]+$ ]] && [ "$nodes" -ge 1 ] && [ "$nodes" -le 64 ] ||
  { echo "make-certs: NODES must be 1..64, not '$nodes'" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-certs: openssl not found (apt-get install openssl)" >&2; exit 1; }

san="IP:127.0.0.1,IP:::1,DNS:localhost"
if [ -n "$ips" ]; then
  IFS=',' read -r -a extra <<<"$ips"
  for ip in "${extra[@]}"; do
    [[ "$ip" =~ ^[0-9A-Fa-f.:]+$ ]] || { echo "make-certs: '$ip' is not an IP address" >&2; exit 2; }
    san="$san,IP:$ip"
  done
fi

mkdir -p "$dir"
umask 077
days=825
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# The CA.
key "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" -subj "/CN=orderkv cluster CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$dir/ca.crt" 2>/dev/null

# sign NAME CN EXTFILE: NAME.key + NAME.crt signed by the CA.
sign() {
  key "$dir/$1.key"
  openssl req -new -key "$dir/$1.key" -subj "/CN=$2" -out "$tmp/$1.csr" 2>/dev/null
  openssl x509 -req -in "$tmp/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -days "$days" -sha256 -extfile "$3" -out "$dir/$1.crt" 2>/dev/null
}

# Node certificates serve (serverAuth) and dial peers (clientAuth).
cat >"$tmp/node.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EOF
for i in $(seq 1 "$nodes"); do
  sign "node$i" "orderkv-node$i" "$tmp/node.ext"
done

cat >"$tmp/client.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EOF
sign client orderkv-client "$tmp/client.ext"

chmod 0644 "$dir"/*.crt
echo "make-certs: CA, $nodes node certificate(s) and a client certificate in $dir (SANs: $san)"
