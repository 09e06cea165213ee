/*
 * mc_store on PostgreSQL (libpq): the store several engine nodes share. Same logical schema,
 * same migration numbers and the same semantics as the SQLite backend (store.h): intents are
 * committed before signing, certificates after, one transaction per batch.
 *
 * Per batch the rows go out in libpq pipeline mode: BEGIN, one prepared statement per row (each
 * answers what it found, so no second query per row), COMMIT, then one Sync: one network round
 * trip per chunk of rows instead of one per row. Statements are prepared once per connection (and
 * again after a reconnect). Parameters and results are binary, so blobs travel unescaped.
 *
 * Compiled to a stub answering MC_ERR_UNSUPPORTED unless MAILCA_HAVE_LIBPQ is defined (the build
 * defines it when it links libpq).
 */
#include "mailca/store.h"

#ifndef MAILCA_HAVE_LIBPQ

mc_err mc_store_pg_open(const char *uri, mc_store **out, mc_errdetail *err)
{
    (void)uri;
    *out = NULL;
    return mc_err_set(err, MC_ERR_UNSUPPORTED, "path", NULL,
                      "store open: this build has no PostgreSQL support (libpq)");
}

#else

#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rows sent per Sync. The server answers every row while we are still sending; bounding what is
 * in flight keeps its answers within the socket buffers, so a blocking connection cannot
 * deadlock with both sides writing. */
#define PG_CHUNK 128

/* Key of the advisory lock that serialises migrations between nodes opening a new database at
 * once ("mailca" in ASCII). */
#define PG_MIGRATE_LOCK "109634439981921"

/* Migration n (1-based) brings the schema from version n-1 to n: the same numbers as the SQLite
 * list in store.c (held together by MC_STORE_SCHEMA_VERSION). Never edit a shipped entry. */
static const char *const migrations[] = {
    /* 1: intents and certificates with their provenance (DESIGN.md: profile name and hash, lint
     * set version, engine version, validation evidence, what it replaces). seq stands for
     * SQLite's rowid: the order intents were recorded in (mc_store_pending lists oldest first). */
    "CREATE TABLE intents ("
    " order_id TEXT PRIMARY KEY NOT NULL,"
    " account TEXT,"
    " profile TEXT,"
    " profile_hash BYTEA,"
    " lint_version TEXT,"
    " engine_version TEXT,"
    " serial BYTEA NOT NULL CONSTRAINT intents_serial_key UNIQUE,"
    " tbs BYTEA,"
    " tbs_hash BYTEA,"
    " not_before BIGINT,"
    " not_after BIGINT,"
    " mailboxes TEXT,"
    " evidence TEXT,"
    " lint_warnings TEXT,"
    " replaces TEXT,"
    " created_at BIGINT,"
    " seq BIGINT GENERATED ALWAYS AS IDENTITY);"
    "CREATE TABLE certificates ("
    " serial BYTEA PRIMARY KEY REFERENCES intents(serial),"
    " order_id TEXT UNIQUE NOT NULL,"
    " der BYTEA NOT NULL,"
    " issued_at BIGINT,"
    " status TEXT NOT NULL DEFAULT 'issued',"
    " revoked_at BIGINT,"
    " revocation_reason INTEGER);"
    /* Inventory: "issued under profile X between T1 and T2", "unexpired at T". */
    "CREATE INDEX intents_profile_not_before ON intents(profile, not_before);"
    "CREATE INDEX intents_not_after ON intents(not_after);"
    "CREATE INDEX intents_seq ON intents(seq);",
    /* 2: CT submission outbox and the SCTs received (store.h "CT outbox"; engine/ct.c). Times in
     * milliseconds since the epoch; state 0 pending, 1 done, 2 rejected. */
    "CREATE TABLE ct_outbox ("
    " serial BYTEA NOT NULL REFERENCES intents(serial),"
    " log_id BYTEA NOT NULL,"
    " precert BIGINT NOT NULL,"
    " chain BYTEA NOT NULL,"
    " state BIGINT NOT NULL DEFAULT 0,"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL,"
    " http_status BIGINT,"
    " message TEXT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT,"
    " PRIMARY KEY (serial, log_id, precert));"
    "CREATE INDEX ct_outbox_due ON ct_outbox(next_at) WHERE state = 0;"
    "CREATE TABLE ct_scts ("
    " serial BYTEA NOT NULL REFERENCES intents(serial),"
    " log_id BYTEA NOT NULL,"
    " precert BIGINT NOT NULL,"
    " timestamp BIGINT NOT NULL,"
    " sct BYTEA NOT NULL,"
    " received_at BIGINT NOT NULL,"
    " PRIMARY KEY (serial, log_id, precert));",
    /* 3: subject keys (engine/store.c migration 3 says why). */
    "ALTER TABLE intents ADD COLUMN spki_sha256 BYTEA;"
    "CREATE INDEX intents_spki ON intents(spki_sha256) WHERE spki_sha256 IS NOT NULL;"
    "CREATE TABLE subject_keys ("
    " spki_sha256 BYTEA PRIMARY KEY NOT NULL,"
    " account TEXT NOT NULL,"
    " first_order_id TEXT NOT NULL,"
    " created_at BIGINT NOT NULL);",
    /* 4: replacement and revocation (engine/store.c migration 4 says why). replaced_by is set
     * by the certificate insert statement itself (PS_CERT), so in the same transaction. The
     * account index is ordered by seq within an account, as revocation selects. */
    "ALTER TABLE intents ADD COLUMN replaces_serial BYTEA;"
    "ALTER TABLE certificates ADD COLUMN replaced_by BYTEA;"
    "CREATE INDEX intents_account ON intents(account, seq);",
    /* 5: compromised subject keys (engine/store.c migration 5 says why). */
    "CREATE TABLE compromised_keys ("
    " spki_sha256 BYTEA PRIMARY KEY NOT NULL,"
    " recorded_at BIGINT NOT NULL,"
    " source TEXT NOT NULL);",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == MC_STORE_SCHEMA_VERSION,
               "store.h MC_STORE_SCHEMA_VERSION is the number of migrations");

/* Type OIDs of the parameters (pg_type.h is a server header). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
/* The most parameters a statement takes (the intent insert). */
#define PG_MAX_PARAMS 18

enum {
    PS_INTENT,
    PS_CERT,
    PS_LOOKUP,
    PS_COUNTS,
    PS_PENDING,
    PS_LINT_META,
    PS_SERIAL_OWNER,
    PS_CT_INSERT,
    PS_CT_CLAIM,
    PS_CT_RECORD,
    PS_CT_LIST,
    PS_CT_COUNTS,
    PS_REPLACED_BY,
    PS_CERT_STATUS,
    PS_COUNT_
};

