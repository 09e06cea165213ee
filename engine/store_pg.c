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
#include "mailca/audit.h"

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
    /* 6: certificates.order_id loses its UNIQUE index (engine/store.c migration 6 says why:
     * one certificate per order still holds through intents). */
    "ALTER TABLE certificates DROP CONSTRAINT certificates_order_id_key;",
    /* 7: the tables stay (engine/store.c migration 7 re-keys SQLite's certificates by intent
     * and folds subject_keys into intents_spki). Here several engine nodes write at once:
     * subject_keys' primary key is what settles two nodes binding one key at the same moment,
     * and a commit's cost is its WAL flush, not its index pages. The version is recorded so
     * both backends keep one numbering; the comment says why the table is here. */
    "COMMENT ON TABLE subject_keys IS 'first account to use each subject key; on PostgreSQL a"
    " primary key settles concurrent engine nodes (SQLite, one writer, reads intents_spki)';",
    /* 8: the lint set each certificate's issuance enforced (engine/store.c migration 8). */
    "ALTER TABLE intents ADD COLUMN lint_enforced TEXT;",
    /* 9: CRLs (engine/store.c migration 9 says why). */
    "CREATE TABLE crls (number BIGINT PRIMARY KEY, this_update BIGINT NOT NULL,"
    " next_update BIGINT NOT NULL, entries BIGINT NOT NULL, created_at BIGINT NOT NULL,"
    " published_at BIGINT);"
    "CREATE INDEX certificates_revoked ON certificates(serial) WHERE status <> 'issued';",
    /* 10: the audit log (engine/store.c migration 10 says why); one trigger function refuses
     * UPDATE, DELETE and TRUNCATE (SBR 5.4.4). */
    "CREATE TABLE audit_log (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL,"
    " event TEXT NOT NULL, subject TEXT, detail TEXT);"
    "CREATE INDEX audit_log_event_at ON audit_log(event, at);"
    "CREATE FUNCTION mc_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION 'audit_log is append-only (SBR 5.4.4)'; END$$;"
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log"
    " FOR EACH ROW EXECUTE FUNCTION mc_audit_log_append_only();"
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
    " FOR EACH STATEMENT EXECUTE FUNCTION mc_audit_log_append_only();",
    /* 11: partitioned CRLs (engine/store.c migration 11 says why). */
    "ALTER TABLE crls ADD COLUMN shard INTEGER;"
    "CREATE INDEX crls_shard ON crls(shard, number) WHERE shard IS NOT NULL;",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == MC_STORE_SCHEMA_VERSION,
               "store.h MC_STORE_SCHEMA_VERSION is the number of migrations");

/* Type OIDs of the parameters (pg_type.h is a server header). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_BYTEA_ARR 1001
#define OID_INT8_ARR 1016
#define OID_TEXT_ARR 1009
/* The most parameters a statement takes (the intent insert). */
#define PG_MAX_PARAMS 19

enum {
    PS_INTENT,
    PS_CERT,
    PS_REPLACE,
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
    PS_REVOKED,
    PS_CRL_NUMBER,
    PS_CRL_LATEST,
    PS_CRL_PUBLISHED,
    PS_SERIAL_STATUS,
    PS_AUDIT_APPEND,
    PS_AUDIT_LIST,
    PS_REVOKED_SHARD,
    PS_CRL_SHARD_NUMBER,
    PS_CRL_SHARDS_LATEST,
    PS_CRL_SHARDS_KNOWN,
    PS_COUNT_
};

