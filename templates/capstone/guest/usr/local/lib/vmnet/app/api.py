#!/usr/bin/python3
"""vmnet capstone: the api container's Flask service.

GET /        counts a visit in table visits and answers, from real queries to
             the db container, {"service": "api", "db": {"version": ...,
             "now": ..., "visits": N}, "host": <this container's hostname>}.
GET /healthz 200 {"status": "ok", "db": true} when SELECT 1 works, else 503.

The database password is read from a file (the secret bind-mounted read-only
at /run/secrets/db-password), never from the environment or the command line,
and it is read again for every connection so a new secret needs no restart.
Settings that are not secret come from the environment, with the container's
values as defaults; the tests change only the host names.
"""

import os
import signal
import socket
import sys
import threading

import psycopg2
import psycopg2.errors
from flask import Flask, jsonify
from werkzeug.serving import WSGIRequestHandler, make_server

DB_HOST = os.environ.get("DB_HOST", "db")
DB_PORT = int(os.environ.get("DB_PORT", "5432"))
DB_NAME = os.environ.get("DB_NAME", "postgres")
DB_USER = os.environ.get("DB_USER", "postgres")
PASSWORD_FILE = os.environ.get("DB_PASSWORD_FILE", "/run/secrets/db-password")
LISTEN = os.environ.get("API_LISTEN", "0.0.0.0")
PORT = int(os.environ.get("API_PORT", "5000"))
HOST = socket.gethostname()

app = Flask(__name__)

# CREATE TABLE IF NOT EXISTS is not safe when two sessions race on an empty
# database (both try to create the row type), so one thread creates the
# table, once per process, and the flag is cleared if it ever goes missing.
_table_lock = threading.Lock()
_table_ready = False


def read_password():
    """The first line of the secret file, like initdb --pwfile reads it."""
    with open(PASSWORD_FILE, encoding="utf-8") as f:
        return f.readline().rstrip("\r\n")


def connect():
    # One connection per request: the API stays correct across db restarts
    # and new container addresses without a pool to heal.
    return psycopg2.connect(
        host=DB_HOST,
        port=DB_PORT,
        dbname=DB_NAME,
        user=DB_USER,
        password=read_password(),
        # SCRAM's 4096 PBKDF2 rounds on both ends, a backend fork: under TCG
        # on a host whose hypervisor steals a third of its CPU that took
        # over 3 s, and every request failed with "timeout expired".
        connect_timeout=10,
        application_name="vmnet-api",
    )


def ensure_table(conn):
    global _table_ready
    if _table_ready:
        return
    with _table_lock:
        if _table_ready:
            return
        with conn, conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS visits ("
                " id integer PRIMARY KEY CHECK (id = 1),"
                " count bigint NOT NULL)"
            )
        _table_ready = True


def count_visit(conn):
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO visits (id, count) VALUES (1, 1)"
            " ON CONFLICT (id) DO UPDATE SET count = visits.count + 1"
            " RETURNING count"
        )
        visits = cur.fetchone()[0]
        cur.execute("SELECT version(), now()")
        version, now = cur.fetchone()
    return version, now, visits


def reason(err):
    """One line that says why the database is unavailable (no secrets in it)."""
    if isinstance(err, OSError):
        return "cannot read the password file %s: %s" % (PASSWORD_FILE, err.strerror)
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


@app.get("/")
def index():
    global _table_ready
    try:
        conn = connect()
        try:
            ensure_table(conn)
            try:
                version, now, visits = count_visit(conn)
            except psycopg2.errors.UndefinedTable:
                # The data directory was re-initialised under us.
                _table_ready = False
                ensure_table(conn)
                version, now, visits = count_visit(conn)
        finally:
            conn.close()
    except (psycopg2.Error, OSError) as err:
        app.logger.warning("GET /: database unavailable: %s", reason(err))
        return jsonify(service="api", error="database unavailable: " + reason(err), host=HOST), 503
    return jsonify(
        service="api",
        db={"version": version, "now": now.isoformat(), "visits": visits},
        host=HOST,
    )


@app.get("/healthz")
def healthz():
    try:
        conn = connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
                ok = cur.fetchone()[0] == 1
        finally:
            conn.close()
    except (psycopg2.Error, OSError) as err:
        app.logger.warning("GET /healthz: database unavailable: %s", reason(err))
        return jsonify(status="unavailable", db=False, error=reason(err)), 503
    if not ok:
        return jsonify(status="unavailable", db=False), 503
    return jsonify(status="ok", db=True)


class RequestHandler(WSGIRequestHandler):
    """Logs requests to stderr (the journal), except successful health checks,
    which podman runs every few seconds."""

    def log_request(self, code="-", size="-"):
        if self.path in ("/healthz",) and str(code) == "200":
            return
        super().log_request(code, size)


def main():
    server = make_server(LISTEN, PORT, app, threaded=True, request_handler=RequestHandler)

    # As PID 1 of its container this process gets no default action for
    # SIGTERM, so podman stop would wait for its timeout and SIGKILL.
    def stop(signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("api: listening on %s:%d, database %s@%s:%d/%s" % (LISTEN, PORT, DB_USER, DB_HOST, DB_PORT, DB_NAME),
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