static const struct {
    const char *name, *sql;
    int nparams;
    Oid types[PG_MAX_PARAMS];
} stmts[PS_COUNT_] = {
    /* Answers 0 (recorded now), 1 (the order has a certificate), 2 (intent without one), 3 (a
     * new order whose subject key $17 another account owns: nothing written), 4 (the key was
     * bound by a transaction that committed after this statement's snapshot: retry, reported
     * as a serialization failure) or 5 (the key is compromised, SBR 6.1.1.3 (4): nothing
     * written, and an intent of this order recorded earlier is not signed either). The key is
     * bound to the order's account in the same statement as the intent, so it commits with it.
     * Only a conflict on order_id is absorbed; a serial conflict fails the statement (and the
     * batch). The outer SELECT sees the database as before this statement, which is what the
     * answer needs. */
    [PS_INTENT] = {"mc_intent",
                   "WITH kc AS (SELECT 1 FROM compromised_keys WHERE spki_sha256 = $17),"
                   " kb AS (INSERT INTO subject_keys (spki_sha256, account, first_order_id,"
                   " created_at) SELECT $17, $2, $1, $16 WHERE $17 IS NOT NULL"
                   " AND NOT EXISTS (SELECT 1 FROM kc)"
                   " ON CONFLICT (spki_sha256) DO NOTHING RETURNING account),"
                   " ko AS (SELECT account FROM kb UNION ALL"
                   " SELECT account FROM subject_keys WHERE spki_sha256 = $17),"
                   " ok AS (SELECT $17 IS NULL OR (NOT EXISTS (SELECT 1 FROM kc) AND"
                   " EXISTS (SELECT 1 FROM ko) AND NOT EXISTS"
                   " (SELECT 1 FROM ko WHERE account IS DISTINCT FROM $2)) AS v),"
                   " ins AS (INSERT INTO intents (order_id, account, profile, profile_hash,"
                   " lint_version, engine_version, serial, tbs, tbs_hash, not_before, not_after,"
                   " mailboxes, evidence, lint_warnings, replaces, created_at, spki_sha256,"
                   " replaces_serial)"
                   " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
                   " $16, $17, $18 WHERE (SELECT v FROM ok)"
                   " ON CONFLICT (order_id) DO NOTHING RETURNING 1)"
                   " SELECT CASE WHEN EXISTS (SELECT 1 FROM ins) THEN 0"
                   " WHEN EXISTS (SELECT 1 FROM certificates WHERE order_id = $1) THEN 1"
                   " WHEN EXISTS (SELECT 1 FROM kc) THEN 5"
                   " WHEN EXISTS (SELECT 1 FROM intents WHERE order_id = $1) OR (SELECT v FROM ok)"
                   " THEN 2"
                   " WHEN NOT EXISTS (SELECT 1 FROM ko) THEN 4 ELSE 3 END",
                   18,
                   {OID_TEXT, OID_TEXT, OID_TEXT, OID_BYTEA, OID_TEXT, OID_TEXT, OID_BYTEA,
                    OID_BYTEA, OID_BYTEA, OID_INT8, OID_INT8, OID_TEXT, OID_TEXT, OID_TEXT,
                    OID_TEXT, OID_INT8, OID_BYTEA, OID_BYTEA}},
    /* Inserts only when an intent with this order id AND serial exists, and answers the rows
     * inserted, the intent's serial and the certificate stored before this statement (both
     * NULL when absent), so a refused row is explained without another query. A certificate
     * inserted now whose intent replaces one of ours sets that one's replaced_by (store.h
     * "replacement": never overwritten, never itself). */
    [PS_CERT] = {"mc_cert",
                 "WITH ins AS (INSERT INTO certificates (serial, order_id, der, issued_at)"
                 " SELECT serial, order_id, $3, $4 FROM intents"
                 " WHERE order_id = $1 AND serial = $2"
                 " ON CONFLICT (serial) DO NOTHING RETURNING 1),"
                 " rep AS (UPDATE certificates SET replaced_by = $2 WHERE serial ="
                 " (SELECT replaces_serial FROM intents WHERE order_id = $1 AND serial = $2)"
                 " AND serial <> $2 AND replaced_by IS NULL AND EXISTS (SELECT 1 FROM ins))"
                 " SELECT (SELECT count(*) FROM ins), i.serial, c.der FROM (SELECT 1) AS one"
                 " LEFT JOIN intents AS i ON i.order_id = $1"
                 " LEFT JOIN certificates AS c ON c.serial = i.serial",
                 4,
                 {OID_TEXT, OID_BYTEA, OID_BYTEA, OID_INT8}},
    [PS_LOOKUP] = {"mc_lookup",
                   "SELECT i.serial, i.tbs, c.der FROM intents AS i"
                   " LEFT JOIN certificates AS c ON c.serial = i.serial WHERE i.order_id = $1",
                   1,
                   {OID_TEXT}},
    [PS_COUNTS] = {"mc_counts",
                   "SELECT (SELECT count(*) FROM certificates),"
                   " (SELECT count(*) FROM intents AS i WHERE NOT EXISTS"
                   "  (SELECT 1 FROM certificates AS c WHERE c.serial = i.serial))",
                   0,
                   {0}},
    [PS_PENDING] = {"mc_pending",
                    "SELECT i.order_id, i.serial, i.tbs FROM intents AS i WHERE NOT EXISTS"
                    " (SELECT 1 FROM certificates AS c WHERE c.serial = i.serial)"
                    " ORDER BY i.seq",
                    0,
                    {0}},
    [PS_LINT_META] = {"mc_lint_meta",
                      "SELECT lint_version, lint_warnings FROM intents WHERE order_id = $1",
                      1,
                      {OID_TEXT}},
    [PS_SERIAL_OWNER] = {"mc_serial_owner",
                         "SELECT order_id FROM intents WHERE serial = $1",
                         1,
                         {OID_BYTEA}},
    [PS_CT_INSERT] = {"mc_ct_insert",
                      "INSERT INTO ct_outbox (serial, log_id, precert, chain, next_at, created_at)"
                      " VALUES ($1, $2, $3, $4, $5, $6)"
                      " ON CONFLICT (serial, log_id, precert) DO NOTHING",
                      6,
                      {OID_BYTEA, OID_BYTEA, OID_INT8, OID_BYTEA, OID_INT8, OID_INT8}},
    /* SKIP LOCKED: drainers on several nodes claim disjoint rows without waiting on each
     * other. */
    [PS_CT_CLAIM] = {"mc_ct_claim",
                     "UPDATE ct_outbox AS o SET next_at = $2 FROM"
                     " (SELECT serial, log_id, precert FROM ct_outbox"
                     "  WHERE state = 0 AND next_at <= $1 ORDER BY next_at LIMIT $3"
                     "  FOR UPDATE SKIP LOCKED) AS d"
                     " WHERE o.serial = d.serial AND o.log_id = d.log_id"
                     " AND o.precert = d.precert"
                     " RETURNING o.serial, o.log_id, o.precert, o.chain, o.attempts",
                     3,
                     {OID_INT8, OID_INT8, OID_INT8}},
    /* Updates a pending row and, when it became done, stores its SCT: one statement per
     * outcome. */
    [PS_CT_RECORD] = {"mc_ct_record",
                      "WITH u AS (UPDATE ct_outbox SET state = $4, attempts = attempts + 1,"
                      " next_at = $5, http_status = $6, message = $7, updated_at = $8"
                      " WHERE serial = $1 AND log_id = $2 AND precert = $3 AND state = 0"
                      " RETURNING 1)"
                      " INSERT INTO ct_scts (serial, log_id, precert, timestamp, sct, received_at)"
                      " SELECT $1, $2, $3, $9, $10, $8 WHERE $4 = 1 AND EXISTS (SELECT 1 FROM u)"
                      " ON CONFLICT (serial, log_id, precert) DO NOTHING",
                      10,
                      {OID_BYTEA, OID_BYTEA, OID_INT8, OID_INT8, OID_INT8, OID_INT8, OID_TEXT,
                       OID_INT8, OID_INT8, OID_BYTEA}},
    [PS_CT_LIST] = {"mc_ct_list",
                    "SELECT o.serial, o.log_id, o.precert, o.state, o.attempts, o.next_at,"
                    " o.http_status, o.message, s.timestamp, s.sct FROM ct_outbox AS o"
                    " LEFT JOIN ct_scts AS s"
                    "  ON s.serial = o.serial AND s.log_id = o.log_id AND s.precert = o.precert"
                    " WHERE $1::bytea IS NULL OR o.serial = $1"
                    " ORDER BY o.serial, o.log_id, o.precert",
                    1,
                    {OID_BYTEA}},
    [PS_CT_COUNTS] = {"mc_ct_counts",
                      "SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1),"
                      " count(*) FILTER (WHERE state = 2) FROM ct_outbox",
                      0,
                      {0}},
    [PS_REPLACED_BY] = {"mc_replaced_by",
                        "SELECT replaced_by FROM certificates WHERE serial = $1",
                        1,
                        {OID_BYTEA}},
    [PS_CERT_STATUS] = {"mc_cert_status",
                        "SELECT status, revoked_at, revocation_reason::bigint FROM certificates"
                        " WHERE serial = $1",
                        1,
                        {OID_BYTEA}},
};

