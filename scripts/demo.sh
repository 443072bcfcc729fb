#!/usr/bin/env bash
# The main job: the confidential patient-records mesh of SCONE's "Confidential Flask Example" on this
# machine. `veil up` starts an embedded CAS, encrypts the API's code, uploads one session per service and
# starts Redis and the Flask API under `veil run`; then this script does what the example's user does:
# POST a patient, read it back, read its score — with curl verifying the API against the CA certificate
# fetched from the CAS — and shows that Redis refuses a client without the CAS-issued certificate.
# The mesh keeps running until Ctrl-C; DEMO_STOP=1 stops it after the walkthrough.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO_DIR:-.veil-demo}
mkdir -p "$DEMO"
export VEIL_HOME="$(cd "$DEMO" && pwd)/home"
rm -f "$DEMO/target/up.json"

node bin/veil.js up -f examples/flask-redis/mesh.yaml -t "$DEMO/target" &
UP=$!
# However this script ends, veil up is told to stop and waited for: it stops every service before it exits
# (and the kernel ends them if veil up itself is killed), so the next run finds the ports free. A signal
# ends the script with the shell's status for it; the EXIT trap then does the stopping.
stop_mesh() { kill -TERM $UP 2>/dev/null || true; wait $UP 2>/dev/null || true; }
trap stop_mesh EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
for _ in $(seq 600); do [ -f "$DEMO/target/up.json" ] && break; kill -0 $UP 2>/dev/null || exit 1; sleep 0.1; done
[ -f "$DEMO/target/up.json" ] || { echo "the mesh did not come up"; exit 1; }

field() { node -e "const u=JSON.parse(require('fs').readFileSync(0)); console.log($1)" < "$DEMO/target/up.json"; }
CAS=$(field u.cas_url); FPR=$(field u.cas_fingerprint)
API=$(field u.services.flask.address); PORT=$(field u.services.flask.port)
REDIS=$(field u.services.redis.address); REDIS_PORT=$(field u.services.redis.port)

echo; echo "== the user attests the CAS and fetches the API's CA certificate from /v1/values"
node bin/veil.js cas attest "$CAS" -c "$FPR"
node bin/veil.js cas show-certificate "$CAS" > "$DEMO/cas-ca.pem"
curl -sS --cacert "$DEMO/cas-ca.pem" "$CAS/v1/values/session=patient-records/flask" \
  | node -e "process.stdout.write(JSON.parse(require('fs').readFileSync(0,'utf8')).values.api_ca_cert.value)" > "$DEMO/cacert.pem"
openssl x509 -in "$DEMO/cacert.pem" -noout -subject

call() { curl -sS --cacert "$DEMO/cacert.pem" --resolve "api:$PORT:$API" -w '  [HTTP %{http_code}]\n' "$@"; }
PATIENT="patient_$RANDOM"
echo; echo "== POST /patient/$PATIENT (the seed's form data)"
call -X POST "https://api:$PORT/patient/$PATIENT" \
  -d "fname=Jane&lname=Doe&address='123 Main Street'&city=Richmond&state=Washington&ssn=123-223-2345&email=nr@aaa.com&dob=01/01/2010&contactphone=123-234-3456&drugallergies='Sulpha, Penicillin, Tree Nut'&preexistingconditions='diabetes, hypertension, asthma'&dateadmitted=01/05/2010&insurancedetails='Primera Blue Cross'"
echo "== GET /patient/$PATIENT"
call "https://api:$PORT/patient/$PATIENT"
echo "== GET /score/$PATIENT"
call "https://api:$PORT/score/$PATIENT"

echo; echo "== redis-cli without the CAS-issued client certificate is refused"
redis-cli --tls --insecure -h "$REDIS" -p "$REDIS_PORT" PING 2>&1 | sed 's/^/   /' || true

if [ "${DEMO_STOP:-0}" = 1 ]; then echo; echo "demo finished (DEMO_STOP=1): stopping the mesh"; exit 0; fi
echo; echo "The mesh keeps running (addresses in $DEMO/target/up.json); Ctrl-C stops it."
wait $UP