static const struct {
    const char *name, *sql;
    int nparams;
    Oid types[PG_MAX_PARAMS];
} stmts[PS_COUNT_] = {
    /* The whole batch in one statement (migration 6 era): the rows travel as arrays (binary),
     * unnest() WITH ORDINALITY numbers them k = 1..n in batch order, and the statement answers
     * one row per input row, in that order: 0 (recorded now), 1 (the order has a certificate),
     * 2 (intent without one), 3 (a new order whose subject key another account owns: nothing
     * written), 4 (the key was bound by a transaction that committed after this statement's
     * snapshot: retry, reported as a serialization failure) or 5 (the key is compromised,
     * SBR 6.1.1.3 (4): nothing written, and an intent of this order recorded earlier is not
     * signed either). The answers are those of the rows run one after another in batch order:
     * - kb binds each new key to the account of the FIRST row (lowest k) that uses it, whether
     *   or not that row's order is new (as a row-at-a-time insert does); a row's owner is the
     *   key's account bound now (kb) or before (the snapshot); a key bound by another node
     *   after the snapshot is in neither (ON CONFLICT waited for it) and answers 4.
     * - ins inserts the rows whose key is theirs in batch order (ORDER BY k); of rows repeating
     *   an order id only the first such row is inserted (ON CONFLICT DO NOTHING skips the rest
     *   as it skips an order recorded before), and only that row answers 0.
     * Only a conflict on order_id is absorbed; a serial conflict fails the statement (and the
     * batch). The key binding and the intents commit in the same transaction. */
    [PS_INTENT] = {"mc_intents",
                   "WITH t AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[],"
                   " $4::bytea[], $5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::bytea[],"
                   " $10::int8[], $11::int8[], $12::text[], $13::text[], $14::text[], $15::text[],"
                   " $17::bytea[], $18::bytea[], $19::text[]) WITH ORDINALITY AS t(order_id,"
                   " account, profile, profile_hash, lint_version, engine_version, serial, tbs,"
                   " tbs_hash, not_before, not_after, mailboxes, evidence, lint_warnings, replaces,"
                   " spki, replaces_serial, lint_enforced, k)),"
                   /* per-row index probes (correlated subqueries), never a scan of the
                    * key tables whatever the plan's row estimates */
                   " tc AS (SELECT t.*, t.spki IS NOT NULL AND EXISTS (SELECT 1 FROM"
                   " compromised_keys AS c WHERE c.spki_sha256 = t.spki) AS comp FROM t),"
                   " kb AS (INSERT INTO subject_keys (spki_sha256, account, first_order_id,"
                   " created_at) SELECT DISTINCT ON (spki) spki, account, order_id, $16 FROM tc"
                   " WHERE spki IS NOT NULL AND NOT comp ORDER BY spki, k"
                   " ON CONFLICT (spki_sha256) DO NOTHING RETURNING spki_sha256, account),"
                   " tk AS (SELECT x.*, coalesce(x.spki IS NULL OR (NOT x.comp AND"
                   " x.owner = x.account), false) AS ok FROM (SELECT tc.*,"
                   " coalesce(kb.account, (SELECT s.account FROM subject_keys AS s"
                   " WHERE s.spki_sha256 = tc.spki)) AS owner"
                   " FROM tc LEFT JOIN kb ON kb.spki_sha256 = tc.spki) AS x),"
                   " ins AS (INSERT INTO intents (order_id, account, profile, profile_hash,"
                   " lint_version, engine_version, serial, tbs, tbs_hash, not_before, not_after,"
                   " mailboxes, evidence, lint_warnings, replaces, created_at, spki_sha256,"
                   " replaces_serial, lint_enforced)"
                   " SELECT order_id, account, profile, profile_hash, lint_version,"
                   " engine_version, serial, tbs, tbs_hash, not_before, not_after, mailboxes,"
                   " evidence, lint_warnings, replaces, $16, spki, replaces_serial, lint_enforced"
                   " FROM tk"
                   " WHERE ok ORDER BY k ON CONFLICT (order_id) DO NOTHING RETURNING order_id)"
                   " SELECT (CASE WHEN tk.ok AND ins.order_id IS NOT NULL AND tk.k ="
                   " min(CASE WHEN tk.ok THEN tk.k END) OVER (PARTITION BY tk.order_id) THEN 0"
                   " WHEN EXISTS (SELECT 1 FROM intents AS i JOIN certificates AS c"
                   " ON c.serial = i.serial WHERE i.order_id = tk.order_id) THEN 1"
                   " WHEN tk.comp THEN 5"
                   " WHEN ins.order_id IS NOT NULL OR tk.ok"
                   " OR EXISTS (SELECT 1 FROM intents WHERE order_id = tk.order_id) THEN 2"
                   " WHEN tk.owner IS NULL THEN 4"
                   " ELSE 3 END)::int8 FROM tk LEFT JOIN ins ON ins.order_id = tk.order_id"
                   " ORDER BY tk.k",
                   19,
                   {OID_TEXT_ARR, OID_TEXT_ARR, OID_TEXT_ARR, OID_BYTEA_ARR, OID_TEXT_ARR,
                    OID_TEXT_ARR, OID_BYTEA_ARR, OID_BYTEA_ARR, OID_BYTEA_ARR, OID_INT8_ARR,
                    OID_INT8_ARR, OID_TEXT_ARR, OID_TEXT_ARR, OID_TEXT_ARR, OID_TEXT_ARR, OID_INT8,
                    OID_BYTEA_ARR, OID_BYTEA_ARR, OID_TEXT_ARR}},
    /* The certificates of a batch in one statement, as arrays (k = batch order). Inserts a row
     * only when its order's intent has this serial; of rows repeating a serial the first such
     * row (lowest k) is the one inserted. Answers per input row, in order: inserted now (the
     * row itself, not a repeat), the intent's serial (NULL: no intent), the certificate stored
     * before this statement (NULL: none), and the intent's replaces_serial, so a refused row
     * is explained and replacements are linked without another query per row. */
    [PS_CERT] = {"mc_certs",
                 "WITH t AS (SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[])"
                 " WITH ORDINALITY AS t(order_id, serial, der, k)),"
                 " ti AS (SELECT t.k, t.serial, t.der, i.serial AS iserial,"
                 " i.order_id AS iorder, i.replaces_serial, coalesce(i.serial = t.serial, false)"
                 " AS m FROM t LEFT JOIN intents AS i ON i.order_id = t.order_id),"
                 " ins AS (INSERT INTO certificates (serial, order_id, der, issued_at)"
                 " SELECT serial, iorder, der, $4 FROM ti WHERE m ORDER BY k"
                 " ON CONFLICT (serial) DO NOTHING RETURNING serial)"
                 /* the stored certificate is looked up only for the rows not inserted now
                  * (one index probe per refused row instead of per row) */
                 " SELECT x.ok, x.iserial, CASE WHEN x.ok THEN NULL ELSE (SELECT c.der FROM"
                 " certificates AS c WHERE c.serial = x.iserial) END, x.replaces_serial"
                 " FROM (SELECT ti.m AND ins.serial IS NOT NULL AND ti.k ="
                 " min(CASE WHEN ti.m THEN ti.k END) OVER (PARTITION BY ti.serial) AS ok,"
                 " ti.iserial, ti.replaces_serial, ti.k"
                 " FROM ti LEFT JOIN ins ON ins.serial = ti.serial) AS x ORDER BY x.k",
                 4,
                 {OID_TEXT_ARR, OID_BYTEA_ARR, OID_BYTEA_ARR, OID_INT8}},
    /* store.h "replacement": the replaced certificates' replaced_by, for pairs (replaced,
     * replacing) the client filtered to what a row-at-a-time insert would have linked. */
    [PS_REPLACE] = {"mc_replace",
                    "UPDATE certificates AS c SET replaced_by = u.n"
                    " FROM unnest($1::bytea[], $2::bytea[]) AS u(x, n)"
                    " WHERE c.serial = u.x AND c.serial <> u.n AND c.replaced_by IS NULL",
                    2,
                    {OID_BYTEA_ARR, OID_BYTEA_ARR}},
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
    /* After a serial conflict: the first row of a batch whose serial another order holds. */
    [PS_SERIAL_OWNER] =
        {"mc_serial_owner",
         "SELECT t.k, i.order_id FROM unnest($1::bytea[], $2::text[])"
         " WITH ORDINALITY AS t(serial, order_id, k) JOIN intents AS i"
         " ON i.serial = t.serial AND i.order_id <> t.order_id ORDER BY t.k LIMIT 1",
         2,
         {OID_BYTEA_ARR, OID_TEXT_ARR}},
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
    [PS_REVOKED] = {"mc_revoked",
                    "SELECT c.serial, c.revoked_at, coalesce(c.revocation_reason, 0)::bigint"
                    " FROM certificates AS c JOIN intents AS i ON i.serial = c.serial"
                    " WHERE c.status <> 'issued' AND i.not_after >= $1 ORDER BY c.serial",
                    1,
                    {OID_INT8}},
    /* under pg_crl_begin's table lock */
    [PS_CRL_NUMBER] = {"mc_crl_number",
                       "INSERT INTO crls (number, this_update, next_update, entries, created_at)"
                       " SELECT coalesce(max(number), 0) + 1, $1, $2, $3, $4 FROM crls"
                       " RETURNING number",
                       4,
                       {OID_INT8, OID_INT8, OID_INT8, OID_INT8}},
    /* OCSP: every intent, its certificate when there is one */
    [PS_SERIAL_STATUS] = {"mc_serial_status",
                          "SELECT i.not_after, (c.serial IS NOT NULL)::int::bigint, c.status,"
                          " c.revoked_at, c.revocation_reason::bigint FROM intents AS i"
                          " LEFT JOIN certificates AS c ON c.serial = i.serial"
                          " WHERE i.serial = $1",
                          1,
                          {OID_BYTEA}},
    /* one statement for the whole group: atomic, and durable when it returns */
    [PS_AUDIT_APPEND] = {"mc_audit_append",
                         "INSERT INTO audit_log (at, actor, event, subject, detail)"
                         " SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[],"
                         " $5::text[])",
                         5,
                         {OID_INT8_ARR, OID_TEXT_ARR, OID_TEXT_ARR, OID_TEXT_ARR, OID_TEXT_ARR}},
    [PS_AUDIT_LIST] = {"mc_audit_list",
                       "SELECT id, at, actor, event, subject, detail FROM audit_log"
                       " WHERE id > $1 AND at >= $2 AND ($3::text IS NULL OR event = $3)"
                       " ORDER BY id",
                       3,
                       {OID_INT8, OID_INT8, OID_TEXT}},
    [PS_CRL_LATEST] = {"mc_crl_latest",
                       "SELECT number, this_update, next_update FROM crls"
                       " WHERE published_at IS NOT NULL AND shard IS NULL"
                       " ORDER BY number DESC LIMIT 1",
                       0,
                       {0}},
    [PS_CRL_PUBLISHED] = {"mc_crl_published",
                          "UPDATE crls SET published_at = $2 WHERE number BETWEEN $1 AND $3",
                          3,
                          {OID_INT8, OID_INT8, OID_INT8}},
    [PS_REVOKED_SHARD] = {"mc_revoked_shard",
                          "SELECT c.serial, c.revoked_at, coalesce(c.revocation_reason, 0)::bigint,"
                          " i.tbs FROM certificates AS c JOIN intents AS i ON i.serial = c.serial"
                          " WHERE c.status <> 'issued' AND i.not_after >= $1 ORDER BY c.serial",
                          1,
                          {OID_INT8}},
    /* under pg_crl_shards_begin's table lock */
    [PS_CRL_SHARD_NUMBER] = {"mc_crl_shard_number",
                             "INSERT INTO crls (number, this_update, next_update, entries,"
                             " created_at, shard)"
                             " SELECT coalesce(max(number), 0) + 1, $1, $2, $3, $4, $5::integer"
                             " FROM crls RETURNING number",
                             5,
                             {OID_INT8, OID_INT8, OID_INT8, OID_INT8, OID_INT8}},
    [PS_CRL_SHARDS_LATEST] = {"mc_crl_shards_latest",
                              "SELECT count(*)::bigint, coalesce(min(c.this_update), 0)::bigint,"
                              " coalesce(min(c.next_update), 0)::bigint"
                              " FROM crls AS c JOIN (SELECT max(number) AS number FROM crls"
                              " WHERE shard IS NOT NULL AND published_at IS NOT NULL"
                              " GROUP BY shard) AS l ON c.number = l.number",
                              0,
                              {0}},
    [PS_CRL_SHARDS_KNOWN] = {"mc_crl_shards_known",
                             "SELECT DISTINCT shard::bigint FROM crls WHERE shard IS NOT NULL"
                             " ORDER BY 1",
                             0,
                             {0}},
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
    /* A commit must be durable when it returns: the intents before the HSM signs, the
     * certificates before their results are written. A server (or role, or database) set to
     * synchronous_commit = off acknowledges commits a crash can still lose, so this session
     * turns it back on; stronger settings (remote_write, remote_apply: replicas) are kept. */
    PGresult *sc = PQexec(s->conn, "SELECT current_setting('synchronous_commit') = 'off'");
    int off = PQresultStatus(sc) == PGRES_TUPLES_OK && PQntuples(sc) == 1 &&
              strcmp(PQgetvalue(sc, 0, 0), "t") == 0;
    mc_err e0 = PQresultStatus(sc) == PGRES_TUPLES_OK
                    ? MC_OK
                    : pg_err(s, err, "synchronous_commit", "store open: settings", sc);
    PQclear(sc);
    if (e0 == MC_OK && off)
        e0 = exec_cmd(s, "SET synchronous_commit = on", "store open: synchronous_commit", err);
    if (e0)
        return e0;
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
    if ((e = mc_store_schema_check(cur, err)) != MC_OK)
        goto done;
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
    if (cur < MC_STORE_SCHEMA_VERSION) {
        /* SBR 5.4.1 3.iv: the upgrade of the store is an update of the Certificate System */
        char actor[MC_AUDIT_ACTOR_MAX], detail[128], at[24];
        mc_store_migration_event(cur, actor, sizeof actor, detail, sizeof detail);
        snprintf(at, sizeof at, "%lld", (long long)time(NULL));
        const char *vals[3] = {at, actor, detail};
        res = PQexecParams(s->conn,
                           "INSERT INTO audit_log (at, actor, event, subject, detail)"
                           " VALUES ($1::bigint, $2, 'store.migrate', 'schema', $3)",
                           3, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            e = pg_err(s, err, NULL, "migrate: audit", res);
            goto done;
        }
        PQclear(res);
        res = NULL;
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
/* Drops a connection whose pipeline is in an unknown state (a send failed, or the Sync never
 * came): the next call reconnects, and an open transaction dies with the old connection.
 * Returns e, or the connection's error for what when e is MC_OK. */
static mc_err pipeline_lost(pg_store *s, mc_err e, const char *what, mc_errdetail *err)
{
    if (!e)
        e = pg_err(s, err, NULL, what, NULL);
    PQexitPipelineMode(s->conn);
    PQreset(s->conn);
    s->prepared = 0;
    return e;
}

/* What pipeline_read does with one command's result: returns the pipeline's error so far (e,
 * or a new one); may keep the result by setting *res to NULL. */
typedef mc_err (*result_fn)(pg_store *s, size_t cmd, PGresult **res, mc_err e, void *arg,
                            mc_errdetail *err);

/* Reads the results of the ncmd commands sent in pipeline mode, then the Sync marker, and
 * leaves pipeline mode. Results arrive in the order sent, each command's followed by one NULL;
 * all are read even after an error so the connection leaves pipeline mode clean. Two NULLs in a
 * row, or a connection gone bad, mean the Sync will never come (the connection was lost under
 * the pipeline): then the connection is dropped (pipeline_lost). */
static mc_err pipeline_read(pg_store *s, const char *what, size_t ncmd, result_fn fn, void *arg,
                            mc_errdetail *err)
{
    mc_err e = MC_OK;
    size_t cmd = 0;
    int nulls = 0;
    for (;;) {
        PGresult *res = PQgetResult(s->conn);
        if (!res) {
            if (PQstatus(s->conn) != CONNECTION_OK || ++nulls > 1)
                return pipeline_lost(s, e, what, err);
            continue; /* end of one command's results */
        }
        nulls = 0;
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        e = fn(s, cmd, &res, e, arg, err);
        PQclear(res);
        if (PQstatus(s->conn) != CONNECTION_OK || ++cmd > ncmd)
            return pipeline_lost(s, e, what, err);
    }
    if (!PQexitPipelineMode(s->conn) && !e)
        e = pg_err(s, err, NULL, what, NULL);
    if (!e && cmd != ncmd)
        e = mc_err_set(err, MC_ERR_INTERNAL, NULL, NULL, "%s: %zu results for %zu commands", what,
                       cmd, ncmd);
    return e;
}

typedef mc_err (*row_fn)(pg_store *s, size_t i, PGresult *res, void *arg, mc_errdetail *err);
typedef void (*send_fn)(pg_store *s, size_t i, const void *rows, params *p);

/* A chunk of rows: [BEGIN] rows [COMMIT]; each row's result goes to on_row. */
typedef struct chunk_read {
    const char *what;
    size_t from, nrows;
    int begin;
    row_fn on_row;
    void *arg;
} chunk_read;

static mc_err chunk_result(pg_store *s, size_t cmd, PGresult **res, mc_err e, void *arg,
                           mc_errdetail *err)
{
    const chunk_read *c = arg;
    ExecStatusType st = PQresultStatus(*res);
    int is_row = cmd >= (size_t)c->begin && cmd < (size_t)c->begin + c->nrows;
    size_t i = c->from + (cmd - (size_t)c->begin);
    char op[MC_ERR_MSG_MAX / 2];
    if (e)
        return e;
    if (st == PGRES_FATAL_ERROR) {
        if (is_row)
            snprintf(op, sizeof op, "%s: row %zu", c->what, i);
        else
            snprintf(op, sizeof op, "%s: %s", c->what, cmd == 0 && c->begin ? "begin" : "commit");
        e = pg_err(s, err, NULL, op, *res);
        if (is_row && c->on_row)
            e = c->on_row(s, i, *res, c->arg, err); /* may say more about the failed row */
    } else if (is_row && st == PGRES_TUPLES_OK) {
        e = c->on_row(s, i, *res, c->arg, err);
    } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        e = pg_err(s, err, NULL, c->what, *res);
    }
    return e;
}

static mc_err pipeline_chunk(pg_store *s, const char *what, int stmt, const void *rows, size_t from,
                             size_t to, int begin, int commit, int result_format, send_fn build,
                             row_fn on_row, void *arg, mc_errdetail *err)
{
    params p;
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
    if (!ok)
        return pipeline_lost(s, MC_OK, what, err);
    chunk_read cr = {what, from, to - from, begin, on_row, arg};
    return pipeline_read(s, what, (size_t)begin + (to - from) + (size_t)commit, chunk_result, &cr,
                         err);
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

/* A one-dimensional array parameter in PostgreSQL's binary array format (array_recv): ndim,
 * has-null flag, element type, length and lower bound, then per element its length (-1: NULL)
 * and bytes. Grown as elements are added; oom set when an allocation failed. */
typedef struct pg_arr {
    uint8_t *p;
    size_t len, cap;
    int oom;
} pg_arr;

static void arr_raw(pg_arr *a, const void *v, size_t n)
{
    if (a->oom)
        return;
    if (a->len + n > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->len + n)
            cap *= 2;
        uint8_t *q = realloc(a->p, cap);
        if (!q) {
            a->oom = 1;
            return;
        }
        a->p = q;
        a->cap = cap;
    }
    memcpy(a->p + a->len, v, n);
    a->len += n;
}

static void arr_u32(pg_arr *a, uint32_t v)
{
    uint32_t be = htobe32(v);
    arr_raw(a, &be, 4);
}

static void arr_begin(pg_arr *a, Oid elem, size_t n)
{
    a->len = 0;
    arr_u32(a, 1);
    arr_u32(a, 1); /* may hold NULLs */
    arr_u32(a, elem);
    arr_u32(a, (uint32_t)n);
    arr_u32(a, 1);
}

static void arr_put(pg_arr *a, const void *v, size_t n)
{
    if (!v) {
        arr_u32(a, 0xffffffffu); /* -1: NULL */
        return;
    }
    arr_u32(a, (uint32_t)n);
    arr_raw(a, v, n);
}

static void arr_text(pg_arr *a, const char *v)
{
    arr_put(a, v, v ? strlen(v) : 0);
}

static void arr_int8(pg_arr *a, int64_t v)
{
    uint64_t be = htobe64((uint64_t)v);
    arr_put(a, &be, 8);
}

static void arrs_free(pg_arr *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(a[i].p);
}

/* Points parameter i at array a (binary). 0, or -1 when building it ran out of memory. */
static int p_arr(params *p, int i, const pg_arr *a)
{
    p->val[i] = (const char *)a->p;
    p->len[i] = (int)a->len;
    p->fmt[i] = 1;
    return a->oom || a->len > 0x7fffffff ? -1 : 0;
}

/* One statement, after BEGIN when begin: its result (or its failure, whose fields the caller
 * may read) is kept in *out. */
typedef struct stmt_read {
    const char *what;
    int begin;
    PGresult **out;
} stmt_read;

static mc_err stmt_result(pg_store *s, size_t cmd, PGresult **res, mc_err e, void *arg,
                          mc_errdetail *err)
{
    const stmt_read *r = arg;
    int last = cmd == (size_t)r->begin;
    ExecStatusType st = PQresultStatus(*res);
    if (e)
        return e;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char op[MC_ERR_MSG_MAX / 2];
        snprintf(op, sizeof op, "%s%s", r->what, cmd == 0 && r->begin ? ": begin" : "");
        e = pg_err(s, err, NULL, op, *res);
    }
    if (last && !*r->out) {
        *r->out = *res;
        *res = NULL;
    }
    return e;
}