typedef struct pg_store {
    mc_store base; /* first: a pg_store * is a mc_store * */
    PGconn *conn;
    int prepared; /* the statements exist on the current connection */
} pg_store;

static const mc_store_ops pg_ops;

/* --- errors and plumbing ---------------------------------------------------------------------- */

/* libpq's last message without its trailing newline, into buf. */
static const char *conn_msg(PGconn *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", c ? PQerrorMessage(c) : "out of memory");
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* An MC_ERR_STORE naming the operation, the server's message and SQLSTATE (res may be NULL:
 * then the connection's message). */
static mc_err pg_err(pg_store *s, mc_errdetail *err, const char *field, const char *op,
                     const PGresult *res)
{
    char buf[MC_ERR_MSG_MAX];
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!msg)
        msg = conn_msg(s->conn, buf, sizeof buf);
    return mc_err_set(err, MC_ERR_STORE, field, NULL, "%s: %s (sqlstate %s)", op, msg,
                      state ? state : "none");
}

static void silent_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Runs one parameterless command that answers no rows. */
static mc_err exec_cmd(pg_store *s, const char *sql, const char *op, mc_errdetail *err)
{
    PGresult *res = PQexec(s->conn, sql);
    mc_err e = MC_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        e = pg_err(s, err, NULL, op, res);
    PQclear(res);
    return e;
}

/* Ends a transaction left open by an error (the error already reported is kept). */
static void txn_abort(pg_store *s)
{
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE && PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "ROLLBACK"));
}

static mc_err prepare_all(pg_store *s, mc_errdetail *err)
{
    for (int i = 0; i < PS_COUNT_; i++) {
        PGresult *res = PQprepare(s->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams,
                                  stmts[i].nparams ? stmts[i].types : NULL);
        mc_err e = PQresultStatus(res) == PGRES_COMMAND_OK
                       ? MC_OK
                       : pg_err(s, err, NULL, "store open: prepare", res);
        PQclear(res);
        if (e)
            return e;
    }
    s->prepared = 1;
    return MC_OK;
}

/* Before each operation: a connection the server or the network dropped is re-established once
 * (another node may have restarted the server); the operation then runs on the new one. */
static mc_err conn_ready(pg_store *s, mc_errdetail *err)
{
    if (PQstatus(s->conn) == CONNECTION_OK && !PQisBusy(s->conn))
        return MC_OK;
    s->prepared = 0;
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char buf[MC_ERR_MSG_MAX];
        return mc_err_set(err, MC_ERR_STORE, NULL, NULL, "store reconnect: %s",
                          conn_msg(s->conn, buf, sizeof buf));
    }
    return prepare_all(s, err);
}

/* Parameter helpers: everything is sent in binary. */
typedef struct params {
    const char *val[PG_MAX_PARAMS];
    int len[PG_MAX_PARAMS];
    int fmt[PG_MAX_PARAMS];
    uint64_t be[PG_MAX_PARAMS]; /* storage of int8 values in network order */
} params;

static void p_text(params *p, int i, const char *v)
{
    p->val[i] = v;
    p->len[i] = v ? (int)strlen(v) : 0;
    p->fmt[i] = 1;
}

static void p_blob(params *p, int i, const uint8_t *v, size_t n)
{
    p->val[i] = (const char *)v;
    p->len[i] = v ? (int)n : 0;
    p->fmt[i] = 1;
}

static void p_int8(params *p, int i, int64_t v)
{
    p->be[i] = htobe64((uint64_t)v);
    p->val[i] = (const char *)&p->be[i];
    p->len[i] = 8;
    p->fmt[i] = 1;
}

static int64_t get_int8(const PGresult *res, int row, int col)
{
    uint64_t v = 0;
    if (!PQgetisnull(res, row, col) && PQgetlength(res, row, col) == 8)
        memcpy(&v, PQgetvalue(res, row, col), 8);
    return (int64_t)be64toh(v);
}

/* A binary bytea column: pointer and length, NULL and 0 for SQL NULL. */
static const uint8_t *get_blob(const PGresult *res, int row, int col, size_t *len)
{
    if (PQgetisnull(res, row, col)) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)PQgetlength(res, row, col);
    return (const uint8_t *)PQgetvalue(res, row, col);
}

/* Runs a prepared statement outside a pipeline with binary results. Caller PQclears. */
static PGresult *run(pg_store *s, int which, const params *p)
{
    return PQexecPrepared(s->conn, stmts[which].name, stmts[which].nparams, p ? p->val : NULL,
                          p ? p->len : NULL, p ? p->fmt : NULL, 1);
}

/* --- open and migrate ------------------------------------------------------------------------ */

/* Brings the schema to MC_STORE_SCHEMA_VERSION in one transaction (DDL is transactional here),
 * under an advisory lock so two nodes opening a new database at once do not both migrate. */
