#!/usr/bin/env bash
# The main job until the demo mesh exists: start a CAS, attest it, upload the Confidential Flask Example's
# two policies (Redis first: its exports name a session that does not exist yet), read them back, and
# fetch the public API CA certificate with curl, as the example's users do.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO_DIR:-.veil-demo}
PORT=${DEMO_PORT:-8081}
export VEIL_HOME="$PWD/$DEMO/home"
rm -rf "$DEMO"; mkdir -p "$DEMO"
veil() { node bin/veil.js "$@"; }

# node directly (not the veil function): $! must be the CAS itself, so the trap below stops it.
node bin/veil.js cas serve --listen "127.0.0.1:$PORT" --data "$DEMO/cas" >"$DEMO/cas.out" 2>"$DEMO/cas.log" &
CAS_PID=$!
trap 'kill $CAS_PID 2>/dev/null; wait $CAS_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q fingerprint "$DEMO/cas.out" 2>/dev/null && break; sleep 0.1; done
cat "$DEMO/cas.out"
URL=$(sed -n 's/^CAS listening at //p' "$DEMO/cas.out")
FPR=$(sed -n 's/^CA fingerprint (SHA-256): //p' "$DEMO/cas.out")
[ -n "$URL" ] || { echo "the CAS did not start:"; cat "$DEMO/cas.log"; exit 1; }

echo "== attest the CAS by its fingerprint"
veil cas attest "$URL" -c "$FPR"

SUFFIX="$RANDOM-$RANDOM"
VARS=(-e "FLASK_SESSION=FlaskSession-$SUFFIX" -e "REDIS_SESSION=RedisSession-$SUFFIX"
      -e "MRENCLAVE=$(openssl rand -hex 32)" -e "SCONE_FSPF_KEY=$(openssl rand -hex 32)" -e "SCONE_FSPF_TAG=$(openssl rand -hex 16)")
echo "== upload the Redis policy, then the Flask policy"
veil session create -f examples/flask-redis/policies/redis-session.yaml "${VARS[@]}"
veil session create -f examples/flask-redis/policies/flask-session.yaml "${VARS[@]}"

echo "== read the Flask session back (no secret value in it)"
veil session read "FlaskSession-$SUFFIX" | head -n 20
echo "   ..."

echo "== the public API CA certificate, as the example's users fetch it"
veil cas show-certificate > "$DEMO/cas-ca.pem"
curl -sS --cacert "$DEMO/cas-ca.pem" "$URL/v1/values/session=FlaskSession-$SUFFIX" > "$DEMO/values.json"
node -e "process.stdout.write(JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')).values.api_ca_cert.value)" \
  "$DEMO/values.json" > "$DEMO/cacert.pem"
openssl x509 -in "$DEMO/cacert.pem" -noout -subject -ext basicConstraints

echo "== update the Flask session (veil fills in the predecessor)"
veil session update -f examples/flask-redis/policies/flask-session.yaml "${VARS[@]}"
echo "demo finished: the CAS keeps its data under $DEMO/cas"
