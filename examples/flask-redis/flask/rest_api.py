"""Patient records over HTTPS, stored in Redis over mutual TLS.

The REST API of SCONE's "Confidential Flask Example" (classic rest_api.py), written for Veil's example.
It knows nothing of Veil: its certificates are files under /tls and its settings are environment
variables, all of which the CAS provides after attestation. Errors are JSON objects with the original
status codes (the original answered some of them with the bare word "error").
"""
import json
import os
import random
import sys

import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

FIELDS = ["fname", "lname", "address", "city", "state", "ssn", "email", "dob", "contactphone",
          "drugallergies", "preexistingconditions", "dateadmitted", "insurancedetails"]

app = Flask(__name__)
app.debug = False


def connect():
    db = redis.StrictRedis(
        host=os.environ.get("REDIS_HOST", "redis"),
        port=int(os.environ.get("REDIS_PORT", "6379")),
        ssl=True,
        ssl_keyfile="/tls/client.key",
        ssl_certfile="/tls/client.crt",
        ssl_cert_reqs="required",
        ssl_ca_certs="/tls/redis-ca.crt",
        ssl_check_hostname=True,
    )
    try:
        db.info()  # fail now, not at the first request, when Redis or its TLS is not right
    except Exception as err:  # noqa: BLE001 - any failure to reach Redis ends the program
        print(f"cannot reach redis at {db.connection_pool.connection_kwargs['host']}: {err}", file=sys.stderr)
        sys.exit(1)
    return db


db = None


def error(status, message):
    return jsonify({"error": message, "status": status}), status


@app.errorhandler(HTTPException)
def http_error(err):
    return jsonify({"message": err.description, "status": err.code}), err.code


@app.route("/patient/<string:patient_id>", methods=["GET"])
def get_patient(patient_id):
    stored = db.get(patient_id)
    if stored is None:
        return error(404, f"no patient {patient_id}")
    return jsonify({**json.loads(stored), "id": patient_id})


@app.route("/patient/<string:patient_id>", methods=["POST"])
def post_patient(patient_id):
    if db.exists(patient_id):
        return error(403, f"patient {patient_id} already exists")
    if any(field not in request.form for field in FIELDS):
        return jsonify({"message": "The browser (or proxy) sent a request that this server could not understand."}), 400
    record = {field: request.form[field] for field in FIELDS}
    record["score"] = random.random()
    try:
        db.set(patient_id, json.dumps(record))
    except Exception as err:  # noqa: BLE001 - reported to the client as a server error
        print(f"cannot store patient {patient_id}: {err}", file=sys.stderr)
        return error(500, "the record could not be stored")
    return jsonify({**record, "id": patient_id})


@app.route("/score/<string:patient_id>", methods=["GET"])
def get_score(patient_id):
    stored = db.get(patient_id)
    if stored is None:
        return error(404, f"no patient {patient_id}")
    return jsonify({"id": patient_id, "score": json.loads(stored)["score"]})


if __name__ == "__main__":
    db = connect()
    host = os.environ.get("APP_SERVICE_HOST", "0.0.0.0")
    port = int(os.environ.get("APP_SERVICE_PORT", "4996"))
    app.run(host=host, port=port, threaded=True, ssl_context=("/tls/flask.crt", "/tls/flask.key"))