static mc_err store_migrate(pg_store *s, mc_errdetail *err)
{
    PGresult *res = NULL;
    mc_err e = exec_cmd(s, "BEGIN", "migrate: begin", err);
    if (e)
        return e;
    e = exec_cmd(s, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")", "migrate: lock", err);
    if (e)
        goto done;
    e = exec_cmd(s,
                 "CREATE TABLE IF NOT EXISTS schema_version ("
                 " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                 "migrate: create schema_version", err);
    if (e)
        goto done;
    res = PQexec(s->conn, "SELECT coalesce(max(version), 0) FROM schema_version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        e = pg_err(s, err, NULL, "migrate: read schema_version", res);
        goto done;
    }
    int cur = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    if (cur > MC_STORE_SCHEMA_VERSION) {
        /* An older engine must not write into a schema it does not know. */
        e = mc_err_set(err, MC_ERR_STORE, "schema_version", NULL,
                       "database schema version %d is newer than this engine's (%d)", cur,
                       MC_STORE_SCHEMA_VERSION);
        goto done;
    }
    for (int v = cur + 1; v <= MC_STORE_SCHEMA_VERSION; v++) {
        char op[48], sql[160];
        snprintf(op, sizeof op, "migrate: migration %d", v);
        e = exec_cmd(s, migrations[v - 1], op, err);
        if (e)
            goto done;
        snprintf(sql, sizeof sql,
                 "INSERT INTO schema_version (version, applied_at) VALUES (%d, %lld)", v,
                 (long long)time(NULL));
        e = exec_cmd(s, sql, op, err);
        if (e)
            goto done;
    }
    e = exec_cmd(s, "COMMIT", "migrate: commit", err);
done:
    PQclear(res);
    if (e)
        txn_abort(s);
    return e;
}

static void pg_close(mc_store *base)
{
    pg_store *s = (pg_store *)base;
    PQfinish(s->conn); /* also drops the prepared statements: they live in the session */
    free(s);
}

mc_err mc_store_pg_open(const char *uri, mc_store **out, mc_errdetail *err)
{
    pg_store *s = calloc(1, sizeof *s);
    mc_err e = MC_OK;
    *out = NULL;
    if (!s)
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "store open: out of memory");
    s->base.ops = &pg_ops;
    /* The URI is expanded as dbname; the fallback name shows in pg_stat_activity. */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const vals[] = {uri, "mailca", NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn) {
        e = mc_err_set(err, MC_ERR_NOMEM, "path", NULL, "store open: out of memory");
        goto done;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        /* Named by host, port and database: the URI may hold a password. */
        char buf[MC_ERR_MSG_MAX];
        const char *host = PQhost(s->conn), *port = PQport(s->conn), *db = PQdb(s->conn);
        e = mc_err_set(err, MC_ERR_STORE, "path", NULL,
                       "store open postgresql host '%s' port '%s' database '%s': %s",
                       host ? host : "", port ? port : "", db ? db : "",
                       conn_msg(s->conn, buf, sizeof buf));
        goto done;
    }
    /* "relation already exists, skipping" and the like must not reach stderr. */
    PQsetNoticeProcessor(s->conn, silent_notice, NULL);
    e = store_migrate(s, err);
    if (e)
        goto done;
    e = prepare_all(s, err);
done:
    if (e) {
        pg_close(&s->base);
        return e;
    }
    *out = &s->base;
    return MC_OK;
}

/* --- pipelined batches ------------------------------------------------------------------------ */

/* Sends "BEGIN" (first chunk), the rows' statements and "COMMIT" (last chunk, when commit) in
 * pipeline mode with one Sync, and hands each row's result to on_row in order. Stops at the
 * first failing row: *failed is its index (or -1), err says why, the transaction is left
 * aborted for the caller to roll back. on_row may itself fail a row (MC_ERR_STORE and err). */
typedef mc_err (*row_fn)(pg_store *s, size_t i, PGresult *res, void *arg, mc_errdetail *err);
typedef void (*send_fn)(pg_store *s, size_t i, const void *rows, params *p);

