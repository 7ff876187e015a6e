#!/usr/bin/env bash
# A certificate authority and a server certificate for the compose MariaDB and Valkey, so the stack
# deployed into LocalStack connects with TLS and verification on, as it does in AWS. Written to
# localstack/certs/ once (not committed); the deploy script ships ca.pem in the layer.
set -euo pipefail
cd "$(dirname "$0")"
[ -f certs/server.pem ] && exit 0
mkdir -p certs && cd certs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=coupon local CA" \
  -keyout ca-key.pem -out ca.pem -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=coupon local services" \
  -keyout server-key.pem -out server.csr 2>/dev/null
# The names the Lambda containers use (host.docker.internal, the compose service names) and the host's.
printf '%s\n' "subjectAltName=DNS:host.docker.internal,DNS:mariadb,DNS:valkey,DNS:localhost,IP:127.0.0.1" \
  "extendedKeyUsage=serverAuth" "authorityKeyIdentifier=keyid" "subjectKeyIdentifier=hash" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
  -extfile server.ext -out server.pem 2>/dev/null
# The servers run as their own users inside the containers.
chmod 644 server-key.pem server.pem ca.pem
echo "localstack/certs: CA and server certificate written"