/* Sends the prepared statement stmt with p in pipeline mode, preceded by BEGIN when begin, and
 * reads its results: *out gets the statement's result (caller PQclears; NULL on error). One
 * round trip. On error the transaction is rolled back and err says why. */
static mc_err pipeline_stmt(pg_store *s, const char *what, int begin, int stmt, const params *p,
                            PGresult **out, mc_errdetail *err)
{
    *out = NULL;
    if (!PQenterPipelineMode(s->conn))
        return pg_err(s, err, NULL, what, NULL);
    int ok = 1;
    if (begin)
        ok = PQsendQueryParams(s->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    if (ok)
        ok = PQsendQueryPrepared(s->conn, stmts[stmt].name, stmts[stmt].nparams, p->val, p->len,
                                 p->fmt, 1);
    if (ok)
        ok = PQpipelineSync(s->conn);
    if (!ok)
        return pipeline_lost(s, MC_OK, what, err);
    stmt_read sr = {what, begin, out};
    mc_err e = pipeline_read(s, what, (size_t)begin + 1, stmt_result, &sr, err);
    if (!e && !*out)
        e = mc_err_set(err, MC_ERR_INTERNAL, NULL, NULL, "%s: no result for the statement", what);
    if (e)
        txn_abort(s);
    return e;
}

/* Makes the connection ready and the statements prepared. */
static mc_err batch_ready(pg_store *s, mc_errdetail *err)
{
    mc_err e = conn_ready(s, err);
    if (!e && !s->prepared)
        e = prepare_all(s, err);
    return e;
}

/* --- intents --------------------------------------------------------------------------------- */

/* The rows of one intents statement: at most this many per statement (a larger batch runs as
 * several statements in the same transaction, each seeing the ones before). */
#define PG_INTENTS_MAX 4096

static int cmp_serial_idx(const void *a, const void *b, void *arg)
{
    const mc_intent *v = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const mc_intent *x = &v[i], *y = &v[j];
    size_t n = x->serial_len < y->serial_len ? x->serial_len : y->serial_len;
    int c = memcmp(x->serial, y->serial, n);
    if (c)
        return c;
    if (x->serial_len != y->serial_len)
        return x->serial_len < y->serial_len ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* After a serial conflict (the batch is rolled back): names the first row whose serial an
 * earlier row of the batch (another order id) or a recorded intent holds. Keeps the message
 * already in err when neither is found (the owner may have been rolled back meanwhile). */
static mc_err serial_collision(pg_store *s, const mc_intent *v, size_t n, mc_errdetail *err)
{
    char hex[2 * MC_SERIAL_MAX + 1], field[MC_ERR_FIELD_MAX];
    size_t best = n, owner = n;
    size_t *ix = malloc(n * sizeof *ix);
    if (ix) {
        for (size_t i = 0; i < n; i++)
            ix[i] = i;
        qsort_r(ix, n, sizeof *ix, cmp_serial_idx, (void *)v);
        /* within a run of equal serials, the first row (lowest index) is the holder */
        for (size_t r = 0; r < n;) {
            size_t e = r + 1;
            while (e < n && v[ix[e]].serial_len == v[ix[r]].serial_len &&
                   memcmp(v[ix[e]].serial, v[ix[r]].serial, v[ix[r]].serial_len) == 0)
                e++;
            for (size_t q = r + 1; q < e; q++)
                if (strcmp(v[ix[q]].order_id, v[ix[r]].order_id) != 0 && ix[q] < best) {
                    best = ix[q];
                    owner = ix[r];
                    break;
                }
            r = e;
        }
        free(ix);
    }
    /* a recorded intent of another order, for a row before the in-batch one */
    pg_arr a[2] = {{0}};
    params p;
    memset(&p, 0, sizeof p);
    size_t m = best < n ? best : n;
    PGresult *res = NULL;
    if (m > 0) {
        arr_begin(&a[0], OID_BYTEA, m);
        arr_begin(&a[1], OID_TEXT, m);
        for (size_t i = 0; i < m; i++) {
            arr_put(&a[0], v[i].serial, v[i].serial_len);
            arr_text(&a[1], v[i].order_id);
        }
        if (p_arr(&p, 0, &a[0]) == 0 && p_arr(&p, 1, &a[1]) == 0)
            res = run(s, PS_SERIAL_OWNER, &p);
    }
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        size_t i = (size_t)get_int8(res, 0, 0) - 1;
        snprintf(field, sizeof field, "intents[%zu].serial", i);
        mc_err_set(err, MC_ERR_STORE, field, NULL,
                   "intents commit: serial %s of order '%s' is already recorded for order '%s'",
                   mc_store_serial_hex(hex, v[i].serial, v[i].serial_len), v[i].order_id,
                   PQgetvalue(res, 0, 1));
    } else if (best < n) {
        snprintf(field, sizeof field, "intents[%zu].serial", best);
        mc_err_set(err, MC_ERR_STORE, field, NULL,
                   "intents commit: serial %s of order '%s' is already recorded for order '%s'",
                   mc_store_serial_hex(hex, v[best].serial, v[best].serial_len), v[best].order_id,
                   v[owner].order_id);
    }
    PQclear(res);
    arrs_free(a, 2);
    return MC_ERR_STORE;
}

/* Reads the answers of one intents statement into state[0..n). */
static mc_err intents_answers(const mc_intent *v, size_t n, PGresult *res, mc_intent_state *state,
                              mc_errdetail *err)
{
    if ((size_t)PQntuples(res) != n)
        return mc_err_set(err, MC_ERR_INTERNAL, "intents", NULL,
                          "intents commit: %d answers for %zu rows", PQntuples(res), n);
    for (size_t i = 0; i < n; i++) {
        int64_t a = get_int8(res, (int)i, 0);
        switch (a) {
        case 0:
            state[i] = MC_INTENT_NEW;
            break;
        case 1:
            state[i] = MC_INTENT_ISSUED;
            break;
        case 2:
            state[i] = MC_INTENT_PENDING;
            break;
        case 3:
            state[i] = MC_INTENT_KEY_BOUND;
            break;
        case 5:
            state[i] = MC_INTENT_KEY_COMPROMISED;
            break;
        case 4:
            return mc_err_set(err, MC_ERR_STORE, "intents", NULL,
                              "intents commit: order '%s': its subject key was bound by another "
                              "node meanwhile, retry (sqlstate 40001)",
                              v[i].order_id);
        default:
            return mc_err_set(err, MC_ERR_INTERNAL, "intents", NULL,
                              "intents commit: order '%s': unexpected answer %lld", v[i].order_id,
                              (long long)a);
        }
    }
    return MC_OK;
}

/* Runs the intents statement over v[0..n) (n <= PG_INTENTS_MAX) in the open transaction (begin:
 * opens it). On error the transaction is rolled back. */
static mc_err intents_chunk(pg_store *s, const mc_intent *v, size_t n, int64_t now, int begin,
                            mc_intent_state *state, mc_errdetail *err)
{
    enum { NA = 18 };
    static const Oid elem[NA] = {OID_TEXT,  OID_TEXT,  OID_TEXT,  OID_BYTEA, OID_TEXT,  OID_TEXT,
                                 OID_BYTEA, OID_BYTEA, OID_BYTEA, OID_INT8,  OID_INT8,  OID_TEXT,
                                 OID_TEXT,  OID_TEXT,  OID_TEXT,  OID_BYTEA, OID_BYTEA, OID_TEXT};
    pg_arr a[NA];
    params p;
    PGresult *res = NULL;
    mc_err e = MC_OK;
    memset(a, 0, sizeof a);
    memset(&p, 0, sizeof p);
    for (int k = 0; k < NA; k++)
        arr_begin(&a[k], elem[k], n);
    for (size_t i = 0; i < n; i++) {
        const mc_intent *it = &v[i];
        uint8_t rser[MC_SERIAL_MAX];
        size_t rser_len = 0;
        arr_text(&a[0], it->order_id);
        arr_text(&a[1], it->account);
        arr_text(&a[2], it->profile);
        arr_put(&a[3], it->profile_hash, 32);
        arr_text(&a[4], it->lint_version);
        arr_text(&a[5], it->engine_version);
        arr_put(&a[6], it->serial, it->serial_len);
        arr_put(&a[7], it->tbs, it->tbs_len);
        arr_put(&a[8], it->tbs_hash, 32);
        arr_int8(&a[9], it->not_before);
        arr_int8(&a[10], it->not_after);
        arr_text(&a[11], it->mailboxes);
        arr_text(&a[12], it->evidence);
        arr_text(&a[13], it->lint_warnings);
        arr_text(&a[14], it->replaces);
        arr_put(&a[15], it->spki_sha256, 32);
        if (it->replaces && mc_store_serial_parse(it->replaces, rser, &rser_len))
            arr_put(&a[16], rser, rser_len);
        else
            arr_put(&a[16], NULL, 0);
        arr_text(&a[17], it->lint_enforced);
    }
    /* parameters $1..$15 are the first arrays, $16 the time, $17..$19 the last three */
    int bad = 0;
    for (int k = 0; k < 15; k++)
        bad |= p_arr(&p, k, &a[k]);
    p_int8(&p, 15, now);
    bad |= p_arr(&p, 16, &a[15]);
    bad |= p_arr(&p, 17, &a[16]);
    bad |= p_arr(&p, 18, &a[17]);
    if (bad) {
        e = mc_err_set(err, MC_ERR_NOMEM, "intents", NULL, "intents commit: out of memory");
        if (!begin)
            txn_abort(s);
        goto done;
    }
    e = pipeline_stmt(s, "intents commit", begin, PS_INTENT, &p, &res, err);
    if (e) {
        const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
        /* 23505: unique_violation; the order id conflict is absorbed, so this is the serial */
        if (st && strcmp(st, "23505") == 0 && cons && strcmp(cons, "intents_serial_key") == 0)
            e = serial_collision(s, v, n, err);
        goto done;
    }
    e = intents_answers(v, n, res, state, err);
    if (e)
        txn_abort(s);
done:
    PQclear(res);
    arrs_free(a, NA);
    return e;
}

static mc_err pg_intents_commit(mc_store *base, const mc_intent *v, size_t n,
                                mc_intent_state *state, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    const int64_t now = (int64_t)time(NULL);
    mc_err e = batch_ready(s, err);
    if (e)
        return e;
    /* BEGIN and the statement in one round trip, COMMIT in a second: a row answering "retry"
     * (4) must roll back the whole batch, which is known only once the answers are read. */
    for (size_t from = 0; from < n && !e; from += PG_INTENTS_MAX) {
        size_t m = n - from > PG_INTENTS_MAX ? PG_INTENTS_MAX : n - from;
        e = intents_chunk(s, v + from, m, now, from == 0, state + from, err);
        if (e && from > 0 && strncmp(err->field, "intents[", 8) == 0) {
            /* the chunk named its row from 0: make it the batch's index */
            size_t i = (size_t)strtoull(err->field + 8, NULL, 10) + from;
            snprintf(err->field, sizeof err->field, "intents[%zu].serial", i);
        }
    }
    if (!e && (e = exec_cmd(s, "COMMIT", "intents commit: commit", err)) != MC_OK)
        txn_abort(s);
    return e;
}

/* --- certificates ---------------------------------------------------------------------------- */

#define PG_CERTS_MAX 4096

static int same_blob(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

/* Row i (batch index bi) was not inserted: a replay of the same DER is harmless (a collector
 * retrying a batch, or a repeat within it), and so is another signature over the same
 * TBSCertificate (*resigned set: the stored certificate stands); anything else is refused. */
static mc_err cert_refused(pg_store *s, const mc_stored_cert *v, size_t i, size_t bi, PGresult *res,
                           const uint8_t *inserted, uint8_t *resigned, mc_errdetail *err)
{
    const mc_stored_cert *ce = &v[i];
    char field[MC_ERR_FIELD_MAX], hex[2 * MC_SERIAL_MAX + 1], hex2[2 * MC_SERIAL_MAX + 1];
    snprintf(field, sizeof field, "certs[%zu]", bi);
    size_t iser_len, der_len;
    const uint8_t *iser = get_blob(res, (int)i, 1, &iser_len);
    const uint8_t *der = get_blob(res, (int)i, 2, &der_len);
    PGresult *again = NULL;
    mc_err e = MC_OK;
    if (!iser) {
        e = mc_err_set(err, MC_ERR_STORE, field, NULL,
                       "certs commit: no intent recorded for order '%s'", ce->order_id);
        goto done;
    }
    if (!same_blob(iser, iser_len, ce->serial, ce->serial_len)) {
        e = mc_err_set(err, MC_ERR_STORE, field, NULL,
                       "certs commit: order '%s': serial %s does not match the intent's %s",
                       ce->order_id, mc_store_serial_hex(hex, ce->serial, ce->serial_len),
                       mc_store_serial_hex(hex2, iser, iser_len));
        goto done;
    }
    /* inserted by an earlier row of this statement? then that row's DER is the stored one */
    for (size_t j = 0; j < i && !der; j++)
        if (inserted[j] && same_blob(v[j].serial, v[j].serial_len, ce->serial, ce->serial_len)) {
            der = v[j].der;
            der_len = v[j].der_len;
        }
    if (!der) {
        /* Another node committed it while this statement waited on the row: ON CONFLICT saw
         * it, the statement's snapshot did not. A new statement (READ COMMITTED) does. */
        params p;
        memset(&p, 0, sizeof p);
        p_text(&p, 0, ce->order_id);
        again = run(s, PS_LOOKUP, &p);
        if (PQresultStatus(again) != PGRES_TUPLES_OK) {
            e = pg_err(s, err, field, "certs commit: read the stored certificate", again);
            goto done;
        }
        der = PQntuples(again) == 1 ? get_blob(again, 0, 2, &der_len) : NULL;
    }
    if (!der) {
        e = mc_err_set(err, MC_ERR_INTERNAL, field, NULL,
                       "certs commit: order '%s': certificate neither inserted nor stored",
                       ce->order_id);
        goto done;
    }
    e = mc_store_cert_vs_stored(ce, der, der_len, field, resigned, err);
done:
    PQclear(again);
    return e;
}

/* Links the replacements of the certificates inserted now (store.h "replacement") as a
 * row-at-a-time insert with the SQLite trigger does: row i (inserted now, its intent replacing
 * X, X not itself) sets X's replaced_by unless X was inserted now by a LATER row (it did not
 * exist yet when row i went in); of several rows replacing one X the first counts. */
static mc_err certs_replacements(pg_store *s, const mc_stored_cert *v, size_t n, PGresult *res,
                                 const uint8_t *inserted, mc_errdetail *err)
{
    pg_arr a[2] = {{0}};
    params p;
    size_t pairs = 0;
    mc_err e = MC_OK;
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < n; i++) {
        size_t xl;
        const uint8_t *x = get_blob(res, (int)i, 3, &xl);
        if (!inserted[i] || !x || same_blob(x, xl, v[i].serial, v[i].serial_len))
            continue;
        int skip = 0;
        for (size_t m = i + 1; m < n && !skip; m++)
            skip = inserted[m] && same_blob(v[m].serial, v[m].serial_len, x, xl);
        for (size_t j = 0; j < i && !skip; j++) {
            size_t yl;
            const uint8_t *y = get_blob(res, (int)j, 3, &yl);
            /* an earlier pair for the same X was kept: the first replacement counts */
            skip = inserted[j] && y && same_blob(x, xl, y, yl) &&
                   !same_blob(y, yl, v[j].serial, v[j].serial_len);
            if (skip) {
                int later = 0;
                for (size_t m = j + 1; m < n && !later; m++)
                    later = inserted[m] && same_blob(v[m].serial, v[m].serial_len, y, yl);
                skip = !later;
            }
        }
        if (skip)
            continue;
        if (pairs++ == 0) {
            arr_begin(&a[0], OID_BYTEA, 0);
            arr_begin(&a[1], OID_BYTEA, 0);
        }
        arr_put(&a[0], x, xl);
        arr_put(&a[1], v[i].serial, v[i].serial_len);
    }
    if (pairs == 0)
        return MC_OK;
    /* the element count sits at byte 12 of the header */
    uint32_t be = htobe32((uint32_t)pairs);
    for (int k = 0; k < 2; k++)
        if (!a[k].oom)
            memcpy(a[k].p + 12, &be, 4);
    if (p_arr(&p, 0, &a[0]) || p_arr(&p, 1, &a[1])) {
        e = mc_err_set(err, MC_ERR_NOMEM, "certs", NULL, "certs commit: out of memory");
        goto done;
    }
    PGresult *r = run(s, PS_REPLACE, &p);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        e = pg_err(s, err, "certs", "certs commit: replaced_by", r);
    PQclear(r);
done:
    arrs_free(a, 2);
    return e;
}

/* Runs the certificates statement over v[0..n) (n <= PG_CERTS_MAX) in the open transaction
 * (begin: opens it), checks every row and links replacements. The caller rolls back on error.
 * bi0: the batch index of v[0], for messages. */
static mc_err certs_chunk(pg_store *s, const mc_stored_cert *v, size_t n, size_t bi0, int64_t now,
                          int begin, uint8_t *resigned, mc_errdetail *err)
{
    pg_arr a[3];
    params p;
    PGresult *res = NULL;
    uint8_t *inserted = calloc(n, 1);
    mc_err e = MC_OK;
    memset(a, 0, sizeof a);
    memset(&p, 0, sizeof p);
    arr_begin(&a[0], OID_TEXT, n);
    arr_begin(&a[1], OID_BYTEA, n);
    arr_begin(&a[2], OID_BYTEA, n);
    for (size_t i = 0; i < n; i++) {
        arr_text(&a[0], v[i].order_id);
        arr_put(&a[1], v[i].serial, v[i].serial_len);
        arr_put(&a[2], v[i].der, v[i].der_len);
    }
    int bad = !inserted;
    for (int k = 0; k < 3; k++)
        bad |= p_arr(&p, k, &a[k]);
    p_int8(&p, 3, now);
    if (bad) {
        e = mc_err_set(err, MC_ERR_NOMEM, "certs", NULL, "certs commit: out of memory");
        goto done;
    }
    e = pipeline_stmt(s, "certs commit", begin, PS_CERT, &p, &res, err);
    if (e)
        goto done;
    if ((size_t)PQntuples(res) != n) {
        e = mc_err_set(err, MC_ERR_INTERNAL, "certs", NULL, "certs commit: %d answers for %zu rows",
                       PQntuples(res), n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        /* binary bool: one byte */
        inserted[i] = !PQgetisnull(res, (int)i, 0) && PQgetlength(res, (int)i, 0) == 1 &&
                      PQgetvalue(res, (int)i, 0)[0] != 0;
        if (!inserted[i] &&
            (e = cert_refused(s, v, i, bi0 + i, res, inserted, &resigned[i], err)) != MC_OK)
            goto done;
    }
    e = certs_replacements(s, v, n, res, inserted, err);
done:
    PQclear(res);
    arrs_free(a, 3);
    free(inserted);
    return e;
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
    const int64_t now = (int64_t)time(NULL);
    uint8_t *resigned = calloc(n, 1);
    mc_ct_entry *keep = NULL;
    if (!resigned)
        return mc_err_set(err, MC_ERR_NOMEM, "certs", NULL, "certs commit: out of memory");
    mc_err e = batch_ready(s, err);
    if (e)
        goto done;
    /* A refused row is known only once its answer is read, so COMMIT goes separately. */
    for (size_t from = 0; from < n && !e; from += PG_CERTS_MAX) {
        size_t m = n - from > PG_CERTS_MAX ? PG_CERTS_MAX : n - from;
        e = certs_chunk(s, v + from, m, from, now, from == 0, resigned + from, err);
    }
    if (!e)
        e = mc_store_ct_recorded(v, resigned, n, &ct, &ct_n, &keep, err);
    /* The CT outbox rows join the open transaction. */
    ct_enqueue_ctx cc = {.v = ct, .now_s = now};
    for (size_t from = 0; from < ct_n && !e; from += PG_CHUNK) {
        size_t to = ct_n - from > PG_CHUNK ? from + PG_CHUNK : ct_n;
        e = pipeline_chunk(s, "certs commit: ct outbox", PS_CT_INSERT, &cc, from, to, 0, 0, 1,
                           ct_enqueue_params, NULL, NULL, err);
    }
    if (!e)
        e = exec_cmd(s, "COMMIT", "certs commit: commit", err);
    if (e)
        txn_abort(s);
done:
    free(keep);
    free(resigned);
    return e;
}

/* --- queries --------------------------------------------------------------------------------- */

static mc_err blob_dup(const PGresult *res, int col, uint8_t **out, size_t *len)
{
    size_t n;
    const uint8_t *p = get_blob(res, 0, col, &n);
    return mc_store_bytes_dup(p, n, out, len);
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

/* A row of a streamed result, handed over while the next is still on its way. */
typedef void (*stream_fn)(void *arg, const PGresult *row);

/* Runs prepared statement which (np parameters of p) and hands each result row to fn, one at a
 * time (single-row mode), so a long result is never held whole; *rows (may be NULL) gets how
 * many. Rows after an error are read and dropped (the connection stays usable). */
static mc_err stream_rows(pg_store *s, int which, int np, const params *p, stream_fn fn, void *arg,
                          int64_t *rows, const char *what, mc_errdetail *err)
{
    mc_err e = MC_OK;
    int64_t n = 0;
    if (!PQsendQueryPrepared(s->conn, stmts[which].name, np, np ? p->val : NULL, np ? p->len : NULL,
                             np ? p->fmt : NULL, 1))
        return pg_err(s, err, NULL, what, NULL);
    PQsetSingleRowMode(s->conn);
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && !e) {
            fn(arg, res);
            n++;
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && !e) {
            e = pg_err(s, err, NULL, what, res);
        }
        PQclear(res);
    }
    if (rows)
        *rows = n;
    return e;
}

typedef struct pending_ctx {
    mc_store_pending_fn fn;
    void *arg;
} pending_ctx;

static void pending_row(void *arg, const PGresult *res)
{
    const pending_ctx *c = arg;
    size_t serial_len, tbs_len;
    const uint8_t *serial = get_blob(res, 0, 1, &serial_len);
    const uint8_t *tbs = get_blob(res, 0, 2, &tbs_len);
    c->fn(c->arg, PQgetvalue(res, 0, 0), serial, serial_len, tbs, tbs_len);
}

/* Rows are streamed one at a time (single-row mode), so a long backlog is never held whole. */
static mc_err pg_pending(mc_store *base, mc_store_pending_fn fn, void *arg, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    pending_ctx c = {fn, arg};
    return stream_rows(s, PS_PENDING, 0, NULL, pending_row, &c, NULL, "pending", err);
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
        size_t sl, ll, cl;
        const uint8_t *ser = get_blob(res, r, 0, &sl);
        const uint8_t *lid = get_blob(res, r, 1, &ll);
        const uint8_t *chain = get_blob(res, r, 3, &cl);
        e = mc_store_ct_job_fill(&v[r], ser, sl, lid, ll, (int)get_int8(res, r, 2), chain, cl,
                                 (int)get_int8(res, r, 4), err);
        if (e)
            goto done;
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

typedef struct ct_list_ctx {
    mc_store_ct_row_fn fn;
    void *arg;
} ct_list_ctx;

static void ct_list_row(void *arg, const PGresult *res)
{
    const ct_list_ctx *c = arg;
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
    c->fn(c->arg, &r);
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
    ct_list_ctx c = {fn, arg};
    return stream_rows(s, PS_CT_LIST, 1, &p, ct_list_row, &c, NULL, "ct list", err);
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

static mc_err pg_serial_status(mc_store *base, const uint8_t *serial, size_t serial_len,
                               mc_serial_status *out, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    params p;
    memset(&p, 0, sizeof p);
    p_blob(&p, 0, serial, serial_len);
    PGresult *res = run(s, PS_SERIAL_STATUS, &p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        e = pg_err(s, err, "serial", "serial status", res);
    } else if (PQntuples(res) == 0) {
        out->state = MC_SERIAL_UNUSED;
    } else {
        out->not_after = PQgetisnull(res, 0, 0) ? 0 : get_int8(res, 0, 0);
        if (get_int8(res, 0, 1) == 0) {
            out->state = MC_SERIAL_RESERVED;
        } else {
            char status[32] = "";
            copy_text(res, 2, status, sizeof status);
            /* anything but 'issued' is a revocation, as the CRL lists them (PS_REVOKED) */
            out->state = strcmp(status, "issued") == 0 ? MC_SERIAL_ISSUED : MC_SERIAL_REVOKED;
            if (out->state == MC_SERIAL_REVOKED) {
                out->revoked_at = PQgetisnull(res, 0, 3) ? 0 : get_int8(res, 0, 3);
                out->reason = PQgetisnull(res, 0, 4) ? 0 : (int)get_int8(res, 0, 4);
            }
        }
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

/* The selector's criteria (store.h mc_store_sel) over intents AS i joined with certificates
 * AS c, the same conditions as engine/store.c sq_sel in PostgreSQL's dialect: appended to sql
 * (cap bytes) as " AND <condition>" each, their values put in p and their types in types, as
 * parameters $first, $first + 1, ... Returns how many, or -1 when sql is too short. */
static int pg_sel(const mc_store_sel *sel, char *sql, size_t cap, int first, params *p, Oid *types)
{
    size_t len = strlen(sql);
    int n = first - 1, over = 0;
#define PG_TERM(cond, fmt, type, put)                                                              \
    do {                                                                                           \
        if (!(cond) || n >= PG_MAX_PARAMS)                                                         \
            break;                                                                                 \
        n++;                                                                                       \
        put;                                                                                       \
        types[n - 1] = type;                                                                       \
        int w = snprintf(sql + len, cap - len, " AND " fmt, n);                                    \
        if (w < 0 || (size_t)w >= cap - len)                                                       \
            over = 1;                                                                              \
        else                                                                                       \
            len += (size_t)w;                                                                      \
    } while (0)
    PG_TERM(sel->serial, "i.serial = $%d", OID_BYTEA,
            p_blob(p, n - 1, sel->serial, sel->serial_len));
    PG_TERM(sel->account, "i.account = $%d", OID_TEXT, p_text(p, n - 1, sel->account));
    PG_TERM(sel->spki_sha256, "i.spki_sha256 = $%d", OID_BYTEA,
            p_blob(p, n - 1, sel->spki_sha256, 32));
    PG_TERM(sel->profile, "i.profile = $%d", OID_TEXT, p_text(p, n - 1, sel->profile));
    PG_TERM(sel->profile_hash, "i.profile_hash = $%d", OID_BYTEA,
            p_blob(p, n - 1, sel->profile_hash, 32));
    PG_TERM(sel->has & MC_SEL_ISSUED_AFTER, "i.not_before >= $%d", OID_INT8,
            p_int8(p, n - 1, sel->issued_after));
    PG_TERM(sel->has & MC_SEL_ISSUED_BEFORE, "i.not_before < $%d", OID_INT8,
            p_int8(p, n - 1, sel->issued_before));
    PG_TERM(sel->has & MC_SEL_EXPIRED, "i.not_after < $%d", OID_INT8,
            p_int8(p, n - 1, sel->expired_at));
    PG_TERM(sel->has & MC_SEL_UNEXPIRED, "i.not_after >= $%d", OID_INT8,
            p_int8(p, n - 1, sel->unexpired_at));
    PG_TERM(sel->lint_version, "i.lint_version = $%d", OID_TEXT,
            p_text(p, n - 1, sel->lint_version));
    PG_TERM(sel->lint_enforced, "i.lint_enforced = $%d", OID_TEXT,
            p_text(p, n - 1, sel->lint_enforced));
    /* an element of the comma-separated list */
    PG_TERM(sel->lint_id, "strpos(',' || i.lint_warnings || ',', ',' || $%d || ',') > 0", OID_TEXT,
            p_text(p, n - 1, sel->lint_id));
    PG_TERM(sel->engine_version, "i.engine_version = $%d", OID_TEXT,
            p_text(p, n - 1, sel->engine_version));
    /* evidence is text: pg_temp.mc_evidence_mailboxes (pg_sel_functions) casts it to jsonb and
     * gives its mailboxes array, NULL when it is not JSON or has none (as SQLite's CASE) */
    PG_TERM(sel->method,
            "EXISTS (SELECT 1 FROM jsonb_array_elements(pg_temp.mc_evidence_mailboxes("
            "i.evidence)) AS m WHERE m ->> 'method' = $%d)",
            OID_TEXT, p_text(p, n - 1, sel->method));
    /* "@domain," in ",a@x,b@y,": exactly the domain of one mailbox (engine/store.c sq_sel) */
    PG_TERM(sel->domain, "strpos(',' || lower(i.mailboxes) || ',', '@' || lower($%d) || ',') > 0",
            OID_TEXT, p_text(p, n - 1, sel->domain));
    PG_TERM(sel->status, "c.status = $%d", OID_TEXT, p_text(p, n - 1, sel->status));
    /* SBR 4.2.2.1: issued without CAA lookups (engine/store.c sq_sel) */
    PG_TERM(sel->caa_unchecked,
            "pg_temp.mc_evidence_jsonb(i.evidence) -> 'caa_checked' = $%d::jsonb", OID_TEXT,
            p_text(p, n - 1, "false"));
#undef PG_TERM
    return over || n >= PG_MAX_PARAMS ? -1 : n - (first - 1);
}

/* The session's helpers for the evidence criteria: mc_evidence_jsonb, the evidence text as
 * jsonb, NULL when it is not JSON (a cast failing is a data_exception: caught, so one malformed
 * row never fails an incident query, as SQLite's json_valid guard); mc_evidence_mailboxes, its
 * mailboxes array, NULL when it is not an object or mailboxes is not an array. Temporary
 * functions (pg_temp): no schema change, gone with the session. */
static mc_err pg_sel_functions(pg_store *s, const mc_store_sel *sel, mc_errdetail *err)
{
    if (!sel->method && !sel->caa_unchecked)
        return MC_OK;
    return exec_cmd(s,
                    "CREATE OR REPLACE FUNCTION pg_temp.mc_evidence_jsonb(t text)"
                    " RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$"
                    " BEGIN"
                    "  RETURN t::jsonb;"
                    " EXCEPTION WHEN data_exception THEN RETURN NULL;"
                    " END $f$;"
                    "CREATE OR REPLACE FUNCTION pg_temp.mc_evidence_mailboxes(t text)"
                    " RETURNS jsonb LANGUAGE sql IMMUTABLE AS $f$"
                    " SELECT CASE WHEN jsonb_typeof(j -> 'mailboxes') = 'array'"
                    "  THEN j -> 'mailboxes' END"
                    " FROM (SELECT CASE WHEN jsonb_typeof(pg_temp.mc_evidence_jsonb(t)) = 'object'"
                    "  THEN pg_temp.mc_evidence_jsonb(t) END AS j) AS e"
                    " $f$",
                    "selector: evidence functions", err);
}

/* Builds head + sel's criteria + tail into sql (cap bytes) with the parameters after the first
 * np0 already in p and types; *np gets the total. */
static mc_err pg_sel_sql(const mc_store_sel *sel, const char *head, const char *tail, char *sql,
                         size_t cap, params *p, Oid *types, int np0, int *np, const char *op,
                         mc_errdetail *err)
{
    snprintf(sql, cap, "%s", head);
    int k = pg_sel(sel, sql, cap - strlen(tail) - 1, np0 + 1, p, types);
    if (k < 0)
        return mc_err_set(err, MC_ERR_INVALID, "selector", NULL, "%s: selector too long", op);
    strcat(sql, tail);
    *np = np0 + k;
    return MC_OK;
}

#define PG_QUERY_FROM " FROM intents AS i JOIN certificates AS c ON c.serial = i.serial WHERE true"

/* Streams the selection in single-row mode (one statement: one snapshot). A callback that
 * stops the listing cancels the statement, then the rest is read and dropped, so the
 * connection stays usable. */
static mc_err pg_query(mc_store *base, const mc_store_sel *sel, mc_store_row_fn fn, void *arg,
                       int64_t *rows, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    char sql[4096];
    params p;
    Oid types[PG_MAX_PARAMS] = {0};
    int np = 0;
    int64_t n = 0;
    PGresult *res = NULL;
    memset(&p, 0, sizeof p);
    mc_err e = conn_ready(s, err);
    if (!e)
        e = pg_sel_functions(s, sel, err);
    if (!e)
        e = pg_sel_sql(sel,
                       fn ? "SELECT i.serial, i.order_id, i.account, i.profile, i.profile_hash,"
                            " i.lint_version, i.lint_enforced, i.lint_warnings, i.engine_version,"
                            " i.not_before, i.not_after, c.status, c.revoked_at,"
                            " c.revocation_reason::bigint, i.mailboxes, i.evidence" PG_QUERY_FROM
                          : "SELECT count(*)" PG_QUERY_FROM,
                       fn ? " ORDER BY i.seq" : "", sql, sizeof sql, &p, types, 0, &np, "query",
                       err);
    if (e)
        goto done;
    if (!PQsendQueryParams(s->conn, sql, np, types, p.val, p.len, p.fmt, 1)) {
        e = pg_err(s, err, NULL, "query", NULL);
        goto done;
    }
    /* refused only right after a failed send: then rows would come whole, or not at all */
    if (!PQsetSingleRowMode(s->conn))
        e = mc_err_set(err, MC_ERR_STORE, NULL, NULL, "query: single-row mode refused");
    int cancelled = 0;
    while ((res = PQgetResult(s->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_SINGLE_TUPLE && !e && !fn) {
            n = get_int8(res, 0, 0);
        } else if (st == PGRES_SINGLE_TUPLE && !e) {
#define TXT(col) (PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col))
            mc_store_row r = {
                .order_id = TXT(1),
                .account = TXT(2),
                .profile = TXT(3),
                .lint_version = TXT(5),
                .lint_enforced = TXT(6),
                .lint_warnings = TXT(7),
                .engine_version = TXT(8),
                .not_before = get_int8(res, 0, 9),
                .not_after = get_int8(res, 0, 10),
                .status = TXT(11),
                .revoked_at = PQgetisnull(res, 0, 12) ? -1 : get_int8(res, 0, 12),
                .reason = PQgetisnull(res, 0, 13) ? -1 : (int)get_int8(res, 0, 13),
                .mailboxes = TXT(14),
                .evidence = TXT(15),
            };
#undef TXT
            r.serial = get_blob(res, 0, 0, &r.serial_len);
            r.profile_hash = get_blob(res, 0, 4, &r.profile_hash_len);
            n++;
            e = fn(arg, &r);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && !e) {
            e = pg_err(s, err, NULL, "query", res);
        }
        PQclear(res);
        if (e && !cancelled) {
            /* stop the server sending rows nobody reads */
            PGcancel *c = PQgetCancel(s->conn);
            char buf[256];
            if (c) {
                PQcancel(c, buf, sizeof buf);
                PQfreeCancel(c);
            }
            cancelled = 1;
        }
    }
done:
    if (rows)
        *rows = n;
    return e;
}

/* As the SQLite backend: the selection goes into a temporary table numbered in intent order
 * (one INSERT ... SELECT), then each chunk of that numbering is revoked by two set-based UPDATEs
 * in one short transaction. */
static mc_err pg_revoke(mc_store *base, const mc_store_sel *sel, int reason, int64_t revoked_at,
                        int dry_run, mc_revoke_counts *out, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    char sql[4096];
    params p;
    Oid types[PG_MAX_PARAMS] = {0};
    int np = 0;
    PGresult *res = NULL;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    if ((e = pg_sel_functions(s, sel, err)) != MC_OK)
        return e;
    e = exec_cmd(s,
                 "DROP TABLE IF EXISTS pg_temp.mc_revoke_set;"
                 "CREATE TEMP TABLE mc_revoke_set (k BIGINT GENERATED ALWAYS AS IDENTITY"
                 " PRIMARY KEY, serial BYTEA NOT NULL)",
                 "revoke: selection table", err);
    if (e)
        return e;
    memset(&p, 0, sizeof p);
    if ((e = pg_sel_sql(sel,
                        "INSERT INTO pg_temp.mc_revoke_set (serial) SELECT i.serial" PG_QUERY_FROM,
                        " ORDER BY i.seq", sql, sizeof sql, &p, types, 0, &np, "revoke: select",
                        err)) != MC_OK)
        goto done;
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

typedef struct revoked_ctx {
    mc_store_revoked_fn fn;
    void *arg;
} revoked_ctx;

static void revoked_row(void *arg, const PGresult *res)
{
    const revoked_ctx *c = arg;
    size_t serial_len;
    const uint8_t *serial = get_blob(res, 0, 0, &serial_len);
    c->fn(c->arg, serial, serial_len, get_int8(res, 0, 1), (int)get_int8(res, 0, 2));
}

/* In one transaction holding crls in SHARE ROW EXCLUSIVE mode (another node's pg_crl_begin
 * waits for this one to commit): the entries (streamed, single-row mode; READ COMMITTED, so
 * they include every revocation committed before the lock was granted), then the number:
 * max() + 1 is free under the lock, and a later number lists at least as much. */
static mc_err pg_crl_begin(mc_store *base, int64_t this_update, int64_t next_update,
                           mc_store_revoked_fn fn, void *arg, uint64_t *number, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    if ((e = exec_cmd(s, "BEGIN; LOCK TABLE crls IN SHARE ROW EXCLUSIVE MODE", "crl: lock", err)) !=
        MC_OK)
        goto done;
    params p;
    memset(&p, 0, sizeof p);
    p_int8(&p, 0, this_update);
    int64_t n = 0;
    revoked_ctx c = {fn, arg};
    if ((e = stream_rows(s, PS_REVOKED, 1, &p, revoked_row, &c, &n, "crl: revoked certificates",
                         err)) != MC_OK)
        goto done;
    memset(&p, 0, sizeof p);
    p_int8(&p, 0, this_update);
    p_int8(&p, 1, next_update);
    p_int8(&p, 2, n);
    p_int8(&p, 3, (int64_t)time(NULL));
    PGresult *res = run(s, PS_CRL_NUMBER, &p);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        *number = (uint64_t)get_int8(res, 0, 0);
    else
        e = pg_err(s, err, NULL, "crl: number", res);
    PQclear(res);
    if (!e)
        e = exec_cmd(s, "COMMIT", "crl: commit", err);
done:
    if (e)
        txn_abort(s);
    return e;
}

static mc_err pg_crl_published(mc_store *base, uint64_t number, uint64_t last, int64_t at,
                               mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    params p;
    memset(&p, 0, sizeof p);
    p_int8(&p, 0, (int64_t)number);
    p_int8(&p, 1, at);
    p_int8(&p, 2, (int64_t)last);
    PGresult *res = run(s, PS_CRL_PUBLISHED, &p);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        e = pg_err(s, err, NULL, "crl: published", res);
    else if (strtoull(PQcmdTuples(res), NULL, 10) != last - number + 1)
        e = mc_err_set(err, MC_ERR_STORE, "number", NULL, "crl: no CRL number %llu..%llu",
                       (unsigned long long)number, (unsigned long long)last);
    PQclear(res);
    return e;
}

/* --- audit log ------------------------------------------------------------------------------ */

static mc_err pg_audit_append(mc_store *base, const mc_audit_event *v, size_t n, mc_errdetail *err)
{
    enum { NA = 5 };
    static const Oid elem[NA] = {OID_INT8, OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT};
    pg_store *s = (pg_store *)base;
    pg_arr a[NA];
    params p;
    int bad = 0;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    memset(a, 0, sizeof a);
    memset(&p, 0, sizeof p);
    for (int k = 0; k < NA; k++)
        arr_begin(&a[k], elem[k], n);
    for (size_t i = 0; i < n; i++) {
        arr_int8(&a[0], v[i].at);
        arr_text(&a[1], v[i].actor);
        arr_text(&a[2], v[i].event);
        arr_text(&a[3], v[i].subject);
        arr_text(&a[4], v[i].detail);
    }
    for (int k = 0; k < NA; k++)
        bad |= p_arr(&p, k, &a[k]);
    if (bad) {
        e = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "audit: out of memory");
    } else {
        PGresult *res = run(s, PS_AUDIT_APPEND, &p);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            e = pg_err(s, err, NULL, "audit: insert", res);
        PQclear(res);
    }
    arrs_free(a, NA);
    return e;
}

typedef struct audit_ctx {
    mc_store_audit_fn fn;
    void *arg;
} audit_ctx;

static const char *get_text(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col);
}

static void audit_row(void *arg, const PGresult *res)
{
    audit_ctx *c = arg;
    mc_audit_event ev = {.id = get_int8(res, 0, 0),
                         .at = get_int8(res, 0, 1),
                         .actor = get_text(res, 2),
                         .event = get_text(res, 3),
                         .subject = get_text(res, 4),
                         .detail = get_text(res, 5)};
    c->fn(c->arg, &ev);
}

static mc_err pg_audit_list(mc_store *base, int64_t after_id, int64_t since, const char *event,
                            mc_store_audit_fn fn, void *arg, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    audit_ctx c = {fn, arg};
    params p;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    memset(&p, 0, sizeof p);
    p_int8(&p, 0, after_id);
    p_int8(&p, 1, since);
    p_text(&p, 2, event); /* NULL: SQL NULL, every event */
    return stream_rows(s, PS_AUDIT_LIST, 3, &p, audit_row, &c, NULL, "audit: list", err);
}

static mc_err pg_crl_latest(mc_store *base, uint64_t *number, int64_t *this_update,
                            int64_t *next_update, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    PGresult *res = run(s, PS_CRL_LATEST, NULL);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        e = pg_err(s, err, NULL, "latest crl", res);
    } else if (PQntuples(res) == 1) {
        *number = (uint64_t)get_int8(res, 0, 0);
        *this_update = get_int8(res, 0, 1);
        *next_update = get_int8(res, 0, 2);
    }
    PQclear(res);
    return e;
}

typedef struct shard_revoked_ctx {
    mc_store_shard_revoked_fn fn;
    void *arg;
} shard_revoked_ctx;

static void shard_revoked_row(void *arg, const PGresult *res)
{
    const shard_revoked_ctx *c = arg;
    size_t serial_len, tbs_len;
    const uint8_t *serial = get_blob(res, 0, 0, &serial_len);
    const uint8_t *tbs = get_blob(res, 0, 3, &tbs_len);
    c->fn(c->arg, serial, serial_len, get_int8(res, 0, 1), (int)get_int8(res, 0, 2), tbs, tbs_len);
}

/* As pg_crl_begin (the same lock, so full and shard CRLs share one sequence of numbers). */
static mc_err pg_crl_shards_begin(mc_store *base, int64_t this_update, int64_t next_update,
                                  mc_store_shard_revoked_fn fn, mc_store_crl_plan_fn plan,
                                  void *arg, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    if ((e = exec_cmd(s, "BEGIN; LOCK TABLE crls IN SHARE ROW EXCLUSIVE MODE", "crl: lock", err)) !=
        MC_OK)
        goto done;
    params p;
    memset(&p, 0, sizeof p);
    p_int8(&p, 0, this_update);
    shard_revoked_ctx c = {fn, arg};
    if ((e = stream_rows(s, PS_REVOKED_SHARD, 1, &p, shard_revoked_row, &c, NULL,
                         "crl: revoked certificates", err)) != MC_OK)
        goto done;
    mc_store_crl_shard *v = NULL;
    size_t n = 0;
    PGresult *kr = run(s, PS_CRL_SHARDS_KNOWN, NULL);
    if (PQresultStatus(kr) != PGRES_TUPLES_OK) {
        e = pg_err(s, err, NULL, "crl: shards recorded", kr);
        PQclear(kr);
        goto done;
    }
    size_t nknown = (size_t)PQntuples(kr);
    unsigned *known = malloc((nknown ? nknown : 1) * sizeof *known);
    for (size_t i = 0; known && i < nknown; i++)
        known[i] = (unsigned)get_int8(kr, (int)i, 0);
    PQclear(kr);
    int planned = known ? plan(arg, known, nknown, &v, &n) : -1;
    free(known);
    if (planned != 0) {
        e = mc_err_set(err, MC_ERR_NOMEM, "entries", NULL, "crl: the shards could not be planned");
        goto done;
    }
    for (size_t i = 0; i < n && !e; i++) {
        memset(&p, 0, sizeof p);
        p_int8(&p, 0, this_update);
        p_int8(&p, 1, next_update);
        p_int8(&p, 2, v[i].entries);
        p_int8(&p, 3, (int64_t)time(NULL));
        p_int8(&p, 4, (int64_t)v[i].shard);
        PGresult *res = run(s, PS_CRL_SHARD_NUMBER, &p);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            v[i].number = (uint64_t)get_int8(res, 0, 0);
        else
            e = pg_err(s, err, NULL, "crl: number", res);
        PQclear(res);
    }
    if (!e)
        e = exec_cmd(s, "COMMIT", "crl: commit", err);
done:
    if (e)
        txn_abort(s);
    return e;
}

static mc_err pg_crl_shards_latest(mc_store *base, int64_t *shards, int64_t *oldest_this_update,
                                   int64_t *earliest_next_update, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    PGresult *res = run(s, PS_CRL_SHARDS_LATEST, NULL);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        *shards = get_int8(res, 0, 0);
        *oldest_this_update = get_int8(res, 0, 1);
        *earliest_next_update = get_int8(res, 0, 2);
    } else {
        e = pg_err(s, err, NULL, "latest shard crls", res);
    }
    PQclear(res);
    return e;
}

static mc_err pg_durability(mc_store *base, char *buf, size_t cap, int *durable, mc_errdetail *err)
{
    pg_store *s = (pg_store *)base;
    mc_err e = conn_ready(s, err);
    if (e)
        return e;
    PGresult *res = PQexec(s->conn, "SELECT current_setting('synchronous_commit'),"
                                    " current_setting('fsync')");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        snprintf(buf, cap, "synchronous_commit=%s fsync=%s", PQgetvalue(res, 0, 0),
                 PQgetvalue(res, 0, 1));
        *durable =
            strcmp(PQgetvalue(res, 0, 0), "off") != 0 && strcmp(PQgetvalue(res, 0, 1), "on") == 0;
    } else
        e = pg_err(s, err, NULL, "store durability", res);
    PQclear(res);
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
    .query = pg_query,
    .cert_status = pg_cert_status,
    .durability = pg_durability,
    .crl_begin = pg_crl_begin,
    .crl_published = pg_crl_published,
    .audit_append = pg_audit_append,
    .audit_list = pg_audit_list,
    .crl_latest = pg_crl_latest,
    .serial_status = pg_serial_status,
    .crl_shards_begin = pg_crl_shards_begin,
    .crl_shards_latest = pg_crl_shards_latest,
    .close = pg_close,
};

#endif