static mc_err pipeline_chunk(pg_store *s, const char *what, int stmt, const void *rows, size_t from,
                             size_t to, int begin, int commit, int result_format, send_fn build,
                             row_fn on_row, void *arg, mc_errdetail *err)
{
    mc_err e = MC_OK;
    params p;
    char op[MC_ERR_MSG_MAX / 2];
    if (!PQenterPipelineMode(s->conn))
        return pg_err(s, err, NULL, what, NULL);
    int ok = 1;
    if (begin)
        ok = PQsendQueryParams(s->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    for (size_t i = from; ok && i < to; i++) {
        memset(&p, 0, sizeof p);
        build(s, i, rows, &p);
        ok = PQsendQueryPrepared(s->conn, stmts[stmt].name, stmts[stmt].nparams, p.val, p.len,
                                 p.fmt, result_format);
    }
    if (ok && commit)
        ok = PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    if (ok)
        ok = PQpipelineSync(s->conn);
    if (!ok) {
        e = pg_err(s, err, NULL, what, NULL);
        /* The connection is unusable in an unknown pipeline state: drop it, the next call
         * reconnects. */
        PQexitPipelineMode(s->conn);
        PQreset(s->conn);
        s->prepared = 0;
        return e;
    }
    /* Results arrive in the order sent: [BEGIN] rows [COMMIT] then the Sync marker. Each
     * command's result is followed by NULL. All results are read even after an error so the
     * connection leaves pipeline mode clean. */
    size_t cmd = 0, ncmd = (size_t)begin + (to - from) + (size_t)commit;
    for (;;) {
        PGresult *res = PQgetResult(s->conn);
        if (!res) {
            if (PQstatus(s->conn) != CONNECTION_OK) {
                if (!e)
                    e = pg_err(s, err, NULL, what, NULL);
                break;
            }
            continue; /* end of one command's results */
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        int is_row = cmd >= (size_t)begin && cmd < (size_t)begin + (to - from);
        size_t i = from + (cmd - (size_t)begin);
        if (!e && st == PGRES_FATAL_ERROR) {
            if (is_row)
                snprintf(op, sizeof op, "%s: row %zu", what, i);
            else
                snprintf(op, sizeof op, "%s: %s", what, cmd == 0 && begin ? "begin" : "commit");
            e = pg_err(s, err, NULL, op, res);
            if (is_row && on_row)
                e = on_row(s, i, res, arg, err); /* may say more about the failed row */
        } else if (!e && is_row && st == PGRES_TUPLES_OK) {
            e = on_row(s, i, res, arg, err);
        } else if (!e && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            e = pg_err(s, err, NULL, what, res);
        }
        PQclear(res);
        cmd++;
    }
    if (!PQexitPipelineMode(s->conn) && !e)
        e = pg_err(s, err, NULL, what, NULL);
    if (!e && cmd != ncmd)
        e = mc_err_set(err, MC_ERR_INTERNAL, NULL, NULL, "%s: %zu results for %zu commands", what,
                       cmd, ncmd);
    return e;
}

/* Runs rows [0, n) of a batch in chunks of PG_CHUNK, all in one transaction; commit says whether
 * the last chunk ends it. On error the transaction is rolled back. */
static mc_err pipeline_batch(pg_store *s, const char *what, int stmt, const void *rows, size_t n,
                             int commit, int result_format, send_fn build, row_fn on_row, void *arg,
                             mc_errdetail *err)
{
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    if (!s->prepared && (e = prepare_all(s, err)) != MC_OK)
        return e;
    for (size_t from = 0; from < n; from += PG_CHUNK) {
        size_t to = n - from > PG_CHUNK ? from + PG_CHUNK : n;
        e = pipeline_chunk(s, what, stmt, rows, from, to, from == 0, commit && to == n,
                           result_format, build, on_row, arg, err);
        if (e)
            break;
    }
    if (e)
        txn_abort(s);
    return e;
}

/* --- intents --------------------------------------------------------------------------------- */

typedef struct intents_ctx {
    const mc_intent *v;
    mc_intent_state *state;
    int64_t now;
    size_t collided; /* 1 + index of the row that hit the serial's uniqueness, or 0 */
    uint8_t replaces_serial[PG_CHUNK][MC_SERIAL_MAX]; /* parsed replaces of the chunk in flight */
} intents_ctx;

static void intent_params(pg_store *s, size_t i, const void *rows, params *p)
{
    (void)s;
    intents_ctx *c = (intents_ctx *)rows;
    const mc_intent *it = &c->v[i];
    p_text(p, 0, it->order_id);
    p_text(p, 1, it->account);
    p_text(p, 2, it->profile);
    p_blob(p, 3, it->profile_hash, 32);
    p_text(p, 4, it->lint_version);
    p_text(p, 5, it->engine_version);
    p_blob(p, 6, it->serial, it->serial_len);
    p_blob(p, 7, it->tbs, it->tbs_len);
    p_blob(p, 8, it->tbs_hash, 32);
    p_int8(p, 9, it->not_before);
    p_int8(p, 10, it->not_after);
    p_text(p, 11, it->mailboxes);
    p_text(p, 12, it->evidence);
    p_text(p, 13, it->lint_warnings);
    p_text(p, 14, it->replaces);
    p_int8(p, 15, c->now);
    p_blob(p, 16, it->spki_sha256, it->spki_sha256 ? 32 : 0);
    /* intents_ctx keeps the parsed serial: the parameters point into it until sent */
    uint8_t *rser = c->replaces_serial[i % PG_CHUNK];
    size_t rser_len = 0;
    if (it->replaces && mc_store_serial_parse(it->replaces, rser, &rser_len))
        p_blob(p, 17, rser, rser_len);
    else
        p_blob(p, 17, NULL, 0);
}

/* Who holds this serial, asked after the rollback: an earlier row of this batch (its insert was
 * rolled back, so it is found here) or a committed intent. Keeps the message in err when the
 * owner is not found (it may have been rolled back by another node meanwhile). */
static mc_err serial_collision(pg_store *s, const intents_ctx *c, size_t i, mc_errdetail *err)
{
    const mc_intent *it = &c->v[i];
    char hex[2 * MC_SERIAL_MAX + 1], field[MC_ERR_FIELD_MAX];
    snprintf(field, sizeof field, "intents[%zu].serial", i);
    mc_store_serial_hex(hex, it->serial, it->serial_len);
    for (size_t j = 0; j < i; j++) {
        const mc_intent *o = &c->v[j];
        if (c->state[j] == MC_INTENT_NEW && o->serial_len == it->serial_len &&
            memcmp(o->serial, it->serial, it->serial_len) == 0)
            return mc_err_set(
                err, MC_ERR_STORE, field, NULL,
                "intents commit: serial %s of order '%s' is already recorded for order '%s'", hex,
                it->order_id, o->order_id);
    }
    params p;
    memset(&p, 0, sizeof p);
    p_blob(&p, 0, it->serial, it->serial_len);
    PGresult *res = run(s, PS_SERIAL_OWNER, &p);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        mc_err_set(err, MC_ERR_STORE, field, NULL,
                   "intents commit: serial %s of order '%s' is already recorded for order '%s'",
                   hex, it->order_id, PQgetvalue(res, 0, 0));
    PQclear(res);
    return MC_ERR_STORE;
}

static mc_err intent_row(pg_store *s, size_t i, PGresult *res, void *arg, mc_errdetail *err)
{
    intents_ctx *c = arg;
    if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        /* 23505: unique_violation; the order id conflict is absorbed, so this is the serial. */
        if (state && strcmp(state, "23505") == 0 && cons && strcmp(cons, "intents_serial_key") == 0)
            c->collided = i + 1; /* explained once the pipeline is over */
        return MC_ERR_STORE;     /* err already names the failure */
    }
    const char *v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
    switch (v[0]) {
    case '0':
        c->state[i] = MC_INTENT_NEW;
        return MC_OK;
    case '1':
        c->state[i] = MC_INTENT_ISSUED;
        return MC_OK;
    case '2':
        c->state[i] = MC_INTENT_PENDING;
        return MC_OK;
    case '3':
        c->state[i] = MC_INTENT_KEY_BOUND;
        return MC_OK;
    case '5':
        c->state[i] = MC_INTENT_KEY_COMPROMISED;
        return MC_OK;
    case '4':
        return mc_err_set(err, MC_ERR_STORE, "intents", NULL,
                          "intents commit: order '%s': its subject key was bound by another "
                          "node meanwhile, retry (sqlstate 40001)",
                          c->v[i].order_id);
    default:
        return mc_err_set(err, MC_ERR_INTERNAL, "intents", NULL,
                          "intents commit: order '%s': unexpected answer '%s'", c->v[i].order_id,
                          v);
    }
}

static mc_err pg_intents_commit(mc_store *base, const mc_intent *v, size_t n,
                                mc_intent_state *state, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    intents_ctx c = {.v = v, .state = state, .now = (int64_t)time(NULL)};
    /* The insert answers (as text) what it found; COMMIT rides in the last chunk, so a batch is
     * one round trip when n <= PG_CHUNK (a row can fail only on the server, which then aborts
     * the COMMIT too). */
    mc_err e = pipeline_batch(s, "intents commit", PS_INTENT, &c, n, 1, 0, intent_params,
                              intent_row, &c, err);
    if (e && c.collided)
        e = serial_collision(s, &c, c.collided - 1, err);
    return e;
}

/* --- certificates ---------------------------------------------------------------------------- */

typedef struct certs_ctx {
    const mc_stored_cert *v;
    int64_t now;
} certs_ctx;

static void cert_params(pg_store *s, size_t i, const void *rows, params *p)
{
    (void)s;
    const certs_ctx *c = rows;
    const mc_stored_cert *ce = &c->v[i];
    p_text(p, 0, ce->order_id);
    p_blob(p, 1, ce->serial, ce->serial_len);
    p_blob(p, 2, ce->der, ce->der_len);
    p_int8(p, 3, c->now);
}

/* A row inserted nothing: the same DER already stored is a harmless replay (a collector
 * retrying a batch); anything else is refused. The statement's answer says which. */
static mc_err cert_row(pg_store *s, size_t i, PGresult *res, void *arg, mc_errdetail *err)
{
    (void)s;
    certs_ctx *c = arg;
    const mc_stored_cert *ce = &c->v[i];
    if (PQresultStatus(res) == PGRES_FATAL_ERROR)
        return MC_ERR_STORE;
    if (PQntuples(res) != 1)
        return mc_err_set(err, MC_ERR_INTERNAL, "certs", NULL,
                          "certs commit: order '%s': %d rows answered", ce->order_id,
                          PQntuples(res));
    if (get_int8(res, 0, 0) == 1)
        return MC_OK;
    char field[MC_ERR_FIELD_MAX], hex[2 * MC_SERIAL_MAX + 1], hex2[2 * MC_SERIAL_MAX + 1];
    snprintf(field, sizeof field, "certs[%zu]", i);
    size_t iser_len, der_len;
    const uint8_t *iser = get_blob(res, 0, 1, &iser_len);
    const uint8_t *der = get_blob(res, 0, 2, &der_len);
    if (!iser)
        return mc_err_set(err, MC_ERR_STORE, field, NULL,
                          "certs commit: no intent recorded for order '%s'", ce->order_id);
    if (iser_len != ce->serial_len || memcmp(iser, ce->serial, iser_len) != 0)
        return mc_err_set(err, MC_ERR_STORE, field, NULL,
                          "certs commit: order '%s': serial %s does not match the intent's %s",
                          ce->order_id, mc_store_serial_hex(hex, ce->serial, ce->serial_len),
                          mc_store_serial_hex(hex2, iser, iser_len));
    if (!der)
        /* Another node stored it after this statement's snapshot was taken: retryable. */
        return mc_err_set(err, MC_ERR_STORE, field, NULL,
                          "certs commit: order '%s': certificate stored concurrently, retry",
                          ce->order_id);
    if (der_len != ce->der_len || memcmp(der, ce->der, der_len) != 0)
        return mc_err_set(err, MC_ERR_STORE, field, NULL,
                          "certs commit: order '%s': serial %s already has a different "
                          "certificate",
                          ce->order_id, mc_store_serial_hex(hex, ce->serial, ce->serial_len));
    return MC_OK;
}

typedef struct ct_enqueue_ctx {
    const mc_ct_entry *v;
    int64_t now_s;
} ct_enqueue_ctx;

static void ct_enqueue_params(pg_store *s, size_t i, const void *rows, params *p);

static mc_err pg_certs_commit(mc_store *base, const mc_stored_cert *v, size_t n,
                              const mc_ct_entry *ct, size_t ct_n, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    certs_ctx c = {.v = v, .now = (int64_t)time(NULL)};
    /* A refused row is known only once its answer is read, so COMMIT goes separately. */
    mc_err e =
        pipeline_batch(s, "certs commit", PS_CERT, &c, n, 0, 1, cert_params, cert_row, &c, err);
    if (e)
        return e;
    /* The CT outbox rows join the open transaction. */
    ct_enqueue_ctx cc = {.v = ct, .now_s = c.now};
    for (size_t from = 0; from < ct_n && !e; from += PG_CHUNK) {
        size_t to = ct_n - from > PG_CHUNK ? from + PG_CHUNK : ct_n;
        e = pipeline_chunk(s, "certs commit: ct outbox", PS_CT_INSERT, &cc, from, to, 0, 0, 1,
                           ct_enqueue_params, NULL, NULL, err);
    }
    if (e) {
        txn_abort(s);
        return e;
    }
    e = exec_cmd(s, "COMMIT", "certs commit: commit", err);
    if (e)
        txn_abort(s);
    return e;
}

/* --- queries --------------------------------------------------------------------------------- */

static mc_err blob_dup(const PGresult *res, int col, uint8_t **out, size_t *len)
{
    if (!out)
        return MC_OK;
    size_t n;
    const uint8_t *p = get_blob(res, 0, col, &n);
    *out = NULL;
    if (len)
        *len = 0;
    if (!p || n == 0)
        return MC_OK;
    *out = malloc(n);
    if (!*out)
        return MC_ERR_NOMEM;
    memcpy(*out, p, n);
    if (len)
        *len = n;
    return MC_OK;
}

static mc_err pg_lookup(mc_store *base, const char *order_id, int *found, uint8_t **serial,
                        size_t *serial_len, uint8_t **tbs, size_t *tbs_len, uint8_t **der,
                        size_t *der_len, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    uint8_t **outs[3] = {serial, tbs, der};
    size_t *lens[3] = {serial_len, tbs_len, der_len};
    PGresult *res = NULL;
    char op[MC_ERR_MSG_MAX / 2];
    snprintf(op, sizeof op, "lookup order '%s'", order_id);
    mc_err e = conn_ready(s, err);
    if (e)
        goto done;
    params p;
    memset(&p, 0, sizeof p);
    p_text(&p, 0, order_id);
    res = run(s, PS_LOOKUP, &p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        e = pg_err(s, err, "order_id", op, res);
        goto done;
    }
    if (PQntuples(res) == 0)
        goto done;
    for (int k = 0; k < 3; k++) {
        if (blob_dup(res, k, outs[k], lens[k]) != MC_OK) {
            e = mc_err_set(err, MC_ERR_NOMEM, "order_id", NULL, "%s: out of memory", op);
            goto done;
        }
    }
    *found = 1;
done:
    PQclear(res); /* on error, mc_store_lookup frees what was copied */
    return e;
}

static mc_err pg_counts(mc_store *base, int64_t *certs, int64_t *pending, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    PGresult *res = run(s, PS_COUNTS, NULL);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        if (certs)
            *certs = get_int8(res, 0, 0);
        if (pending)
            *pending = get_int8(res, 0, 1);
    } else {
        e = pg_err(s, err, NULL, "counts", res);
    }
    PQclear(res);
    return e;
}

/* Rows are streamed one at a time (single-row mode), so a long backlog is never held whole. */
static mc_err pg_pending(mc_store *base, mc_store_pending_fn fn, void *arg, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    if (!PQsendQueryPrepared(s->conn, stmts[PS_PENDING].name, 0, NULL, NULL, NULL, 1))
        return pg_err(s, err, NULL, "pending", NULL);
    PQsetSingleRowMode(s->conn);
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && !e) {
            size_t serial_len, tbs_len;
            const uint8_t *serial = get_blob(res, 0, 1, &serial_len);
            const uint8_t *tbs = get_blob(res, 0, 2, &tbs_len);
            fn(arg, PQgetvalue(res, 0, 0), serial, serial_len, tbs, tbs_len);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && !e) {
            e = pg_err(s, err, NULL, "pending", res);
        }
        PQclear(res);
    }
    return e;
}

static void copy_text(const PGresult *res, int col, char *out, size_t cap)
{
    snprintf(out, cap, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

static mc_err pg_lint_meta(mc_store *base, const char *order_id, char *lint_version, size_t lv_cap,
                           char *warnings, size_t w_cap, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    char op[MC_ERR_MSG_MAX / 2];
    snprintf(op, sizeof op, "lint meta of order '%s'", order_id);
    params p;
    memset(&p, 0, sizeof p);
    p_text(&p, 0, order_id);
    PGresult *res = run(s, PS_LINT_META, &p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        e = pg_err(s, err, "order_id", op, res);
    else if (PQntuples(res) == 0)
        e = mc_err_set(err, MC_ERR_STORE, "order_id", NULL, "%s: no intent recorded", op);
    else {
        copy_text(res, 0, lint_version, lv_cap);
        copy_text(res, 1, warnings, w_cap);
    }
    PQclear(res);
    return e;
}

/* --- CT outbox ------------------------------------------------------------------------------ */

static void ct_enqueue_params(pg_store *s, size_t i, const void *rows, params *p)
{
    (void)s;
    const ct_enqueue_ctx *c = rows;
    const mc_ct_entry *en = &c->v[i];
    p_blob(p, 0, en->serial, en->serial_len);
    p_blob(p, 1, en->log_id, MC_CT_LOG_ID_LEN);
    p_int8(p, 2, en->precert ? 1 : 0);
    p_blob(p, 3, en->chain, en->chain_len);
    p_int8(p, 4, en->due_ms);
    p_int8(p, 5, c->now_s);
}

static mc_err pg_ct_enqueue(mc_store *base, const mc_ct_entry *v, size_t n, int64_t now_s,
                            mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    ct_enqueue_ctx c = {.v = v, .now_s = now_s};
    return pipeline_batch(s, "ct enqueue", PS_CT_INSERT, &c, n, 1, 1, ct_enqueue_params, NULL, NULL,
                          err);
}

static mc_err pg_ct_claim(mc_store *base, int64_t now_ms, int64_t lease_until_ms, size_t limit,
                          mc_ct_job **jobs, size_t *n, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_ct_job *v = NULL;
    size_t cnt = 0;
    int rows = 0;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    params p;
    memset(&p, 0, sizeof p);
    p_int8(&p, 0, now_ms);
    p_int8(&p, 1, lease_until_ms);
    p_int8(&p, 2, (int64_t)limit);
    PGresult *res = run(s, PS_CT_CLAIM, &p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        e = pg_err(s, err, NULL, "ct claim", res);
        goto done;
    }
    rows = PQntuples(res);
    if (rows == 0)
        goto done;
    v = calloc((size_t)rows, sizeof *v);
    if (!v) {
        e = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "ct claim: out of memory");
        goto done;
    }
    for (int r = 0; r < rows; r++, cnt++) {
        mc_ct_job *j = &v[r];
        size_t sl, ll, cl;
        const uint8_t *ser = get_blob(res, r, 0, &sl);
        const uint8_t *lid = get_blob(res, r, 1, &ll);
        const uint8_t *chain = get_blob(res, r, 3, &cl);
        if (!ser || sl > MC_SERIAL_MAX || ll != MC_CT_LOG_ID_LEN || !chain || cl == 0) {
            e = mc_err_set(err, MC_ERR_STORE, "ct_outbox", NULL,
                           "ct claim: malformed outbox row (serial %zu, log id %zu, chain %zu "
                           "bytes)",
                           sl, ll, cl);
            goto done;
        }
        memcpy(j->serial, ser, sl);
        j->serial_len = sl;
        memcpy(j->log_id, lid, ll);
        j->precert = (int)get_int8(res, r, 2);
        j->attempts = (int)get_int8(res, r, 4);
        j->chain = malloc(cl);
        if (!j->chain) {
            e = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "ct claim: out of memory");
            goto done;
        }
        memcpy(j->chain, chain, cl);
        j->chain_len = cl;
    }
done:
    PQclear(res);
    if (e) {
        /* calloc'd: rows not reached have no chain. The claim is committed: its rows become
         * due again when the lease ends. */
        mc_store_ct_jobs_free(v, (size_t)rows);
        return e;
    }
    *jobs = v;
    *n = cnt;
    return MC_OK;
}

typedef struct ct_record_ctx {
    const mc_ct_outcome *v;
    int64_t now_s;
} ct_record_ctx;

static void ct_record_params(pg_store *s, size_t i, const void *rows, params *p)
{
    (void)s;
    const ct_record_ctx *c = rows;
    const mc_ct_outcome *o = &c->v[i];
    p_blob(p, 0, o->serial, o->serial_len);
    p_blob(p, 1, o->log_id, MC_CT_LOG_ID_LEN);
    p_int8(p, 2, o->precert ? 1 : 0);
    p_int8(p, 3, (int64_t)o->state);
    p_int8(p, 4, o->next_ms);
    if (o->http_status)
        p_int8(p, 5, o->http_status);
    else
        p->fmt[5] = 1; /* NULL: val stays NULL */
    p_text(p, 6, o->message);
    p_int8(p, 7, c->now_s);
    p_int8(p, 8, o->state == MC_CT_DONE ? o->sct_timestamp : 0);
    /* An SQL NULL sct for outcomes that are not done: the INSERT's WHERE skips them anyway. */
    p_blob(p, 9, o->state == MC_CT_DONE ? o->sct : NULL, o->sct_len);
}

static mc_err pg_ct_record(mc_store *base, const mc_ct_outcome *v, size_t n, int64_t now_s,
                           mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    ct_record_ctx c = {.v = v, .now_s = now_s};
    return pipeline_batch(s, "ct record", PS_CT_RECORD, &c, n, 1, 1, ct_record_params, NULL, NULL,
                          err);
}

static mc_err pg_ct_list(mc_store *base, const uint8_t *serial, size_t serial_len,
                         mc_store_ct_row_fn fn, void *arg, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    params p;
    memset(&p, 0, sizeof p);
    p_blob(&p, 0, serial, serial_len);
    if (!PQsendQueryPrepared(s->conn, stmts[PS_CT_LIST].name, 1, p.val, p.len, p.fmt, 1))
        return pg_err(s, err, NULL, "ct list", NULL);
    PQsetSingleRowMode(s->conn);
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && !e) {
            size_t sl, ll, tl;
            mc_ct_row r = {
                .serial = get_blob(res, 0, 0, &sl),
                .log_id = get_blob(res, 0, 1, &ll),
                .precert = (int)get_int8(res, 0, 2),
                .state = (mc_ct_state)get_int8(res, 0, 3),
                .attempts = (int)get_int8(res, 0, 4),
                .next_ms = get_int8(res, 0, 5),
                .http_status = (int)get_int8(res, 0, 6),
                .message = PQgetisnull(res, 0, 7) ? "" : PQgetvalue(res, 0, 7),
                .sct_timestamp = get_int8(res, 0, 8),
                .sct = get_blob(res, 0, 9, &tl),
            };
            r.serial_len = sl;
            r.sct_len = tl;
            fn(arg, &r);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && !e) {
            e = pg_err(s, err, NULL, "ct list", res);
        }
        PQclear(res);
    }
    return e;
}

static mc_err pg_ct_counts(mc_store *base, int64_t *pending, int64_t *done, int64_t *rejected,
                           mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    PGresult *res = run(s, PS_CT_COUNTS, NULL);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        int64_t *outs[3] = {pending, done, rejected};
        for (int k = 0; k < 3; k++)
            if (outs[k])
                *outs[k] = get_int8(res, 0, k);
    } else {
        e = pg_err(s, err, NULL, "ct counts", res);
    }
    PQclear(res);
    return e;
}

/* --- replacement and revocation -------------------------------------------------------------- */

static mc_err pg_replaced_by(mc_store *base, const uint8_t *serial, size_t serial_len, uint8_t *out,
                             size_t *out_len, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    params p;
    memset(&p, 0, sizeof p);
    p_blob(&p, 0, serial, serial_len);
    PGresult *res = run(s, PS_REPLACED_BY, &p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        e = pg_err(s, err, "serial", "replaced by", res);
    } else if (PQntuples(res) == 1) {
        size_t n;
        const uint8_t *v = get_blob(res, 0, 0, &n);
        if (v && n > 0 && n <= MC_SERIAL_MAX) {
            memcpy(out, v, n);
            *out_len = n;
        }
    }
    PQclear(res);
    return e;
}

static mc_err pg_cert_status(mc_store *base, const uint8_t *serial, size_t serial_len, char *status,
                             size_t cap, int64_t *revoked_at, int *reason, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    char hex[2 * MC_SERIAL_MAX + 1];
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    params p;
    memset(&p, 0, sizeof p);
    p_blob(&p, 0, serial, serial_len);
    PGresult *res = run(s, PS_CERT_STATUS, &p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        e = pg_err(s, err, "serial", "certificate status", res);
    } else if (PQntuples(res) == 0) {
        e = mc_err_set(err, MC_ERR_STORE, "serial", NULL,
                       "certificate status: serial %s: no certificate",
                       mc_store_serial_hex(hex, serial, serial_len));
    } else {
        if (status)
            copy_text(res, 0, status, cap);
        if (revoked_at)
            *revoked_at = PQgetisnull(res, 0, 1) ? -1 : get_int8(res, 0, 1);
        if (reason)
            *reason = PQgetisnull(res, 0, 2) ? -1 : (int)get_int8(res, 0, 2);
    }
    PQclear(res);
    return e;
}

/* Runs sql with the parameters (binary) and checks its status; *changed gets the rows it
 * changed (when not NULL). */
static mc_err pg_exec_params(pg_store *s, const char *sql, int n, const Oid *types, const params *p,
                             int64_t *changed, const char *op, PGresult **keep, mc_errdetail *err)
{
    PGresult *res = PQexecParams(s->conn, sql, n, types, p->val, p->len, p->fmt, 1);
    ExecStatusType st = PQresultStatus(res);
    mc_err e = MC_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        e = pg_err(s, err, NULL, op, res);
    else if (changed)
        *changed += strtoll(PQcmdTuples(res), NULL, 10);
    if (keep && !e)
        *keep = res;
    else
        PQclear(res);
    return e;
}

/* As the SQLite backend: the selection goes into a temporary table numbered in intent order
 * (one INSERT ... SELECT), then each chunk of that numbering is revoked by two set-based UPDATEs
 * in one short transaction. */
static mc_err pg_revoke(mc_store *base, const mc_revoke_sel *sel, int reason, int64_t revoked_at,
                        int dry_run, mc_revoke_counts *out, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    static const char *const where[] = {
        [MC_REVOKE_SERIAL] = "i.serial = $1",
        [MC_REVOKE_ACCOUNT] = "i.account = $1",
        [MC_REVOKE_KEY] = "i.spki_sha256 = $1",
        [MC_REVOKE_PROFILE] = "i.profile = $1 AND i.not_before >= $2 AND i.not_before < $3",
        [MC_REVOKE_LINT] = "i.lint_version = $1",
    };
    char sql[512];
    params p;
    Oid types[4] = {0};
    int np = 1;
    PGresult *res = NULL;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    e = exec_cmd(s,
                 "DROP TABLE IF EXISTS pg_temp.mc_revoke_set;"
                 "CREATE TEMP TABLE mc_revoke_set (k BIGINT GENERATED ALWAYS AS IDENTITY"
                 " PRIMARY KEY, serial BYTEA NOT NULL)",
                 "revoke: selection table", err);
    if (e)
        return e;
    memset(&p, 0, sizeof p);
    switch (sel->by) {
    case MC_REVOKE_SERIAL:
        p_blob(&p, 0, sel->serial, sel->serial_len);
        types[0] = OID_BYTEA;
        break;
    case MC_REVOKE_ACCOUNT:
        p_text(&p, 0, sel->account);
        types[0] = OID_TEXT;
        break;
    case MC_REVOKE_KEY:
        p_blob(&p, 0, sel->spki_sha256, 32);
        types[0] = OID_BYTEA;
        break;
    case MC_REVOKE_PROFILE:
        p_text(&p, 0, sel->profile);
        p_int8(&p, 1, sel->issued_after);
        p_int8(&p, 2, sel->issued_before);
        types[0] = OID_TEXT;
        types[1] = types[2] = OID_INT8;
        np = 3;
        break;
    case MC_REVOKE_LINT:
        p_text(&p, 0, sel->lint_version);
        types[0] = OID_TEXT;
        break;
    }
    snprintf(sql, sizeof sql,
             "INSERT INTO pg_temp.mc_revoke_set (serial) SELECT i.serial FROM intents AS i"
             " JOIN certificates AS c ON c.serial = i.serial WHERE %s ORDER BY i.seq",
             where[sel->by]);
    if ((e = pg_exec_params(s, sql, np, types, &p, &out->selected, "revoke: select", NULL, err)))
        goto done;
    memset(&p, 0, sizeof p);
    p_int8(&p, 0, reason);
    p_int8(&p, 1, revoked_at);
    Oid t4[4] = {OID_INT8, OID_INT8, OID_INT8, OID_INT8};
    if (dry_run) {
        if ((e = pg_exec_params(s,
                                "SELECT count(*) FILTER (WHERE c.status = 'issued'),"
                                " count(*) FILTER (WHERE c.status <> 'issued' AND $1 = 1"
                                " AND c.revocation_reason IS DISTINCT FROM 1),"
                                " CASE WHEN $1 = 1 THEN (SELECT count(DISTINCT i.spki_sha256)"
                                "  FROM pg_temp.mc_revoke_set AS r2 JOIN intents AS i"
                                "  ON i.serial = r2.serial WHERE i.spki_sha256 IS NOT NULL"
                                "  AND NOT EXISTS (SELECT 1 FROM compromised_keys AS k"
                                "  WHERE k.spki_sha256 = i.spki_sha256)) ELSE 0 END"
                                " FROM pg_temp.mc_revoke_set AS r JOIN certificates AS c"
                                " ON c.serial = r.serial",
                                1, t4, &p, NULL, "revoke: dry run", &res, err)))
            goto done;
        out->revoked = get_int8(res, 0, 0);
        out->reason_updated = get_int8(res, 0, 1);
        out->keys_compromised = get_int8(res, 0, 2);
        goto counted;
    }
    /* keyCompromise supersedes an earlier reason; the first revocation time stays (store.h) */
    const char *up_kc = "UPDATE certificates AS c SET revocation_reason = $1"
                        " FROM pg_temp.mc_revoke_set AS r"
                        " WHERE r.k > $3 AND r.k <= $4 AND c.serial = r.serial"
                        " AND c.status = 'revoked' AND c.revocation_reason IS DISTINCT FROM $1";
    const char *up = "UPDATE certificates AS c SET status = 'revoked', revoked_at = $2,"
                     " revocation_reason = $1 FROM pg_temp.mc_revoke_set AS r"
                     " WHERE r.k > $3 AND r.k <= $4 AND c.serial = r.serial"
                     " AND c.status = 'issued'";
    const char *keys = "INSERT INTO compromised_keys (spki_sha256, recorded_at, source)"
                       " SELECT DISTINCT i.spki_sha256, $2, 'revocation' FROM intents AS i"
                       " JOIN pg_temp.mc_revoke_set AS r ON r.serial = i.serial"
                       " WHERE r.k > $3 AND r.k <= $4 AND i.spki_sha256 IS NOT NULL"
                       " AND $1 = $1 ON CONFLICT (spki_sha256) DO NOTHING";
    for (int64_t lo = 0; lo < out->selected; lo += MC_REVOKE_CHUNK) {
        p_int8(&p, 2, lo);
        p_int8(&p, 3, lo + MC_REVOKE_CHUNK);
        if ((e = exec_cmd(s, "BEGIN", "revoke: begin", err)) != MC_OK)
            goto done;
        if (reason == MC_CRL_KEY_COMPROMISE &&
            (e = pg_exec_params(s, up_kc, 4, t4, &p, &out->reason_updated, "revoke: chunk", NULL,
                                err)) != MC_OK)
            goto done;
        if ((e = pg_exec_params(s, up, 4, t4, &p, &out->revoked, "revoke: chunk", NULL, err)) !=
            MC_OK)
            goto done;
        /* SBR 6.1.1.3 (4): the revoked certificates' keys are refused from now on */
        if (reason == MC_CRL_KEY_COMPROMISE &&
            (e = pg_exec_params(s, keys, 4, t4, &p, &out->keys_compromised, "revoke: chunk", NULL,
                                err)) != MC_OK)
            goto done;
        if ((e = exec_cmd(s, "COMMIT", "revoke: commit", err)) != MC_OK)
            goto done;
    }
counted:
    out->unchanged = out->selected - out->revoked - out->reason_updated;
done:
    PQclear(res);
    if (e)
        txn_abort(s);
    if (PQstatus(s->conn) == CONNECTION_OK)
        PQclear(PQexec(s->conn, "DROP TABLE IF EXISTS pg_temp.mc_revoke_set"));
    return e;
}

static const mc_store_ops pg_ops = {
    .name = "postgresql",
    .intents_commit = pg_intents_commit,
    .certs_commit = pg_certs_commit,
    .lookup = pg_lookup,
    .lint_meta = pg_lint_meta,
    .counts = pg_counts,
    .pending = pg_pending,
    .ct_enqueue = pg_ct_enqueue,
    .ct_claim = pg_ct_claim,
    .ct_record = pg_ct_record,
    .ct_list = pg_ct_list,
    .ct_counts = pg_ct_counts,
    .replaced_by = pg_replaced_by,
    .revoke = pg_revoke,
    .cert_status = pg_cert_status,
    .close = pg_close,
};

#endif
