/*
 * mc_store: the public functions (argument and input checks, then the backend named by the
 * store's location) and the SQLite backend: the embedded durable record of intents (what is about
 * to be signed) and certificates (what was signed). The pipeline commits one transaction per batch
 * before signing and one after (DESIGN.md, "Sinks and durability"), so the per-batch path uses
 * statements prepared once at open and only binds, steps and resets them. The schema is versioned
 * in schema_version and migrated forward at open.
 */
#include "mailca/store.h"
#include "mailca/audit.h"
#include "mailca/der.h"
#include "mailca/sqlvfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a writer waits for another connection's write transaction before failing with
 * MC_ERR_STORE (retryable). Batches are short transactions, so a few seconds is generous. */
#define MC_STORE_BUSY_MS 5000
/* Page cache per connection, in KiB (SQLite's default is 2,000 KiB). A batch of intents dirties
 * a leaf page of each random-key index (serial, subject key) per certificate, about 600 pages
 * for 256 intents: with 500 cached pages SQLite spilled dirty pages into the WAL before the
 * commit and read evicted index pages back for the next batch. 32 MiB holds a batch's dirty
 * pages and the upper levels of the indexes: bench --store-only, 200,000 certificates,
 * 33,500-34,000 -> 41,300-42,000 certs/s and 37 -> 30 us of CPU per certificate. A larger
 * cache (128 MiB) measured no better at 500,000 certificates, where the cost is the pages
 * written, not read. Bounded, so peak memory stays flat as a batch grows. */
#define MC_STORE_CACHE_KIB 32768

/* Migration n (1-based) brings the schema from version n-1 to n. Never edit a shipped entry:
 * append a new one. */
static const char *const migrations[] = {
    /* 1: intents and certificates with their provenance (DESIGN.md: profile name and hash, lint
     * set version, engine version, validation evidence, what it replaces). */
    "CREATE TABLE intents ("
    " order_id TEXT PRIMARY KEY NOT NULL,"
    " account TEXT,"
    " profile TEXT,"
    " profile_hash BLOB,"
    " lint_version TEXT,"
    " engine_version TEXT,"
    " serial BLOB UNIQUE NOT NULL,"
    " tbs BLOB,"
    " tbs_hash BLOB,"
    " not_before INTEGER,"
    " not_after INTEGER,"
    " mailboxes TEXT,"
    " evidence TEXT,"
    " lint_warnings TEXT,"
    " replaces TEXT,"
    " created_at INTEGER);"
    "CREATE TABLE certificates ("
    " serial BLOB PRIMARY KEY REFERENCES intents(serial),"
    " order_id TEXT UNIQUE NOT NULL,"
    " der BLOB NOT NULL,"
    " issued_at INTEGER,"
    " status TEXT NOT NULL DEFAULT 'issued',"
    " revoked_at INTEGER,"
    " revocation_reason INTEGER);"
    /* Inventory: "issued under profile X between T1 and T2", "unexpired at T". */
    "CREATE INDEX intents_profile_not_before ON intents(profile, not_before);"
    "CREATE INDEX intents_not_after ON intents(not_after);",
    /* 2: CT submission outbox and the SCTs received (store.h "CT outbox"; engine/ct.c). Times in
     * milliseconds since the epoch; state 0 pending, 1 done, 2 rejected. */
    "CREATE TABLE ct_outbox ("
    " serial BLOB NOT NULL REFERENCES intents(serial),"
    " log_id BLOB NOT NULL,"
    " precert INTEGER NOT NULL,"
    " chain BLOB NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL,"
    " http_status INTEGER,"
    " message TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER,"
    " PRIMARY KEY (serial, log_id, precert));"
    "CREATE INDEX ct_outbox_due ON ct_outbox(next_at) WHERE state = 0;"
    "CREATE TABLE ct_scts ("
    " serial BLOB NOT NULL REFERENCES intents(serial),"
    " log_id BLOB NOT NULL,"
    " precert INTEGER NOT NULL,"
    " timestamp INTEGER NOT NULL,"
    " sct BLOB NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " PRIMARY KEY (serial, log_id, precert));",
    /* 3: subject keys (issue 6: a key already used by one account is refused to another). Each
     * intent records the SHA-256 of its SubjectPublicKeyInfo, so "every certificate with this key"
     * (key compromise, SBR 4.9.1.1) is one index look-up; subject_keys binds each key to the first
     * account that used it. Intents recorded before this migration have no hash and bind nothing.
     */
    "ALTER TABLE intents ADD COLUMN spki_sha256 BLOB;"
    "CREATE INDEX intents_spki ON intents(spki_sha256) WHERE spki_sha256 IS NOT NULL;"
    "CREATE TABLE subject_keys ("
    " spki_sha256 BLOB PRIMARY KEY NOT NULL,"
    " account TEXT NOT NULL,"
    " first_order_id TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);",
    /* 4: replacement and revocation (store.h "replacement", "revocation"). replaces_serial is
     * intents.replaces parsed (NULL when it is not a serial; intents recorded before this
     * migration have none); the trigger sets the replaced certificate's replaced_by when the
     * replacing one is committed, inside the same statement and so the same transaction, and
     * never overwrites an earlier replacement. The account index serves revocation by account.
     */
    "ALTER TABLE intents ADD COLUMN replaces_serial BLOB;"
    "ALTER TABLE certificates ADD COLUMN replaced_by BLOB;"
    "CREATE INDEX intents_account ON intents(account);"
    "CREATE TRIGGER certificates_replaced_by AFTER INSERT ON certificates BEGIN"
    " UPDATE certificates SET replaced_by = NEW.serial"
    " WHERE serial = (SELECT replaces_serial FROM intents WHERE serial = NEW.serial)"
    " AND serial <> NEW.serial AND replaced_by IS NULL;"
    " END;",
    /* 5: compromised subject keys (SBR 6.1.1.3 (4): a key the CA knows to be compromised is
     * refused). A revocation with reason keyCompromise records the keys of the certificates it
     * revokes; the intents commit refuses an order for such a key (MC_INTENT_KEY_COMPROMISED). */
    "CREATE TABLE compromised_keys ("
    " spki_sha256 BLOB PRIMARY KEY NOT NULL,"
    " recorded_at INTEGER NOT NULL,"
    " source TEXT NOT NULL);",
    /* 6: certificates.order_id loses its UNIQUE index, which cost an index insert per
     * certificate and guarded nothing the schema does not already hold: a certificate is
     * inserted only from its intent's row (order_id and serial copied from it, ST_CERT_INSERT),
     * intents.order_id and intents.serial are unique and certificates.serial is the primary
     * key, so an order still has at most one certificate. SQLite cannot drop a column
     * constraint: the table is rebuilt with the same rows (rowids kept) and its trigger
     * recreated. */
    "CREATE TABLE certificates_v6 ("
    " serial BLOB PRIMARY KEY REFERENCES intents(serial),"
    " order_id TEXT NOT NULL,"
    " der BLOB NOT NULL,"
    " issued_at INTEGER,"
    " status TEXT NOT NULL DEFAULT 'issued',"
    " revoked_at INTEGER,"
    " revocation_reason INTEGER,"
    " replaced_by BLOB);"
    "INSERT INTO certificates_v6 (rowid, serial, order_id, der, issued_at, status, revoked_at,"
    " revocation_reason, replaced_by) SELECT rowid, serial, order_id, der, issued_at, status,"
    " revoked_at, revocation_reason, replaced_by FROM certificates;"
    "DROP TABLE certificates;"
    "ALTER TABLE certificates_v6 RENAME TO certificates;"
    "CREATE TRIGGER certificates_replaced_by AFTER INSERT ON certificates BEGIN"
    " UPDATE certificates SET replaced_by = NEW.serial"
    " WHERE serial = (SELECT replaces_serial FROM intents WHERE serial = NEW.serial)"
    " AND serial <> NEW.serial AND replaced_by IS NULL;"
    " END;",
    /* 7: one random-key B-tree per key instead of four (bench --store-only: a random key costs
     * a dirtied leaf page per certificate at every commit, and they were most of the sink's
     * time). intents get a stable integer id (an INTEGER PRIMARY KEY: a plain rowid may be
     * renumbered by VACUUM); certificates are keyed by their intent's id, so inserting one
     * appends instead of placing a random serial in an index; their serial and order_id stay as
     * copies, looked up through intents(serial) and intents(order_id). subject_keys goes: with
     * one writer at a time (BEGIN IMMEDIATE) the first account to use a key is the account of
     * its first intent, one look-up in intents_spki, so the key's binding no longer costs a
     * table row and a second random index. Runs with foreign keys off (store_migrate), as
     * SQLite's table-rebuild procedure requires, and checks them before it commits: a
     * certificate whose intent is missing (only a hand edit makes one) keeps its row under a
     * negative id no intent has, so the check fails the migration instead of dropping it. */
    "DROP TRIGGER certificates_replaced_by;"
    "CREATE TABLE intents_v7 ("
    " id INTEGER PRIMARY KEY,"
    " order_id TEXT UNIQUE NOT NULL,"
    " account TEXT,"
    " profile TEXT,"
    " profile_hash BLOB,"
    " lint_version TEXT,"
    " engine_version TEXT,"
    " serial BLOB UNIQUE NOT NULL,"
    " tbs BLOB,"
    " tbs_hash BLOB,"
    " not_before INTEGER,"
    " not_after INTEGER,"
    " mailboxes TEXT,"
    " evidence TEXT,"
    " lint_warnings TEXT,"
    " replaces TEXT,"
    " created_at INTEGER,"
    " spki_sha256 BLOB,"
    " replaces_serial BLOB);"
    "INSERT INTO intents_v7 (id, order_id, account, profile, profile_hash, lint_version,"
    " engine_version, serial, tbs, tbs_hash, not_before, not_after, mailboxes, evidence,"
    " lint_warnings, replaces, created_at, spki_sha256, replaces_serial)"
    " SELECT rowid, order_id, account, profile, profile_hash, lint_version, engine_version,"
    " serial, tbs, tbs_hash, not_before, not_after, mailboxes, evidence, lint_warnings,"
    " replaces, created_at, spki_sha256, replaces_serial FROM intents ORDER BY rowid;"
    "CREATE TABLE certificates_v7 ("
    " intent INTEGER PRIMARY KEY REFERENCES intents(id),"
    " serial BLOB NOT NULL,"
    " order_id TEXT NOT NULL,"
    " der BLOB NOT NULL,"
    " issued_at INTEGER,"
    " status TEXT NOT NULL DEFAULT 'issued',"
    " revoked_at INTEGER,"
    " revocation_reason INTEGER,"
    " replaced_by BLOB);"
    "INSERT INTO certificates_v7 (intent, serial, order_id, der, issued_at, status, revoked_at,"
    " revocation_reason, replaced_by) SELECT coalesce(i.id, -c.rowid), c.serial, c.order_id,"
    " c.der, c.issued_at, c.status, c.revoked_at, c.revocation_reason, c.replaced_by"
    " FROM certificates AS c LEFT JOIN intents_v7 AS i ON i.serial = c.serial ORDER BY i.id;"
    "DROP TABLE certificates;"
    "DROP TABLE subject_keys;"
    "DROP TABLE intents;"
    "ALTER TABLE intents_v7 RENAME TO intents;"
    "ALTER TABLE certificates_v7 RENAME TO certificates;"
    "CREATE INDEX intents_profile_not_before ON intents(profile, not_before);"
    "CREATE INDEX intents_not_after ON intents(not_after);"
    "CREATE INDEX intents_spki ON intents(spki_sha256) WHERE spki_sha256 IS NOT NULL;"
    "CREATE INDEX intents_account ON intents(account);"
    "CREATE TRIGGER certificates_replaced_by AFTER INSERT ON certificates BEGIN"
    " UPDATE certificates SET replaced_by = NEW.serial"
    " WHERE intent = (SELECT r.id FROM intents AS n JOIN intents AS r"
    "  ON r.serial = n.replaces_serial WHERE n.id = NEW.intent)"
    " AND intent <> NEW.intent AND replaced_by IS NULL;"
    " END;",
    /* 8: the lint set each certificate's issuance enforced (config lint.enforced_set, as
     * mc_lint_set_effective resolves it). lint_version names the build's lint set, which ran
     * in full; error lints added after lint_enforced only warned, and lint_warnings holds those
     * that fired. An incident asks "which certificates had lint X demoted": lint_warnings and
     * this column answer it. NULL: recorded before this migration, or lint was off. */
    "ALTER TABLE intents ADD COLUMN lint_enforced TEXT;",
    /* 9: CRLs (engine/crl.c): the number of every CRL made, never going backwards (RFC 5280
     * 5.2.3), with its times and size; and the revoked certificates found without reading
     * every certificate (a partial index: issuing, which writes 'issued', never touches it). */
    "CREATE TABLE crls (number INTEGER PRIMARY KEY, this_update INTEGER NOT NULL,"
    " next_update INTEGER NOT NULL, entries INTEGER NOT NULL, created_at INTEGER NOT NULL,"
    " published_at INTEGER);"
    "CREATE INDEX certificates_revoked ON certificates(serial) WHERE status <> 'issued';",
    /* 10: the audit log (store.h "audit log", SBR 5.4.1): lifecycle events other than the
     * certificates themselves, append-only (SBR 5.4.4: the triggers refuse changes). The index
     * answers "every rejection since T" without reading years of other events. */
    "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL,"
    " event TEXT NOT NULL, subject TEXT, detail TEXT);"
    "CREATE INDEX audit_log_event_at ON audit_log(event, at);"
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only (SBR 5.4.4)'); END;"
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only (SBR 5.4.4)'); END;",
    /* 11: partitioned CRLs (crl.h, ca.crl_shards): a CRL row is a full CRL (shard NULL) or
     * one shard's; each shard's latest published one is found through the index. Which shard
     * a certificate belongs to is not stored: its recorded TBS names it. */
    "ALTER TABLE crls ADD COLUMN shard INTEGER;"
    "CREATE INDEX crls_shard ON crls(shard, number) WHERE shard IS NOT NULL;",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == MC_STORE_SCHEMA_VERSION,
               "store.h MC_STORE_SCHEMA_VERSION is the number of migrations");

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INTENT_INSERT,
    ST_KEY_OWNER,
    ST_KEY_COMPROMISED,
    ST_INTENT_BY_ORDER,
    ST_CERT_BY_ORDER,
    ST_INTENT_BY_SERIAL,
    ST_CERT_INSERT,
    ST_LOOKUP,
    ST_COUNTS,
    ST_PENDING,
    ST_LINT_META,
    ST_CT_INSERT,
    ST_CT_CLAIM,
    ST_CT_UPDATE,
    ST_CT_SCT_INSERT,
    ST_CT_LIST,
    ST_CT_COUNTS,
    ST_REPLACED_BY,
    ST_CERT_STATUS,
    ST_REVOKED,
    ST_CRL_NUMBER,
    ST_CRL_LATEST,
    ST_CRL_PUBLISHED,
    ST_SERIAL_STATUS,
    ST_AUDIT_INSERT,
    ST_AUDIT_LIST,
    ST_REVOKED_SHARD,
    ST_CRL_SHARD_NUMBER,
    ST_CRL_SHARDS_LATEST,
    ST_CRL_SHARDS_KNOWN,
    ST_COUNT_
};

static const char *const stmt_sql[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    /* Only a conflict on order_id is absorbed; a serial conflict still fails the statement. */
    [ST_INTENT_INSERT] =
        "INSERT INTO intents (order_id, account, profile, profile_hash, lint_version,"
        " engine_version, serial, tbs, tbs_hash, not_before, not_after, mailboxes, evidence,"
        " lint_warnings, replaces, created_at, spki_sha256, replaces_serial, lint_enforced)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
        " ?19) ON CONFLICT(order_id) DO NOTHING",
    /* The first account to use a key owns it (store.h): the account of its first intent.
     * intents_spki holds (spki_sha256, id) in order, so this is one index look-up. */
    [ST_KEY_OWNER] = "SELECT account FROM intents WHERE spki_sha256 = ?1 ORDER BY id LIMIT 1",
    [ST_KEY_COMPROMISED] = "SELECT 1 FROM compromised_keys WHERE spki_sha256 = ?1",
    [ST_INTENT_BY_ORDER] = "SELECT 1 FROM intents WHERE order_id = ?1",
    [ST_CERT_BY_ORDER] = "SELECT 1 FROM intents AS i JOIN certificates AS c ON c.intent = i.id"
                         " WHERE i.order_id = ?1",
    [ST_INTENT_BY_SERIAL] = "SELECT order_id FROM intents WHERE serial = ?1",
    /* Inserts only when an intent with this order id AND serial exists; 0 changes means either
     * no such intent or a certificate already stored (told apart with ST_LOOKUP). */
    [ST_CERT_INSERT] = "INSERT INTO certificates (intent, serial, order_id, der, issued_at)"
                       " SELECT id, serial, order_id, ?3, ?4 FROM intents"
                       " WHERE order_id = ?1 AND serial = ?2"
                       " ON CONFLICT(intent) DO NOTHING",
    [ST_LOOKUP] = "SELECT i.serial, i.tbs, c.der FROM intents AS i"
                  " LEFT JOIN certificates AS c ON c.intent = i.id WHERE i.order_id = ?1",
    [ST_COUNTS] = "SELECT (SELECT count(*) FROM certificates),"
                  " (SELECT count(*) FROM intents AS i"
                  "  WHERE NOT EXISTS (SELECT 1 FROM certificates AS c WHERE c.intent = i.id))",
    [ST_PENDING] = "SELECT i.order_id, i.serial, i.tbs FROM intents AS i"
                   " WHERE NOT EXISTS (SELECT 1 FROM certificates AS c WHERE c.intent = i.id)"
                   " ORDER BY i.id",
    [ST_LINT_META] = "SELECT lint_version, lint_warnings FROM intents WHERE order_id = ?1",
    [ST_CT_INSERT] = "INSERT INTO ct_outbox (serial, log_id, precert, chain, next_at, created_at)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                     " ON CONFLICT (serial, log_id, precert) DO NOTHING",
    /* The whole claim is one statement: a write, so it runs under the write lock and two
     * drainers never claim the same row. */
    [ST_CT_CLAIM] = "UPDATE ct_outbox SET next_at = ?2 WHERE rowid IN"
                    " (SELECT rowid FROM ct_outbox WHERE state = 0 AND next_at <= ?1"
                    "  ORDER BY next_at LIMIT ?3)"
                    " RETURNING serial, log_id, precert, chain, attempts",
    [ST_CT_UPDATE] = "UPDATE ct_outbox SET state = ?4, attempts = attempts + 1, next_at = ?5,"
                     " http_status = ?6, message = ?7, updated_at = ?8"
                     " WHERE serial = ?1 AND log_id = ?2 AND precert = ?3 AND state = 0",
    [ST_CT_SCT_INSERT] =
        "INSERT INTO ct_scts (serial, log_id, precert, timestamp, sct, received_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT (serial, log_id, precert) DO NOTHING",
    [ST_CT_LIST] = "SELECT o.serial, o.log_id, o.precert, o.state, o.attempts, o.next_at,"
                   " o.http_status, o.message, s.timestamp, s.sct FROM ct_outbox AS o"
                   " LEFT JOIN ct_scts AS s"
                   "  ON s.serial = o.serial AND s.log_id = o.log_id AND s.precert = o.precert"
                   " WHERE ?1 IS NULL OR o.serial = ?1"
                   " ORDER BY o.serial, o.log_id, o.precert",
    [ST_CT_COUNTS] = "SELECT count(*) FILTER (WHERE state = 0), count(*) FILTER (WHERE state = 1),"
                     " count(*) FILTER (WHERE state = 2) FROM ct_outbox",
    /* certificates are keyed by intent: a serial is found through intents(serial) */
    [ST_REPLACED_BY] = "SELECT c.replaced_by FROM intents AS i JOIN certificates AS c"
                       " ON c.intent = i.id WHERE i.serial = ?1",
    [ST_CERT_STATUS] = "SELECT c.status, c.revoked_at, c.revocation_reason FROM intents AS i"
                       " JOIN certificates AS c ON c.intent = i.id WHERE i.serial = ?1",
    [ST_REVOKED] = "SELECT c.serial, c.revoked_at, c.revocation_reason FROM certificates AS c"
                   " JOIN intents AS i ON i.id = c.intent"
                   " WHERE c.status <> 'issued' AND i.not_after >= ?1 ORDER BY c.serial",
    [ST_CRL_NUMBER] = "INSERT INTO crls (number, this_update, next_update, entries, created_at)"
                      " SELECT coalesce(max(number), 0) + 1, ?1, ?2, ?3, ?4 FROM crls"
                      " RETURNING number",
    [ST_CRL_LATEST] = "SELECT number, this_update, next_update FROM crls"
                      " WHERE published_at IS NOT NULL AND shard IS NULL"
                      " ORDER BY number DESC LIMIT 1",
    [ST_CRL_PUBLISHED] = "UPDATE crls SET published_at = ?2 WHERE number BETWEEN ?1 AND ?3",
    [ST_REVOKED_SHARD] = "SELECT c.serial, c.revoked_at, c.revocation_reason, i.tbs"
                         " FROM certificates AS c JOIN intents AS i ON i.id = c.intent"
                         " WHERE c.status <> 'issued' AND i.not_after >= ?1 ORDER BY c.serial",
    [ST_CRL_SHARD_NUMBER] =
        "INSERT INTO crls (number, this_update, next_update, entries, created_at, shard)"
        " SELECT coalesce(max(number), 0) + 1, ?1, ?2, ?3, ?4, ?5 FROM crls RETURNING number",
    [ST_CRL_SHARDS_LATEST] =
        "SELECT count(*), coalesce(min(c.this_update), 0), coalesce(min(c.next_update), 0)"
        " FROM crls AS c JOIN (SELECT max(number) AS number FROM crls"
        " WHERE shard IS NOT NULL AND published_at IS NOT NULL GROUP BY shard) AS l"
        " ON c.number = l.number",
    [ST_CRL_SHARDS_KNOWN] = "SELECT DISTINCT shard FROM crls WHERE shard IS NOT NULL"
                            " ORDER BY shard",
    /* OCSP: every intent, its certificate when there is one */
    [ST_SERIAL_STATUS] = "SELECT i.not_after, c.intent IS NOT NULL, c.status, c.revoked_at,"
                         " c.revocation_reason FROM intents AS i"
                         " LEFT JOIN certificates AS c ON c.intent = i.id WHERE i.serial = ?1",
    [ST_AUDIT_INSERT] = "INSERT INTO audit_log (at, actor, event, subject, detail)"
                        " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_AUDIT_LIST] = "SELECT id, at, actor, event, subject, detail FROM audit_log"
                      " WHERE id > ?1 AND at >= ?2 AND (?3 IS NULL OR event = ?3) ORDER BY id",
};

#define STR_(x) #x
#define STR(x) STR_(x) /* a number's macro as a string literal, for SQL text */

typedef struct sq_store {
    mc_store base; /* first: a sq_store * is a mc_store * */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT_];
    long wal_pages;  /* after this connection's last commit (sq_wal_hook) */
    long hard_pages; /* sq_wal_hook copies the WAL itself from this size */
} sq_store;

mc_err mc_store_bytes_dup(const void *p, size_t n, uint8_t **out, size_t *len)
{
    if (!out)
        return MC_OK;
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

mc_err mc_store_schema_check(int cur, mc_errdetail *err)
{
    if (cur <= MC_STORE_SCHEMA_VERSION)
        return MC_OK;
    return mc_err_set(err, MC_ERR_STORE, "schema_version", NULL,
                      "database schema version %d is newer than this engine's (%d)", cur,
                      MC_STORE_SCHEMA_VERSION);
}

mc_err mc_store_ct_job_fill(mc_ct_job *j, const void *serial, size_t serial_len, const void *log_id,
                            size_t log_id_len, int precert, const void *chain, size_t chain_len,
                            int attempts, mc_errdetail *err)
{
    memset(j, 0, sizeof *j);
    if (!serial || serial_len == 0 || serial_len > MC_SERIAL_MAX || !log_id ||
        log_id_len != MC_CT_LOG_ID_LEN || !chain || chain_len == 0)
        return mc_err_set(err, MC_ERR_STORE, "ct_outbox", NULL,
                          "ct claim: malformed outbox row (serial %zu, log id %zu, chain %zu "
                          "bytes)",
                          serial_len, log_id_len, chain_len);
    if (mc_store_bytes_dup(chain, chain_len, &j->chain, &j->chain_len) != MC_OK)
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "ct claim: out of memory");
    memcpy(j->serial, serial, serial_len);
    j->serial_len = serial_len;
    memcpy(j->log_id, log_id, log_id_len);
    j->precert = precert;
    j->attempts = attempts;
    return MC_OK;
}

const char *mc_store_serial_hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (n > MC_SERIAL_MAX)
        n = MC_SERIAL_MAX;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

/* An MC_ERR_STORE naming the operation and SQLite's own error text. Call before resetting the
 * statement that failed, while sqlite3_errmsg still describes it. */
static mc_err store_err(sq_store *s, mc_errdetail *err, const char *field, const char *op, int rc)
{
    return mc_err_set(err, MC_ERR_STORE, field, NULL, "%s: %s (sqlite %d)", op,
                      sqlite3_errmsg(s->db), rc);
}

/* Makes a statement ready for its next use and drops the bound pointers: they refer to the
 * caller's memory (SQLITE_STATIC) which may be gone by then. Resetting at once also ends the
 * statement's read of the database, so no WAL snapshot is held between calls. */
static void stmt_release(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int bind_blob(sqlite3_stmt *st, int i, const uint8_t *v, size_t n)
{
    return v ? sqlite3_bind_blob64(st, i, v, n, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Steps a statement that returns no row (BEGIN, COMMIT, ROLLBACK) and releases it. */
static mc_err step_done(sq_store *s, int which, const char *op, mc_errdetail *err)
{
    sqlite3_stmt *st = s->st[which];
    int rc = sqlite3_step(st);
    mc_err e = MC_OK;
    if (rc != SQLITE_DONE)
        e = store_err(s, err, NULL, op, rc);
    stmt_release(st);
    return e;
}

/* Undoes an open transaction. SQLite rolls back by itself after some errors (I/O, full disk),
 * hence the autocommit check; the error already reported is kept. */
static void txn_abort(sq_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->st[ST_ROLLBACK]);
        stmt_release(s->st[ST_ROLLBACK]);
    }
}

/* --- open and migrate ------------------------------------------------------------------------ */

/* Runs a pragma that answers one row and checks the answer: a pragma the library ignores (for
 * instance foreign_keys in a build without them) would otherwise go unnoticed. */
static mc_err pragma_expect(sq_store *s, const char *sql, const char *want, mc_errdetail *err)
{
    sqlite3_stmt *st = NULL;
    mc_err e = MC_OK;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        e = store_err(s, err, NULL, sql, rc);
        goto done;
    }
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        e = rc == SQLITE_DONE ? mc_err_set(err, MC_ERR_STORE, NULL, NULL,
                                           "%s: no answer, expected '%s'", sql, want)
                              : store_err(s, err, NULL, sql, rc);
        goto done;
    }
    const char *got = (const char *)sqlite3_column_text(st, 0);
    if (!got || strcmp(got, want) != 0)
        e = mc_err_set(err, MC_ERR_STORE, NULL, NULL, "%s: answered '%s', expected '%s'", sql,
                       got ? got : "NULL", want);
done:
    sqlite3_finalize(st);
    return e;
}

static mc_err exec_sql(sq_store *s, const char *sql, const char *op, mc_errdetail *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? MC_OK : store_err(s, err, NULL, op, rc);
}

/* Brings the schema to MC_STORE_SCHEMA_VERSION in one write transaction, so two processes
 * opening a new file at once do not both migrate (the second waits, then finds it done). */
static mc_err store_migrate(sq_store *s, mc_errdetail *err)
{
    sqlite3_stmt *st = NULL;
    mc_err e = exec_sql(s, "BEGIN IMMEDIATE", "migrate: begin", err);
    if (e)
        return e;
    e = exec_sql(s,
                 "CREATE TABLE IF NOT EXISTS schema_version ("
                 " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                 "migrate: create schema_version", err);
    if (e)
        goto done;
    int rc = sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1,
                                &st, NULL);
    if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW) {
        e = store_err(s, err, NULL, "migrate: read schema_version", rc);
        goto done;
    }
    int cur = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if ((e = mc_store_schema_check(cur, err)) != MC_OK)
        goto done;
    for (int v = cur + 1; v <= MC_STORE_SCHEMA_VERSION; v++) {
        char op[48];
        snprintf(op, sizeof op, "migrate: migration %d", v);
        e = exec_sql(s, migrations[v - 1], op, err);
        if (e)
            goto done;
        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int(st, 1, v);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
            rc = sqlite3_step(st);
        }
        if (rc != SQLITE_DONE) {
            e = store_err(s, err, NULL, op, rc);
            goto done;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (cur < MC_STORE_SCHEMA_VERSION) {
        /* foreign keys are off while tables are rebuilt: nothing may dangle afterwards */
        rc = sqlite3_prepare_v2(s->db, "PRAGMA foreign_key_check", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            e = mc_err_set(err, MC_ERR_STORE, (const char *)sqlite3_column_text(st, 0), NULL,
                           "migrate to version %d: row %lld of table '%s' references a missing "
                           "row of '%s'",
                           MC_STORE_SCHEMA_VERSION, (long long)sqlite3_column_int64(st, 1),
                           (const char *)sqlite3_column_text(st, 0),
                           (const char *)sqlite3_column_text(st, 2));
            goto done;
        }
        if (rc != SQLITE_DONE) {
            e = store_err(s, err, NULL, "migrate: foreign key check", rc);
            goto done;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (cur < MC_STORE_SCHEMA_VERSION) {
        /* SBR 5.4.1 3.iv: the upgrade of the store is an update of the Certificate System */
        char actor[MC_AUDIT_ACTOR_MAX], detail[128];
        mc_store_migration_event(cur, actor, sizeof actor, detail, sizeof detail);
        rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO audit_log (at, actor, event, subject, detail)"
                                " VALUES (?1, ?2, 'store.migrate', 'schema', ?3)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
            sqlite3_bind_text(st, 2, actor, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, detail, -1, SQLITE_TRANSIENT);
            rc = sqlite3_step(st);
        }
        if (rc != SQLITE_DONE) {
            e = store_err(s, err, NULL, "migrate: audit", rc);
            goto done;
        }
    }
    e = exec_sql(s, "COMMIT", "migrate: commit", err);
done:
    sqlite3_finalize(st);
    if (e && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return e;
}

static const mc_store_ops sq_ops;

static void sq_close(mc_store *base);

/* SQLite counts every allocation under one process-wide mutex (memory statistics, on by
 * default), which the collector, the checkpointer and the CT sink, each on its own connection,
 * took for every row they touched. Nothing here reads those statistics. Configuration must
 * come before SQLite initialises; if something else initialised it first, the call is refused
 * and the counting stays (slower, not wrong). */
static void sq_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static mc_err sq_open(const char *path, mc_store **out, mc_errdetail *err)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, sq_configure);
    sq_store *s = NULL;
    mc_err e = MC_OK;
    s = calloc(1, sizeof *s);
    if (!s)
        return mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "store open: out of memory");
    s->base.ops = &sq_ops;
    /* WAL appends gathered into large writes (engine/sqlvfs.c). */
    if ((e = mc_sqlvfs_register(err)) != MC_OK)
        goto done;
    /* NOMUTEX: one connection per thread (store.h), so SQLite's per-connection mutex is waste. */
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             MC_SQLVFS_NAME);
    if (rc != SQLITE_OK) {
        if (!s->db) {
            e = mc_err_set(err, MC_ERR_NOMEM, "path", NULL, "store open '%s': out of memory", path);
            goto done;
        }
        e = mc_err_set(err, MC_ERR_STORE, "path", NULL, "store open '%s': %s (sqlite %d)", path,
                       sqlite3_errmsg(s->db), rc);
        goto done;
    }
    /* Extended codes tell a UNIQUE violation from other constraint failures in messages. */
    sqlite3_extended_result_codes(s->db, 1);
    /* Set first: switching to WAL and migrating need locks another process may hold. */
    sqlite3_busy_timeout(s->db, MC_STORE_BUSY_MS);
    e = pragma_expect(s, "PRAGMA journal_mode=WAL", "wal", err);
    if (e)
        goto done;
    /* synchronous=FULL: every commit is on disk (the WAL synced) before it returns. The
     * intents must be durable before the HSM signs, and the certificates before a result is
     * written: with NORMAL (the WAL synced only at checkpoints) a power loss or OS crash could
     * drop the records of certificates already signed and handed out, which is what the
     * write-ahead of intent exists to prevent. It costs one fsync per transaction, and a
     * transaction is a batch (or a group of batches). */
    e = exec_sql(s, "PRAGMA synchronous=FULL", "store open: synchronous", err);
    if (e)
        goto done;
    e = pragma_expect(s, "PRAGMA synchronous", "2", err); /* 2: FULL */
    if (e)
        goto done;
    e = exec_sql(s, "PRAGMA cache_size=-" STR(MC_STORE_CACHE_KIB), "store open: cache size", err);
    if (e)
        goto done;
    /* Checkpoint every 16384 pages (64 MiB of WAL) instead of SQLite's 1000 (4 MiB): the
     * serial indexes take random keys, so each batch dirties a leaf page per certificate, and a
     * page rewritten by many batches is copied to the database (and synced) once per checkpoint
     * instead of once per few batches: about twice the certificates/s (bench --store-only).
     * Durability is unchanged (a commit is in the WAL either way); a crash replays at most
     * 64 MiB of WAL at the next open (256 MiB when a checkpointer copies it: see
     * mc_store_checkpoint_elsewhere). journal_size_limit truncates the WAL back to 512 MiB,
     * above the size it reaches when the writer never pauses (a passive checkpoint cannot
     * finish before the hard limit, so the WAL restarts only there, near 270 MiB). Truncated
     * to 64 MiB (before) or 256 MiB, the WAL grew past it again right after each restart, and
     * appending to the file (new blocks and page-cache pages for the kernel to allocate) cost
     * more than overwriting it: bench --store-only at 200,000 certificates, 3 alternating
     * runs, 40,800-43,200 -> 45,800-54,100 certs/s, 21.6 -> 18.7 us of CPU per certificate in
     * the writer. */
    e = exec_sql(s,
                 "PRAGMA wal_autocheckpoint=" STR(
                     MC_STORE_WAL_CHECKPOINT_PAGES) "; PRAGMA journal_size_limit=536870912",
                 "store open: checkpoint interval", err);
    if (e)
        goto done;
    /* Migrations rebuild tables (7), which SQLite allows only with foreign keys off; they are
     * checked before the migration commits, then enforced for everything else. */
    e = exec_sql(s, "PRAGMA foreign_keys=OFF", "store open: foreign_keys", err);
    if (e)
        goto done;
    e = store_migrate(s, err);
    if (e)
        goto done;
    e = exec_sql(s, "PRAGMA foreign_keys=ON", "store open: foreign_keys", err);
    if (e)
        goto done;
    e = pragma_expect(s, "PRAGMA foreign_keys", "1", err);
    if (e)
        goto done;
    for (int i = 0; i < ST_COUNT_; i++) {
        rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            e = store_err(s, err, NULL, "store open: prepare", rc);
            goto done;
        }
    }
done:
    if (e) {
        sq_close(&s->base);
        return e;
    }
    *out = &s->base;
    return MC_OK;
}

static void sq_close(mc_store *base)
{
    sq_store *s = (sq_store *)base;
    for (int i = 0; i < ST_COUNT_; i++)
        sqlite3_finalize(s->st[i]);
    /* close_v2 never leaves the handle half open; every statement is finalized above anyway. */
    sqlite3_close_v2(s->db);
    free(s);
}

/* --- intents --------------------------------------------------------------------------------- */

static mc_err intent_check(const mc_intent *it, size_t i, mc_errdetail *err)
{
    char field[MC_ERR_FIELD_MAX];
    if (!it->order_id || !it->order_id[0]) {
        snprintf(field, sizeof field, "intents[%zu].order_id", i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL, "intent %zu: order id missing", i);
    }
    if (!it->serial || it->serial_len == 0 || it->serial_len > MC_SERIAL_MAX) {
        snprintf(field, sizeof field, "intents[%zu].serial", i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL,
                          "order '%s': serial length %zu not in 1..%d", it->order_id,
                          it->serial ? it->serial_len : 0, MC_SERIAL_MAX);
    }
    /* The stored TBS is what a pending intent is re-signed from after a crash. */
    if (!it->tbs || it->tbs_len == 0) {
        snprintf(field, sizeof field, "intents[%zu].tbs", i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL, "order '%s': TBS missing",
                          it->order_id);
    }
    if (!it->tbs_hash || !it->profile_hash) {
        snprintf(field, sizeof field, "intents[%zu].%s", i,
                 it->tbs_hash ? "profile_hash" : "tbs_hash");
        return mc_err_set(err, MC_ERR_INVALID, field, NULL, "order '%s': %s missing", it->order_id,
                          it->tbs_hash ? "profile hash" : "TBS hash");
    }
    /* A key is bound to an account: without one there is nothing to bind it to. */
    if (it->spki_sha256 && (!it->account || !it->account[0])) {
        snprintf(field, sizeof field, "intents[%zu].account", i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL,
                          "order '%s': a subject key hash needs an account to bind it to",
                          it->order_id);
    }
    return MC_OK;
}

/* After an insert failed on a constraint: when the serial belongs to another order, say so
 * (the generic message already in err is kept otherwise). */
static mc_err serial_collision(sq_store *s, const mc_intent *it, size_t i, mc_errdetail *err)
{
    sqlite3_stmt *st = s->st[ST_INTENT_BY_SERIAL];
    bind_blob(st, 1, it->serial, it->serial_len);
    if (sqlite3_step(st) == SQLITE_ROW) {
        char hex[2 * MC_SERIAL_MAX + 1], field[MC_ERR_FIELD_MAX];
        snprintf(field, sizeof field, "intents[%zu].serial", i);
        mc_err_set(err, MC_ERR_STORE, field, NULL,
                   "intents commit: serial %s of order '%s' is already recorded for order '%s'",
                   mc_store_serial_hex(hex, it->serial, it->serial_len), it->order_id,
                   (const char *)sqlite3_column_text(st, 0));
    }
    stmt_release(st);
    return MC_ERR_STORE;
}

/* *refused = 1 when another account owns the intent's subject key: the account of the key's
 * first intent (store.h, MC_INTENT_KEY_BOUND). A key with no intent yet is bound to this
 * intent's account by its insert. */
static mc_err key_owner_check(sq_store *s, const mc_intent *it, int *refused, mc_errdetail *err)
{
    sqlite3_stmt *owner = s->st[ST_KEY_OWNER];
    *refused = 0;
    bind_blob(owner, 1, it->spki_sha256, 32);
    int rc = sqlite3_step(owner);
    if (rc == SQLITE_ROW) {
        const char *acct = (const char *)sqlite3_column_text(owner, 0);
        *refused = !acct || !it->account || strcmp(acct, it->account) != 0;
        rc = SQLITE_DONE;
    }
    stmt_release(owner);
    if (rc != SQLITE_DONE) {
        char op[MC_ERR_MSG_MAX / 2];
        snprintf(op, sizeof op, "intents commit: owner of the subject key of order '%s'",
                 it->order_id);
        return store_err(s, err, "intents", op, rc);
    }
    return MC_OK;
}

/* 1 when stmt (one parameter: the order id) answers a row, 0 when not, -1 on error (in err). */
static int order_has_row(sq_store *s, int st, const char *order_id, const char *what,
                         mc_errdetail *err)
{
    sqlite3_stmt *q = s->st[st];
    char op[MC_ERR_MSG_MAX / 2];
    bind_text(q, 1, order_id);
    int rc = sqlite3_step(q), r = rc == SQLITE_ROW ? 1 : 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        snprintf(op, sizeof op, "intents commit: %s of order '%s'", what, order_id);
        store_err(s, err, "intents", op, rc);
        r = -1;
    }
    stmt_release(q);
    return r;
}

static mc_err sq_intents_commit(mc_store *base, const mc_intent *v, size_t n,
                                mc_intent_state *state, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    mc_err e = step_done(s, ST_BEGIN, "intents commit: begin", err);
    if (e)
        return e;
    sqlite3_stmt *ins = s->st[ST_INTENT_INSERT];
    const sqlite3_int64 now = (sqlite3_int64)time(NULL);
    char op[MC_ERR_MSG_MAX / 2];
    for (size_t i = 0; i < n; i++) {
        const mc_intent *it = &v[i];
        int refused = 0, known;
        state[i] = MC_INTENT_NEW;
        int compromised = 0;
        if (it->spki_sha256) {
            /* SBR 6.1.1.3 (4): checked before the key is bound to anyone */
            sqlite3_stmt *kc = s->st[ST_KEY_COMPROMISED];
            bind_blob(kc, 1, it->spki_sha256, 32);
            int rc = sqlite3_step(kc);
            compromised = rc == SQLITE_ROW;
            stmt_release(kc);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                snprintf(op, sizeof op, "intents commit: compromised keys, order '%s'",
                         it->order_id);
                e = store_err(s, err, "intents", op, rc);
                goto done;
            }
        }
        if (!compromised && it->spki_sha256 && (e = key_owner_check(s, it, &refused, err)) != MC_OK)
            goto done;
        if (refused || compromised) {
            /* A new order is refused; a known order id keeps its earlier answer below. */
            if ((known = order_has_row(s, ST_INTENT_BY_ORDER, it->order_id, "intent", err)) < 0) {
                e = MC_ERR_STORE;
                goto done;
            }
            if (!known) {
                state[i] = compromised ? MC_INTENT_KEY_COMPROMISED : MC_INTENT_KEY_BOUND;
                continue;
            }
        } else {
            bind_text(ins, 1, it->order_id);
            bind_text(ins, 2, it->account);
            bind_text(ins, 3, it->profile);
            bind_blob(ins, 4, it->profile_hash, 32);
            bind_text(ins, 5, it->lint_version);
            bind_text(ins, 6, it->engine_version);
            bind_blob(ins, 7, it->serial, it->serial_len);
            bind_blob(ins, 8, it->tbs, it->tbs_len);
            bind_blob(ins, 9, it->tbs_hash, 32);
            sqlite3_bind_int64(ins, 10, it->not_before);
            sqlite3_bind_int64(ins, 11, it->not_after);
            bind_text(ins, 12, it->mailboxes);
            bind_text(ins, 13, it->evidence);
            bind_text(ins, 14, it->lint_warnings);
            bind_text(ins, 15, it->replaces);
            sqlite3_bind_int64(ins, 16, now);
            bind_blob(ins, 17, it->spki_sha256, it->spki_sha256 ? 32 : 0);
            uint8_t rser[MC_SERIAL_MAX];
            size_t rser_len = 0;
            if (it->replaces && mc_store_serial_parse(it->replaces, rser, &rser_len))
                sqlite3_bind_blob(ins, 18, rser, (int)rser_len, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(ins, 18);
            bind_text(ins, 19, it->lint_enforced);
            int rc = sqlite3_step(ins);
            if (rc != SQLITE_DONE) {
                snprintf(op, sizeof op, "intents commit: insert order '%s'", it->order_id);
                e = store_err(s, err, "intents", op, rc);
                stmt_release(ins);
                if ((rc & 0xff) == SQLITE_CONSTRAINT)
                    e = serial_collision(s, it, i, err);
                goto done;
            }
            int inserted = sqlite3_changes(s->db);
            stmt_release(ins);
            if (inserted)
                continue;
        }
        /* The order id is known (from an earlier batch or earlier in this one): write nothing,
         * tell the caller whether it was signed already. An intent never signed is not signed
         * once its key is known to be compromised (SBR 6.1.1.3 (4)). */
        if ((known = order_has_row(s, ST_CERT_BY_ORDER, it->order_id, "certificate", err)) < 0) {
            e = MC_ERR_STORE;
            goto done;
        }
        state[i] = known         ? MC_INTENT_ISSUED
                   : compromised ? MC_INTENT_KEY_COMPROMISED
                                 : MC_INTENT_PENDING;
    }
    e = step_done(s, ST_COMMIT, "intents commit: commit", err);
done:
    if (e)
        txn_abort(s);
    return e;
}

/* --- certificates ---------------------------------------------------------------------------- */

static mc_err cert_check(const mc_stored_cert *c, size_t i, mc_errdetail *err)
{
    char field[MC_ERR_FIELD_MAX];
    if (!c->order_id || !c->order_id[0]) {
        snprintf(field, sizeof field, "certs[%zu].order_id", i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL, "certificate %zu: order id missing", i);
    }
    if (!c->serial || c->serial_len == 0 || c->serial_len > MC_SERIAL_MAX) {
        snprintf(field, sizeof field, "certs[%zu].serial", i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL,
                          "order '%s': serial length %zu not in 1..%d", c->order_id,
                          c->serial ? c->serial_len : 0, MC_SERIAL_MAX);
    }
    if (!c->der || c->der_len == 0) {
        snprintf(field, sizeof field, "certs[%zu].der", i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL, "order '%s': certificate missing",
                          c->order_id);
    }
    return MC_OK;
}

/* The insert changed nothing: find out why. The same DER already stored is a harmless replay
 * (a collector retrying a batch), and so is another signature over the same TBSCertificate
 * (*resigned set: the stored certificate stands); anything else is refused. */
static mc_err cert_conflict(sq_store *s, const mc_stored_cert *c, size_t i, uint8_t *resigned,
                            mc_errdetail *err)
{
    sqlite3_stmt *st = s->st[ST_LOOKUP];
    char field[MC_ERR_FIELD_MAX], hex[2 * MC_SERIAL_MAX + 1], hex2[2 * MC_SERIAL_MAX + 1];
    mc_err e = MC_OK;
    snprintf(field, sizeof field, "certs[%zu]", i);
    bind_text(st, 1, c->order_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        e = mc_err_set(err, MC_ERR_STORE, field, NULL,
                       "certs commit: no intent recorded for order '%s'", c->order_id);
        goto done;
    }
    if (rc != SQLITE_ROW) {
        e = store_err(s, err, field, "certs commit: look up intent", rc);
        goto done;
    }
    const void *iser = sqlite3_column_blob(st, 0);
    size_t iser_len = (size_t)sqlite3_column_bytes(st, 0);
    if (iser_len != c->serial_len || memcmp(iser, c->serial, iser_len) != 0) {
        e = mc_err_set(err, MC_ERR_STORE, field, NULL,
                       "certs commit: order '%s': serial %s does not match the intent's %s",
                       c->order_id, mc_store_serial_hex(hex, c->serial, c->serial_len),
                       mc_store_serial_hex(hex2, iser, iser_len));
        goto done;
    }
    const void *der = sqlite3_column_blob(st, 2);
    size_t der_len = (size_t)sqlite3_column_bytes(st, 2);
    if (!der) {
        /* Intent matches and no certificate, yet the insert did nothing. */
        e = mc_err_set(err, MC_ERR_INTERNAL, field, NULL,
                       "certs commit: order '%s': certificate not inserted", c->order_id);
        goto done;
    }
    e = mc_store_cert_vs_stored(c, der, der_len, field, resigned, err);
done:
    stmt_release(st);
    return e;
}

static mc_err ct_insert_rows(sq_store *s, const mc_ct_entry *v, size_t n, int64_t now_s,
                             mc_errdetail *err);

static mc_err sq_certs_commit(mc_store *base, const mc_stored_cert *v, size_t n,
                              const mc_ct_entry *ct, size_t ct_n, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    uint8_t *resigned = calloc(n, 1);
    mc_ct_entry *keep = NULL;
    if (!resigned)
        return mc_err_set(err, MC_ERR_NOMEM, "certs", NULL, "certs commit: out of memory");
    mc_err e = step_done(s, ST_BEGIN, "certs commit: begin", err);
    if (e) {
        free(resigned);
        return e;
    }
    sqlite3_stmt *ins = s->st[ST_CERT_INSERT];
    const sqlite3_int64 now = (sqlite3_int64)time(NULL);
    for (size_t i = 0; i < n; i++) {
        const mc_stored_cert *c = &v[i];
        bind_text(ins, 1, c->order_id);
        bind_blob(ins, 2, c->serial, c->serial_len);
        bind_blob(ins, 3, c->der, c->der_len);
        sqlite3_bind_int64(ins, 4, now);
        int rc = sqlite3_step(ins);
        if (rc != SQLITE_DONE) {
            char op[MC_ERR_MSG_MAX / 2];
            snprintf(op, sizeof op, "certs commit: insert order '%s'", c->order_id);
            e = store_err(s, err, "certs", op, rc);
            stmt_release(ins);
            goto done;
        }
        int inserted = sqlite3_changes(s->db);
        stmt_release(ins);
        if (!inserted && (e = cert_conflict(s, c, i, &resigned[i], err)) != MC_OK)
            goto done;
    }
    if ((e = mc_store_ct_recorded(v, resigned, n, &ct, &ct_n, &keep, err)) != MC_OK)
        goto done;
    if (ct_n && (e = ct_insert_rows(s, ct, ct_n, (int64_t)now, err)) != MC_OK)
        goto done;
    e = step_done(s, ST_COMMIT, "certs commit: commit", err);
done:
    if (e)
        txn_abort(s);
    free(keep);
    free(resigned);
    return e;
}

/* --- queries --------------------------------------------------------------------------------- */

/* malloc'd copy of a blob column; NULL and 0 for SQL NULL or an empty blob. */
static mc_err column_dup(sqlite3_stmt *st, int col, uint8_t **out, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    return mc_store_bytes_dup(p, (size_t)sqlite3_column_bytes(st, col), out, len);
}

static mc_err sq_lookup(mc_store *base, const char *order_id, int *found, uint8_t **serial,
                        size_t *serial_len, uint8_t **tbs, size_t *tbs_len, uint8_t **der,
                        size_t *der_len, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    uint8_t **outs[3] = {serial, tbs, der};
    size_t *lens[3] = {serial_len, tbs_len, der_len};
    sqlite3_stmt *st = s->st[ST_LOOKUP];
    mc_err e = MC_OK;
    bind_text(st, 1, order_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        goto done;
    if (rc != SQLITE_ROW) {
        char op[MC_ERR_MSG_MAX / 2];
        snprintf(op, sizeof op, "lookup order '%s'", order_id);
        e = store_err(s, err, "order_id", op, rc);
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        if (column_dup(st, k, outs[k], lens[k]) != MC_OK) {
            e = mc_err_set(err, MC_ERR_NOMEM, "order_id", NULL, "lookup order '%s': out of memory",
                           order_id);
            goto done;
        }
    }
    *found = 1;
done:
    stmt_release(st); /* on error, mc_store_lookup frees what was copied */
    return e;
}

static mc_err sq_counts(mc_store *base, int64_t *certs, int64_t *pending, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_COUNTS];
    mc_err e = MC_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (certs)
            *certs = sqlite3_column_int64(st, 0);
        if (pending)
            *pending = sqlite3_column_int64(st, 1);
    } else {
        e = store_err(s, err, NULL, "counts", rc);
    }
    stmt_release(st);
    return e;
}

static mc_err sq_pending(mc_store *base, mc_store_pending_fn fn, void *arg, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_PENDING];
    mc_err e = MC_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *order_id = (const char *)sqlite3_column_text(st, 0);
        const uint8_t *serial = sqlite3_column_blob(st, 1);
        size_t serial_len = (size_t)sqlite3_column_bytes(st, 1);
        const uint8_t *tbs = sqlite3_column_blob(st, 2);
        size_t tbs_len = (size_t)sqlite3_column_bytes(st, 2);
        fn(arg, order_id, serial, serial_len, tbs, tbs_len);
    }
    if (rc != SQLITE_DONE)
        e = store_err(s, err, NULL, "pending", rc);
    stmt_release(st);
    return e;
}

static void copy_column_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static mc_err sq_lint_meta(mc_store *base, const char *order_id, char *lint_version, size_t lv_cap,
                           char *warnings, size_t w_cap, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_LINT_META];
    mc_err e = MC_OK;
    bind_text(st, 1, order_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_column_text(st, 0, lint_version, lv_cap);
        copy_column_text(st, 1, warnings, w_cap);
    } else {
        char op[MC_ERR_MSG_MAX / 2];
        snprintf(op, sizeof op, "lint meta of order '%s'", order_id);
        e = rc == SQLITE_DONE
                ? mc_err_set(err, MC_ERR_STORE, "order_id", NULL, "%s: no intent recorded", op)
                : store_err(s, err, "order_id", op, rc);
    }
    stmt_release(st);
    return e;
}

/* --- CT outbox ------------------------------------------------------------------------------ */

/* Inserts outbox rows inside the caller's transaction. */
static mc_err ct_insert_rows(sq_store *s, const mc_ct_entry *v, size_t n, int64_t now_s,
                             mc_errdetail *err)
{
    mc_err e = MC_OK;
    sqlite3_stmt *ins = s->st[ST_CT_INSERT];
    for (size_t i = 0; i < n; i++) {
        bind_blob(ins, 1, v[i].serial, v[i].serial_len);
        bind_blob(ins, 2, v[i].log_id, MC_CT_LOG_ID_LEN);
        sqlite3_bind_int(ins, 3, v[i].precert ? 1 : 0);
        bind_blob(ins, 4, v[i].chain, v[i].chain_len);
        sqlite3_bind_int64(ins, 5, v[i].due_ms);
        sqlite3_bind_int64(ins, 6, now_s);
        int rc = sqlite3_step(ins);
        if (rc != SQLITE_DONE) {
            char op[MC_ERR_MSG_MAX / 2], hex[2 * MC_SERIAL_MAX + 1], field[MC_ERR_FIELD_MAX];
            snprintf(op, sizeof op, "ct enqueue: serial %s",
                     mc_store_serial_hex(hex, v[i].serial, v[i].serial_len));
            snprintf(field, sizeof field, "ct[%zu].serial", i);
            e = store_err(s, err, field, op, rc);
            stmt_release(ins);
            return e;
        }
        stmt_release(ins);
    }
    return e;
}

static mc_err sq_ct_enqueue(mc_store *base, const mc_ct_entry *v, size_t n, int64_t now_s,
                            mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    mc_err e = step_done(s, ST_BEGIN, "ct enqueue: begin", err);
    if (e)
        return e;
    e = ct_insert_rows(s, v, n, now_s, err);
    if (!e)
        e = step_done(s, ST_COMMIT, "ct enqueue: commit", err);
    if (e)
        txn_abort(s);
    return e;
}

static mc_err sq_ct_claim(mc_store *base, int64_t now_ms, int64_t lease_until_ms, size_t limit,
                          mc_ct_job **jobs, size_t *n, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_CT_CLAIM];
    mc_ct_job *v = NULL;
    size_t cnt = 0, cap = 0;
    mc_err e = MC_OK;
    /* RETURNING rows come while the UPDATE runs; all are read before the statement ends, and
     * the statement alone is the transaction (autocommit). */
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_int64(st, 2, lease_until_ms);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? 2 * cap : 64;
            mc_ct_job *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                e = mc_err_set(err, MC_ERR_NOMEM, NULL, NULL, "ct claim: out of memory");
                goto done;
            }
            v = nv;
            cap = nc;
        }
        /* blob pointers first, then their sizes (SQLite's documented order) */
        const void *ser = sqlite3_column_blob(st, 0), *lid = sqlite3_column_blob(st, 1);
        const void *chain = sqlite3_column_blob(st, 3);
        e = mc_store_ct_job_fill(&v[cnt], ser, (size_t)sqlite3_column_bytes(st, 0), lid,
                                 (size_t)sqlite3_column_bytes(st, 1), sqlite3_column_int(st, 2),
                                 chain, (size_t)sqlite3_column_bytes(st, 3),
                                 sqlite3_column_int(st, 4), err);
        if (e)
            goto done;
        cnt++;
    }
    if (rc != SQLITE_DONE)
        e = store_err(s, err, NULL, "ct claim", rc);
done:
    stmt_release(st);
    if (e) {
        /* SQLite applies an UPDATE ... RETURNING at its first step: the claimed rows stay
         * leased and become due again when the lease ends. */
        mc_store_ct_jobs_free(v, cnt);
        return e;
    }
    *jobs = v;
    *n = cnt;
    return MC_OK;
}

static mc_err sq_ct_record(mc_store *base, const mc_ct_outcome *v, size_t n, int64_t now_s,
                           mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    mc_err e = step_done(s, ST_BEGIN, "ct record: begin", err);
    if (e)
        return e;
    sqlite3_stmt *up = s->st[ST_CT_UPDATE], *ins = s->st[ST_CT_SCT_INSERT];
    for (size_t i = 0; i < n; i++) {
        const mc_ct_outcome *o = &v[i];
        bind_blob(up, 1, o->serial, o->serial_len);
        bind_blob(up, 2, o->log_id, MC_CT_LOG_ID_LEN);
        sqlite3_bind_int(up, 3, o->precert ? 1 : 0);
        sqlite3_bind_int(up, 4, (int)o->state);
        sqlite3_bind_int64(up, 5, o->next_ms);
        if (o->http_status)
            sqlite3_bind_int(up, 6, o->http_status);
        else
            sqlite3_bind_null(up, 6);
        bind_text(up, 7, o->message);
        sqlite3_bind_int64(up, 8, now_s);
        int rc = sqlite3_step(up);
        int changed = rc == SQLITE_DONE ? sqlite3_changes(s->db) : 0;
        if (rc != SQLITE_DONE)
            e = store_err(s, err, "ct", "ct record: update", rc);
        stmt_release(up);
        if (e)
            goto done;
        if (!changed || o->state != MC_CT_DONE)
            continue;
        bind_blob(ins, 1, o->serial, o->serial_len);
        bind_blob(ins, 2, o->log_id, MC_CT_LOG_ID_LEN);
        sqlite3_bind_int(ins, 3, o->precert ? 1 : 0);
        sqlite3_bind_int64(ins, 4, o->sct_timestamp);
        bind_blob(ins, 5, o->sct, o->sct_len);
        sqlite3_bind_int64(ins, 6, now_s);
        rc = sqlite3_step(ins);
        if (rc != SQLITE_DONE)
            e = store_err(s, err, "ct", "ct record: store SCT", rc);
        stmt_release(ins);
        if (e)
            goto done;
    }
    e = step_done(s, ST_COMMIT, "ct record: commit", err);
done:
    if (e)
        txn_abort(s);
    return e;
}

static mc_err sq_ct_list(mc_store *base, const uint8_t *serial, size_t serial_len,
                         mc_store_ct_row_fn fn, void *arg, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_CT_LIST];
    mc_err e = MC_OK;
    bind_blob(st, 1, serial, serial_len);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *msg = (const char *)sqlite3_column_text(st, 7);
        mc_ct_row r = {
            .serial = sqlite3_column_blob(st, 0),
            .serial_len = (size_t)sqlite3_column_bytes(st, 0),
            .log_id = sqlite3_column_blob(st, 1),
            .precert = sqlite3_column_int(st, 2),
            .state = (mc_ct_state)sqlite3_column_int(st, 3),
            .attempts = sqlite3_column_int(st, 4),
            .next_ms = sqlite3_column_int64(st, 5),
            .http_status = sqlite3_column_int(st, 6),
            .message = msg ? msg : "",
            .sct_timestamp = sqlite3_column_int64(st, 8),
            .sct = sqlite3_column_blob(st, 9),
            .sct_len = (size_t)sqlite3_column_bytes(st, 9),
        };
        fn(arg, &r);
    }
    if (rc != SQLITE_DONE)
        e = store_err(s, err, NULL, "ct list", rc);
    stmt_release(st);
    return e;
}

static mc_err sq_ct_counts(mc_store *base, int64_t *pending, int64_t *done, int64_t *rejected,
                           mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_CT_COUNTS];
    mc_err e = MC_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t *outs[3] = {pending, done, rejected};
        for (int k = 0; k < 3; k++)
            if (outs[k])
                *outs[k] = sqlite3_column_int64(st, k);
    } else {
        e = store_err(s, err, NULL, "ct counts", rc);
    }
    stmt_release(st);
    return e;
}

/* --- replacement and revocation -------------------------------------------------------------- */

static mc_err sq_replaced_by(mc_store *base, const uint8_t *serial, size_t serial_len, uint8_t *out,
                             size_t *out_len, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_REPLACED_BY];
    mc_err e = MC_OK;
    bind_blob(st, 1, serial, serial_len);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        if (p && n > 0 && n <= MC_SERIAL_MAX) {
            memcpy(out, p, n);
            *out_len = n;
        }
    } else if (rc != SQLITE_DONE) {
        e = store_err(s, err, "serial", "replaced by", rc);
    }
    stmt_release(st);
    return e;
}

static mc_err sq_cert_status(mc_store *base, const uint8_t *serial, size_t serial_len, char *status,
                             size_t cap, int64_t *revoked_at, int *reason, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_CERT_STATUS];
    char hex[2 * MC_SERIAL_MAX + 1];
    mc_err e = MC_OK;
    bind_blob(st, 1, serial, serial_len);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (status)
            copy_column_text(st, 0, status, cap);
        int revoked = sqlite3_column_type(st, 1) != SQLITE_NULL;
        if (revoked_at)
            *revoked_at = revoked ? sqlite3_column_int64(st, 1) : -1;
        if (reason)
            *reason = sqlite3_column_type(st, 2) != SQLITE_NULL ? sqlite3_column_int(st, 2) : -1;
    } else if (rc == SQLITE_DONE) {
        e = mc_err_set(err, MC_ERR_STORE, "serial", NULL,
                       "certificate status: serial %s: no "
                       "certificate",
                       mc_store_serial_hex(hex, serial, serial_len));
    } else {
        e = store_err(s, err, "serial", "certificate status", rc);
    }
    stmt_release(st);
    return e;
}

static mc_err sq_serial_status(mc_store *base, const uint8_t *serial, size_t serial_len,
                               mc_serial_status *out, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_SERIAL_STATUS];
    mc_err e = MC_OK;
    bind_blob(st, 1, serial, serial_len);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->not_after = sqlite3_column_int64(st, 0);
        if (!sqlite3_column_int(st, 1)) {
            out->state = MC_SERIAL_RESERVED;
        } else {
            const char *status = (const char *)sqlite3_column_text(st, 2);
            /* anything but 'issued' is a revocation, as the CRL lists them (ST_REVOKED) */
            out->state =
                status && strcmp(status, "issued") == 0 ? MC_SERIAL_ISSUED : MC_SERIAL_REVOKED;
            if (out->state == MC_SERIAL_REVOKED) {
                out->revoked_at = sqlite3_column_int64(st, 3);
                out->reason =
                    sqlite3_column_type(st, 4) != SQLITE_NULL ? sqlite3_column_int(st, 4) : 0;
            }
        }
    } else if (rc == SQLITE_DONE) {
        out->state = MC_SERIAL_UNUSED;
    } else {
        e = store_err(s, err, "serial", "serial status", rc);
    }
    stmt_release(st);
    return e;
}

/* Prepares sql (not cached: revocation is rare) or reports why not. */
static mc_err sq_prepare(sq_store *s, const char *sql, sqlite3_stmt **st, const char *op,
                         mc_errdetail *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? MC_OK : store_err(s, err, NULL, op, rc);
}

/* The selector's criteria (store.h mc_store_sel) over intents AS i joined with certificates
 * AS c: with st NULL, appended to sql (cap bytes) as " AND <condition>" each, numbering their
 * parameters ?1, ?2, ... in order; with st, those parameters bound in the same order (the two
 * passes walk the same list, so numbers and values cannot drift apart). Returns 0, or -1 when sql
 * is too short. engine/store_pg.c pg_sel has the same conditions in PostgreSQL's dialect. */
static int sq_sel(const mc_store_sel *sel, char *sql, size_t cap, sqlite3_stmt *st)
{
    size_t len = sql ? strlen(sql) : 0;
    int n = 0, over = 0;
#define SQ_TERM(cond, fmt, bind)                                                                   \
    do {                                                                                           \
        if (!(cond))                                                                               \
            break;                                                                                 \
        n++;                                                                                       \
        if (st) {                                                                                  \
            bind;                                                                                  \
        } else {                                                                                   \
            int w = snprintf(sql + len, cap - len, " AND " fmt, n);                                \
            if (w < 0 || (size_t)w >= cap - len)                                                   \
                over = 1;                                                                          \
            else                                                                                   \
                len += (size_t)w;                                                                  \
        }                                                                                          \
    } while (0)
    SQ_TERM(sel->serial, "i.serial = ?%d", bind_blob(st, n, sel->serial, sel->serial_len));
    SQ_TERM(sel->account, "i.account = ?%d", bind_text(st, n, sel->account));
    SQ_TERM(sel->spki_sha256, "i.spki_sha256 = ?%d", bind_blob(st, n, sel->spki_sha256, 32));
    SQ_TERM(sel->profile, "i.profile = ?%d", bind_text(st, n, sel->profile));
    SQ_TERM(sel->profile_hash, "i.profile_hash = ?%d", bind_blob(st, n, sel->profile_hash, 32));
    SQ_TERM(sel->has & MC_SEL_ISSUED_AFTER, "i.not_before >= ?%d",
            sqlite3_bind_int64(st, n, sel->issued_after));
    SQ_TERM(sel->has & MC_SEL_ISSUED_BEFORE, "i.not_before < ?%d",
            sqlite3_bind_int64(st, n, sel->issued_before));
    SQ_TERM(sel->has & MC_SEL_EXPIRED, "i.not_after < ?%d",
            sqlite3_bind_int64(st, n, sel->expired_at));
    SQ_TERM(sel->has & MC_SEL_UNEXPIRED, "i.not_after >= ?%d",
            sqlite3_bind_int64(st, n, sel->unexpired_at));
    SQ_TERM(sel->lint_version, "i.lint_version = ?%d", bind_text(st, n, sel->lint_version));
    SQ_TERM(sel->lint_enforced, "i.lint_enforced = ?%d", bind_text(st, n, sel->lint_enforced));
    /* an element of the comma-separated list (instr, not LIKE: ids contain '_') */
    SQ_TERM(sel->lint_id, "instr(',' || i.lint_warnings || ',', ',' || ?%d || ',') > 0",
            bind_text(st, n, sel->lint_id));
    SQ_TERM(sel->engine_version, "i.engine_version = ?%d", bind_text(st, n, sel->engine_version));
    /* some object of the evidence's mailboxes array has this method; evidence that is not JSON
     * or has no such array selects nothing (CASE, never an error: SQLite's JSON functions fail
     * on malformed text and the planner may evaluate this before the other criteria) */
    SQ_TERM(sel->method,
            "EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(i.evidence) THEN CASE WHEN"
            " json_type(i.evidence, '$.mailboxes') = 'array' THEN i.evidence END END,"
            " '$.mailboxes') AS m WHERE CASE WHEN m.type = 'object' THEN"
            " json_extract(m.value, '$.method') END = ?%d)",
            bind_text(st, n, sel->method));
    /* "@domain," in ",a@x,b@y,": a Dot-string local part (order.c) has neither '@' nor ',', so
     * this is exactly the domain of one mailbox; lower() folds ASCII, and domains are A-labels */
    SQ_TERM(sel->domain, "instr(',' || lower(i.mailboxes) || ',', '@' || lower(?%d) || ',') > 0",
            bind_text(st, n, sel->domain));
    SQ_TERM(sel->status, "c.status = ?%d", bind_text(st, n, sel->status));
    /* SBR 4.2.2.1: issued without CAA lookups, as the worker records it ("caa_checked": false
     * at the top of the evidence; a JSON false, not the text "false") */
    SQ_TERM(sel->caa_unchecked,
            "CASE WHEN json_valid(i.evidence) THEN json_type(i.evidence, '$.caa_checked') END"
            " = ?%d",
            bind_text(st, n, "false"));
#undef SQ_TERM
    return over ? -1 : 0;
}

/* Prepares head (selecting from intents AS i JOIN certificates AS c, ending in a WHERE clause)
 * with sel's criteria and tail appended, and binds them. Caller finalizes *st. */
static mc_err sq_sel_prepare(sq_store *s, const char *head, const mc_store_sel *sel,
                             const char *tail, sqlite3_stmt **st, const char *op, mc_errdetail *err)
{
    char sql[4096];
    *st = NULL;
    snprintf(sql, sizeof sql, "%s", head);
    if (sq_sel(sel, sql, sizeof sql - strlen(tail) - 1, NULL) != 0)
        return mc_err_set(err, MC_ERR_INVALID, "selector", NULL, "%s: selector too long", op);
    strcat(sql, tail);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return store_err(s, err, NULL, op, rc);
    sq_sel(sel, NULL, 0, *st);
    return MC_OK;
}

#define SQ_QUERY_FROM " FROM intents AS i JOIN certificates AS c ON c.intent = i.id WHERE 1"

/* Steps the selection one row at a time (a read transaction for the statement's length, so the
 * rows are one snapshot; meanwhile a checkpoint cannot copy the WAL past that snapshot, so a
 * listing left half-read on a busy store lets the WAL grow until it ends). */
static mc_err sq_query(mc_store *base, const mc_store_sel *sel, mc_store_row_fn fn, void *arg,
                       int64_t *rows, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    int rc;
    mc_err e = sq_sel_prepare(
        s,
        fn ? "SELECT i.serial, i.order_id, i.account, i.profile, i.profile_hash, i.lint_version,"
             " i.lint_enforced, i.lint_warnings, i.engine_version, i.not_before, i.not_after,"
             " c.status, c.revoked_at, c.revocation_reason, i.mailboxes, i.evidence" SQ_QUERY_FROM
           : "SELECT count(*)" SQ_QUERY_FROM,
        sel, fn ? " ORDER BY i.id" : "", &st, "query", err);
    if (e)
        goto done;
    if (!fn) {
        if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
            e = store_err(s, err, NULL, "query: count", rc);
            goto done;
        }
        n = sqlite3_column_int64(st, 0);
        goto done;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
#define TXT(col) ((const char *)sqlite3_column_text(st, col))
        mc_store_row r = {
            .serial = sqlite3_column_blob(st, 0),
            .serial_len = (size_t)sqlite3_column_bytes(st, 0),
            .order_id = TXT(1),
            .account = TXT(2),
            .profile = TXT(3),
            .profile_hash = sqlite3_column_blob(st, 4),
            .profile_hash_len = (size_t)sqlite3_column_bytes(st, 4),
            .lint_version = TXT(5),
            .lint_enforced = TXT(6),
            .lint_warnings = TXT(7),
            .engine_version = TXT(8),
            .not_before = sqlite3_column_int64(st, 9),
            .not_after = sqlite3_column_int64(st, 10),
            .status = TXT(11),
            .revoked_at =
                sqlite3_column_type(st, 12) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 12),
            .reason = sqlite3_column_type(st, 13) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 13),
            .mailboxes = TXT(14),
            .evidence = TXT(15),
        };
#undef TXT
        n++;
        if ((e = fn(arg, &r)) != MC_OK)
            goto done;
    }
    if (rc != SQLITE_DONE)
        e = store_err(s, err, NULL, "query", rc);
done:
    sqlite3_finalize(st);
    if (rows)
        *rows = n;
    return e;
}

/* Runs a chunk statement (?1 reason, ?2 time, ?3 first k excluded, ?4 last k) and adds the rows
 * it changed to *count. */
static mc_err sq_revoke_step(sq_store *s, sqlite3_stmt *st, int reason, int64_t at, int64_t lo,
                             int64_t hi, int64_t *count, mc_errdetail *err)
{
    sqlite3_bind_int(st, 1, reason);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_int64(st, 3, lo);
    sqlite3_bind_int64(st, 4, hi);
    int rc = sqlite3_step(st);
    mc_err e = MC_OK;
    if (rc == SQLITE_DONE)
        *count += sqlite3_changes(s->db);
    else
        e = store_err(s, err, NULL, "revoke: chunk", rc);
    sqlite3_reset(st);
    return e;
}

/* The selection goes into a temporary table numbered in intent order (one INSERT ... SELECT,
 * which reads the store but takes no write lock); each chunk is then a range of that numbering
 * revoked by two set-based UPDATEs in one short write transaction. */
static mc_err sq_revoke(mc_store *base, const mc_store_sel *sel, int reason, int64_t revoked_at,
                        int dry_run, mc_revoke_counts *out, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *fill = NULL, *q = NULL, *up_kc = NULL, *up = NULL, *keys = NULL;
    mc_err e = exec_sql(s,
                        "DROP TABLE IF EXISTS temp.mc_revoke_set;"
                        "CREATE TEMP TABLE mc_revoke_set (k INTEGER PRIMARY KEY, intent INTEGER)",
                        "revoke: selection table", err);
    if (e)
        return e;
    if ((e = sq_sel_prepare(s, "INSERT INTO temp.mc_revoke_set (intent) SELECT i.id" SQ_QUERY_FROM,
                            sel, " ORDER BY i.id", &fill, "revoke: select", err)) != MC_OK)
        goto done;
    int rc = sqlite3_step(fill);
    if (rc != SQLITE_DONE) {
        e = store_err(s, err, NULL, "revoke: select", rc);
        goto done;
    }
    out->selected = sqlite3_changes(s->db);
    if (dry_run) {
        /* what the chunks below would change, counted in one pass */
        if ((e = sq_prepare(s,
                            "SELECT coalesce(sum(c.status = 'issued'), 0),"
                            " coalesce(sum(c.status <> 'issued' AND ?1 = 1"
                            " AND c.revocation_reason IS NOT 1), 0),"
                            " CASE WHEN ?1 = 1 THEN (SELECT count(DISTINCT i.spki_sha256)"
                            "  FROM temp.mc_revoke_set AS r2 JOIN intents AS i"
                            "  ON i.id = r2.intent WHERE i.spki_sha256 IS NOT NULL"
                            "  AND i.spki_sha256 NOT IN (SELECT spki_sha256 FROM compromised_keys))"
                            " ELSE 0 END"
                            " FROM temp.mc_revoke_set AS r JOIN certificates AS c"
                            " ON c.intent = r.intent",
                            &q, "revoke: dry run", err)) != MC_OK)
            goto done;
        sqlite3_bind_int(q, 1, reason);
        if ((rc = sqlite3_step(q)) != SQLITE_ROW) {
            e = store_err(s, err, NULL, "revoke: dry run", rc);
            goto done;
        }
        out->revoked = sqlite3_column_int64(q, 0);
        out->reason_updated = sqlite3_column_int64(q, 1);
        out->keys_compromised = sqlite3_column_int64(q, 2);
        goto counted;
    }
    /* SBR 4.9.1.1 item 3 / RFC 5280 practice: keyCompromise supersedes an earlier reason; the
     * first revocation time stays. Other reasons never change an existing revocation. */
    if ((e = sq_prepare(s,
                        "UPDATE certificates SET revocation_reason = ?1"
                        " WHERE status = 'revoked' AND revocation_reason IS NOT ?1"
                        " AND intent IN (SELECT intent FROM temp.mc_revoke_set"
                        "  WHERE k > ?3 AND k <= ?4)",
                        &up_kc, "revoke: prepare", err)) != MC_OK ||
        (e = sq_prepare(s,
                        "UPDATE certificates SET status = 'revoked', revoked_at = ?2,"
                        " revocation_reason = ?1 WHERE status = 'issued'"
                        " AND intent IN (SELECT intent FROM temp.mc_revoke_set"
                        "  WHERE k > ?3 AND k <= ?4)",
                        &up, "revoke: prepare", err)) != MC_OK ||
        (reason == MC_CRL_KEY_COMPROMISE &&
         (e = sq_prepare(s,
                         "INSERT INTO compromised_keys (spki_sha256, recorded_at, source)"
                         " SELECT DISTINCT i.spki_sha256, ?2, 'revocation' FROM intents AS i"
                         " WHERE i.spki_sha256 IS NOT NULL"
                         " AND i.id IN (SELECT intent FROM temp.mc_revoke_set"
                         "  WHERE k > ?3 AND k <= ?4)"
                         " ON CONFLICT (spki_sha256) DO NOTHING",
                         &keys, "revoke: prepare", err)) != MC_OK))
        goto done;
    for (int64_t lo = 0; lo < out->selected; lo += MC_REVOKE_CHUNK) {
        int64_t hi = lo + MC_REVOKE_CHUNK;
        if ((e = step_done(s, ST_BEGIN, "revoke: begin", err)) != MC_OK)
            goto done;
        if (reason == MC_CRL_KEY_COMPROMISE &&
            (e = sq_revoke_step(s, up_kc, reason, revoked_at, lo, hi, &out->reason_updated, err)) !=
                MC_OK)
            goto done;
        if ((e = sq_revoke_step(s, up, reason, revoked_at, lo, hi, &out->revoked, err)) != MC_OK)
            goto done;
        /* SBR 6.1.1.3 (4): the revoked certificates' keys are refused from now on */
        if (keys && (e = sq_revoke_step(s, keys, reason, revoked_at, lo, hi, &out->keys_compromised,
                                        err)) != MC_OK)
            goto done;
        if ((e = step_done(s, ST_COMMIT, "revoke: commit", err)) != MC_OK)
            goto done;
    }
counted:
    out->unchanged = out->selected - out->revoked - out->reason_updated;
done:
    if (e)
        txn_abort(s);
    sqlite3_finalize(fill);
    sqlite3_finalize(q);
    sqlite3_finalize(up_kc);
    sqlite3_finalize(up);
    sqlite3_finalize(keys);
    sqlite3_exec(s->db, "DROP TABLE IF EXISTS temp.mc_revoke_set", NULL, NULL, NULL);
    return e;
}

/* Replaces SQLite's autocheckpoint hook (mc_store_checkpoint_elsewhere): notes the WAL's size
 * for the caller and copies it inline only past the hard limit. */
static int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    sq_store *s = arg;
    s->wal_pages = pages;
    if (pages >= s->hard_pages)
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static mc_err sq_checkpoint_elsewhere(mc_store *base, long hard_pages, mc_errdetail *err)
{
    (void)err;
    sq_store *s = (sq_store *)base;
    s->hard_pages = hard_pages;
    sqlite3_wal_hook(s->db, sq_wal_hook, s);
    return MC_OK;
}

static long sq_wal_pages(const mc_store *base)
{
    return ((const sq_store *)base)->wal_pages;
}

static mc_err sq_checkpoint(mc_store *base, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    /* BUSY: another checkpoint is running; the next request copies what is left */
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return store_err(s, err, NULL, "checkpoint", rc);
    return MC_OK;
}

static mc_err sq_durability(mc_store *base, char *buf, size_t cap, int *durable, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    static const char *const names[] = {"off", "normal", "full", "extra"};
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA synchronous", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int v = sqlite3_column_int(st, 0);
        snprintf(buf, cap, "synchronous=%s", v >= 0 && v <= 3 ? names[v] : "?");
        *durable = v >= 2; /* FULL or EXTRA: the WAL synced at every commit */
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? MC_OK : store_err(s, err, NULL, "store durability", rc);
}

/* Under BEGIN IMMEDIATE (the write lock another connection waits on): the entries, then the
 * number, so a later number lists at least as much. */
static mc_err sq_crl_begin(mc_store *base, int64_t this_update, int64_t next_update,
                           mc_store_revoked_fn fn, void *arg, uint64_t *number, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_REVOKED], *ins = s->st[ST_CRL_NUMBER];
    int64_t n = 0;
    mc_err e = step_done(s, ST_BEGIN, "crl: begin", err);
    if (e)
        return e;
    sqlite3_bind_int64(st, 1, this_update);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fn(arg, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
           sqlite3_column_int64(st, 1),
           sqlite3_column_type(st, 2) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 2));
        n++;
    }
    if (rc != SQLITE_DONE)
        e = store_err(s, err, NULL, "crl: revoked certificates", rc);
    stmt_release(st);
    if (!e) {
        sqlite3_bind_int64(ins, 1, this_update);
        sqlite3_bind_int64(ins, 2, next_update);
        sqlite3_bind_int64(ins, 3, n);
        sqlite3_bind_int64(ins, 4, (int64_t)time(NULL));
        if ((rc = sqlite3_step(ins)) == SQLITE_ROW) {
            *number = (uint64_t)sqlite3_column_int64(ins, 0);
            rc = sqlite3_step(ins);
        }
        if (rc != SQLITE_DONE)
            e = store_err(s, err, NULL, "crl: number", rc);
        stmt_release(ins);
    }
    if (!e)
        e = step_done(s, ST_COMMIT, "crl: commit", err);
    if (e)
        txn_abort(s);
    return e;
}

static mc_err sq_crl_published(mc_store *base, uint64_t number, uint64_t last, int64_t at,
                               mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_CRL_PUBLISHED];
    sqlite3_bind_int64(st, 1, (int64_t)number);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_int64(st, 3, (int64_t)last);
    int rc = sqlite3_step(st);
    mc_err e = rc == SQLITE_DONE ? MC_OK : store_err(s, err, NULL, "crl: published", rc);
    if (!e && (uint64_t)sqlite3_changes(s->db) != last - number + 1)
        e = mc_err_set(err, MC_ERR_STORE, "number", NULL, "crl: no CRL number %llu..%llu",
                       (unsigned long long)number, (unsigned long long)last);
    stmt_release(st);
    return e;
}

static mc_err sq_crl_latest(mc_store *base, uint64_t *number, int64_t *this_update,
                            int64_t *next_update, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_CRL_LATEST];
    int rc = sqlite3_step(st);
    mc_err e = MC_OK;
    if (rc == SQLITE_ROW) {
        *number = (uint64_t)sqlite3_column_int64(st, 0);
        *this_update = sqlite3_column_int64(st, 1);
        *next_update = sqlite3_column_int64(st, 2);
    } else if (rc != SQLITE_DONE) {
        e = store_err(s, err, NULL, "latest crl", rc);
    }
    stmt_release(st);
    return e;
}

/* --- audit log ------------------------------------------------------------------------------ */

static mc_err sq_audit_append(mc_store *base, const mc_audit_event *v, size_t n, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *ins = s->st[ST_AUDIT_INSERT];
    mc_err e = step_done(s, ST_BEGIN, "audit: begin", err);
    for (size_t i = 0; i < n && !e; i++) {
        sqlite3_bind_int64(ins, 1, v[i].at);
        bind_text(ins, 2, v[i].actor);
        bind_text(ins, 3, v[i].event);
        bind_text(ins, 4, v[i].subject);
        bind_text(ins, 5, v[i].detail);
        int rc = sqlite3_step(ins);
        if (rc != SQLITE_DONE)
            e = store_err(s, err, NULL, "audit: insert", rc);
        stmt_release(ins);
    }
    if (!e)
        e = step_done(s, ST_COMMIT, "audit: commit", err);
    if (e)
        txn_abort(s);
    return e;
}

static mc_err sq_audit_list(mc_store *base, int64_t after_id, int64_t since, const char *event,
                            mc_store_audit_fn fn, void *arg, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_AUDIT_LIST];
    mc_err e = MC_OK;
    int rc;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, since);
    bind_text(st, 3, event);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        mc_audit_event ev = {.id = sqlite3_column_int64(st, 0),
                             .at = sqlite3_column_int64(st, 1),
                             .actor = (const char *)sqlite3_column_text(st, 2),
                             .event = (const char *)sqlite3_column_text(st, 3),
                             .subject = (const char *)sqlite3_column_text(st, 4),
                             .detail = (const char *)sqlite3_column_text(st, 5)};
        fn(arg, &ev);
    }
    if (rc != SQLITE_DONE)
        e = store_err(s, err, NULL, "audit: list", rc);
    stmt_release(st);
    return e;
}

/* As sq_crl_begin: under BEGIN IMMEDIATE, the entries, then one number per shard. */
static mc_err sq_crl_shards_begin(mc_store *base, int64_t this_update, int64_t next_update,
                                  mc_store_shard_revoked_fn fn, mc_store_crl_plan_fn plan,
                                  void *arg, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_REVOKED_SHARD], *ins = s->st[ST_CRL_SHARD_NUMBER];
    mc_err e = step_done(s, ST_BEGIN, "crl: begin", err);
    if (e)
        return e;
    sqlite3_bind_int64(st, 1, this_update);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fn(arg, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
           sqlite3_column_int64(st, 1),
           sqlite3_column_type(st, 2) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 2),
           sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3));
    }
    if (rc != SQLITE_DONE)
        e = store_err(s, err, NULL, "crl: revoked certificates", rc);
    stmt_release(st);
    mc_store_crl_shard *v = NULL;
    size_t n = 0, nknown = 0, kcap = 0;
    unsigned *known = NULL;
    sqlite3_stmt *ks = s->st[ST_CRL_SHARDS_KNOWN];
    while (!e && (rc = sqlite3_step(ks)) == SQLITE_ROW) {
        if (nknown == kcap) {
            unsigned *k = realloc(known, (kcap = kcap ? 2 * kcap : 64) * sizeof *k);
            if (!k) {
                e = mc_err_set(err, MC_ERR_NOMEM, "shards", NULL, "crl: shards recorded");
                break;
            }
            known = k;
        }
        known[nknown++] = (unsigned)sqlite3_column_int64(ks, 0);
    }
    if (!e && rc != SQLITE_DONE)
        e = store_err(s, err, NULL, "crl: shards recorded", rc);
    stmt_release(ks);
    if (!e && plan(arg, known, nknown, &v, &n) != 0)
        e = mc_err_set(err, MC_ERR_NOMEM, "entries", NULL, "crl: the shards could not be planned");
    free(known);
    for (size_t i = 0; !e && i < n; i++) {
        sqlite3_bind_int64(ins, 1, this_update);
        sqlite3_bind_int64(ins, 2, next_update);
        sqlite3_bind_int64(ins, 3, v[i].entries);
        sqlite3_bind_int64(ins, 4, (int64_t)time(NULL));
        sqlite3_bind_int64(ins, 5, (sqlite3_int64)v[i].shard);
        if ((rc = sqlite3_step(ins)) == SQLITE_ROW) {
            v[i].number = (uint64_t)sqlite3_column_int64(ins, 0);
            rc = sqlite3_step(ins);
        }
        if (rc != SQLITE_DONE)
            e = store_err(s, err, NULL, "crl: number", rc);
        stmt_release(ins);
    }
    if (!e)
        e = step_done(s, ST_COMMIT, "crl: commit", err);
    if (e)
        txn_abort(s);
    return e;
}

static mc_err sq_crl_shards_latest(mc_store *base, int64_t *shards, int64_t *oldest_this_update,
                                   int64_t *earliest_next_update, mc_errdetail *err)
{
    sq_store *s = (sq_store *)base;
    sqlite3_stmt *st = s->st[ST_CRL_SHARDS_LATEST];
    int rc = sqlite3_step(st);
    mc_err e = MC_OK;
    if (rc == SQLITE_ROW) {
        *shards = sqlite3_column_int64(st, 0);
        *oldest_this_update = sqlite3_column_int64(st, 1);
        *earliest_next_update = sqlite3_column_int64(st, 2);
    } else {
        e = store_err(s, err, NULL, "latest shard crls", rc);
    }
    stmt_release(st);
    return e;
}

static const mc_store_ops sq_ops = {
    .name = "sqlite",
    .intents_commit = sq_intents_commit,
    .certs_commit = sq_certs_commit,
    .lookup = sq_lookup,
    .lint_meta = sq_lint_meta,
    .counts = sq_counts,
    .pending = sq_pending,
    .ct_enqueue = sq_ct_enqueue,
    .ct_claim = sq_ct_claim,
    .ct_record = sq_ct_record,
    .ct_list = sq_ct_list,
    .ct_counts = sq_ct_counts,
    .replaced_by = sq_replaced_by,
    .revoke = sq_revoke,
    .query = sq_query,
    .cert_status = sq_cert_status,
    .checkpoint_elsewhere = sq_checkpoint_elsewhere,
    .wal_pages = sq_wal_pages,
    .checkpoint = sq_checkpoint,
    .durability = sq_durability,
    .crl_begin = sq_crl_begin,
    .crl_published = sq_crl_published,
    .audit_append = sq_audit_append,
    .audit_list = sq_audit_list,
    .crl_latest = sq_crl_latest,
    .serial_status = sq_serial_status,
    .crl_shards_begin = sq_crl_shards_begin,
    .crl_shards_latest = sq_crl_shards_latest,
    .close = sq_close,
};

/* --- public functions: checks, then the backend ---------------------------------------------- */

/* A libpq connection URI (the two schemes libpq accepts); anything else is a SQLite path. */
static int is_pg_uri(const char *where)
{
    return strncmp(where, "postgresql://", 13) == 0 || strncmp(where, "postgres://", 11) == 0;
}

mc_err mc_store_open(const char *where, mc_store **out, mc_errdetail *err)
{
    if (!where || !out)
        return mc_err_set(err, MC_ERR_INVALID, "path", NULL, "store open: NULL argument");
    *out = NULL;
    if (!where[0])
        return mc_err_set(err, MC_ERR_INVALID, "path", NULL, "store open: empty location");
    return is_pg_uri(where) ? mc_store_pg_open(where, out, err) : sq_open(where, out, err);
}

void mc_store_close(mc_store *s)
{
    if (s)
        s->ops->close(s);
}

int mc_store_has_wal(const mc_store *s)
{
    return s && s->ops->checkpoint != NULL;
}

mc_err mc_store_checkpoint_elsewhere(mc_store *s, long hard_pages, mc_errdetail *err)
{
    if (hard_pages < 1)
        return mc_err_set(err, MC_ERR_INVALID, "hard_pages", NULL,
                          "checkpoint elsewhere: the WAL's hard limit must be at least 1 page");
    return s && s->ops->checkpoint_elsewhere ? s->ops->checkpoint_elsewhere(s, hard_pages, err)
                                             : MC_OK;
}

long mc_store_wal_pages(const mc_store *s)
{
    return s && s->ops->wal_pages ? s->ops->wal_pages(s) : 0;
}

mc_err mc_store_checkpoint(mc_store *s, mc_errdetail *err)
{
    return s && s->ops->checkpoint ? s->ops->checkpoint(s, err) : MC_OK;
}

mc_err mc_store_migrate(const char *where, mc_errdetail *err)
{
    mc_store *s = NULL;
    mc_err e = mc_store_open(where, &s, err); /* open migrates, in one transaction */
    mc_store_close(s);
    return e;
}

int mc_store_schema_version(void)
{
    return MC_STORE_SCHEMA_VERSION;
}

const char *mc_store_backend(const mc_store *s)
{
    return s ? s->ops->name : "";
}

mc_err mc_store_crl_begin(mc_store *s, int64_t this_update, int64_t next_update,
                          mc_store_revoked_fn fn, void *arg, uint64_t *number, mc_errdetail *err)
{
    if (!s || !fn || !number)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "crl: NULL argument");
    if (next_update <= this_update)
        return mc_err_set(err, MC_ERR_INVALID, "next_update", NULL,
                          "crl: nextUpdate %lld is not after thisUpdate %lld",
                          (long long)next_update, (long long)this_update);
    return s->ops->crl_begin(s, this_update, next_update, fn, arg, number, err);
}

void mc_store_migration_event(int from, char *actor, size_t acap, char *detail, size_t dcap)
{
    mc_audit_actor(actor, acap);
    snprintf(detail, dcap, "{\"from\":%d,\"to\":%d,\"engine_version\":\"%s\"}", from,
             MC_STORE_SCHEMA_VERSION, MAILCA_VERSION);
}

mc_err mc_store_audit_append(mc_store *s, const mc_audit_event *v, size_t n, mc_errdetail *err)
{
    char field[MC_ERR_FIELD_MAX];
    if (!s || (n && !v))
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "audit: no store or events");
    for (size_t i = 0; i < n; i++)
        if (!v[i].actor || !v[i].actor[0] || !v[i].event || !v[i].event[0]) {
            const char *what = !v[i].actor || !v[i].actor[0] ? "actor" : "event";
            snprintf(field, sizeof field, "v[%zu].%s", i, what);
            /* SBR 5.4.1: a record says who made it (when applicable) and what happened */
            return mc_err_set(err, MC_ERR_INVALID, field, "SBR 5.4.1", "audit event %zu has no %s",
                              i, what);
        }
    return n ? s->ops->audit_append(s, v, n, err) : MC_OK;
}

mc_err mc_store_audit_list(mc_store *s, int64_t after_id, int64_t since, const char *event,
                           mc_store_audit_fn fn, void *arg, mc_errdetail *err)
{
    if (!s || !fn)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "audit list: no store or callback");
    return s->ops->audit_list(s, after_id, since, event, fn, arg, err);
}

mc_err mc_store_crl_published(mc_store *s, uint64_t number, int64_t at, mc_errdetail *err)
{
    if (!s || !number)
        return mc_err_set(err, MC_ERR_INVALID, "number", NULL, "crl published: no CRL number");
    return s->ops->crl_published(s, number, number, at, err);
}

mc_err mc_store_crl_published_range(mc_store *s, uint64_t first, uint64_t last, int64_t at,
                                    mc_errdetail *err)
{
    if (!s || !first || last < first || last > INT64_MAX)
        return mc_err_set(err, MC_ERR_INVALID, "number", NULL,
                          "crl published: no CRL numbers %llu..%llu", (unsigned long long)first,
                          (unsigned long long)last);
    return s->ops->crl_published(s, first, last, at, err);
}

mc_err mc_store_crl_latest(mc_store *s, uint64_t *number, int64_t *this_update,
                           int64_t *next_update, mc_errdetail *err)
{
    if (!s || !number || !this_update || !next_update)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "latest crl: NULL argument");
    *number = 0;
    *this_update = *next_update = 0;
    return s->ops->crl_latest(s, number, this_update, next_update, err);
}

mc_err mc_store_crl_shards_begin(mc_store *s, int64_t this_update, int64_t next_update,
                                 mc_store_shard_revoked_fn fn, mc_store_crl_plan_fn plan, void *arg,
                                 mc_errdetail *err)
{
    if (!s || !fn || !plan)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "crl shards: NULL argument");
    if (next_update <= this_update)
        return mc_err_set(err, MC_ERR_INVALID, "next_update", NULL,
                          "crl: nextUpdate %lld is not after thisUpdate %lld",
                          (long long)next_update, (long long)this_update);
    return s->ops->crl_shards_begin(s, this_update, next_update, fn, plan, arg, err);
}

mc_err mc_store_crl_shards_latest(mc_store *s, int64_t *shards, int64_t *oldest_this_update,
                                  int64_t *earliest_next_update, mc_errdetail *err)
{
    if (!s || !shards || !oldest_this_update || !earliest_next_update)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "latest shard crls: NULL argument");
    *shards = *oldest_this_update = *earliest_next_update = 0;
    return s->ops->crl_shards_latest(s, shards, oldest_this_update, earliest_next_update, err);
}

mc_err mc_store_durability(mc_store *s, char *buf, size_t cap, int *durable, mc_errdetail *err)
{
    if (!s || !buf || !cap || !durable)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "store durability: NULL argument");
    buf[0] = '\0';
    *durable = 0;
    return s->ops->durability(s, buf, cap, durable, err);
}

mc_err mc_store_intents_commit(mc_store *s, const mc_intent *v, size_t n, mc_intent_state *state,
                               mc_errdetail *err)
{
    if (!s || (n && (!v || !state)))
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "intents commit: NULL argument");
    /* Checked before the transaction so a bad entry costs no write lock. */
    for (size_t i = 0; i < n; i++) {
        mc_err ce = intent_check(&v[i], i, err);
        if (ce)
            return ce;
    }
    return n ? s->ops->intents_commit(s, v, n, state, err) : MC_OK;
}

/* The TBSCertificate TLV of a Certificate (DER); 0 if it does not parse. */
static int cert_tbs(const uint8_t *der, size_t len, mc_der_tlv *tbs)
{
    mc_der_cur c = mc_der_cur_make(der, len), in;
    mc_der_tlv cert;
    if (mc_der_expect(&c, MC_DER_SEQUENCE, &cert) != MC_OK)
        return 0;
    in = mc_der_cur_in(&cert);
    return mc_der_expect(&in, MC_DER_SEQUENCE, tbs) == MC_OK;
}

mc_err mc_store_cert_vs_stored(const mc_stored_cert *c, const uint8_t *der, size_t der_len,
                               const char *field, uint8_t *resigned, mc_errdetail *err)
{
    char hex[2 * MC_SERIAL_MAX + 1];
    if (der_len == c->der_len && memcmp(der, c->der, der_len) == 0)
        return MC_OK;
    if (mc_store_same_tbs(der, der_len, c->der, c->der_len)) {
        *resigned = 1; /* the stored certificate stands */
        if (c->resigned)
            *c->resigned = 1;
        return MC_OK;
    }
    return mc_err_set(err, MC_ERR_STORE, field, NULL,
                      "certs commit: order '%s': serial %s already has a different certificate",
                      c->order_id, mc_store_serial_hex(hex, c->serial, c->serial_len));
}

mc_err mc_store_ct_recorded(const mc_stored_cert *v, const uint8_t *resigned, size_t n,
                            const mc_ct_entry **ct, size_t *ct_n, mc_ct_entry **keep,
                            mc_errdetail *err)
{
    *keep = NULL;
    if (!*ct_n || !memchr(resigned, 1, n))
        return MC_OK;
    mc_ct_entry *out = malloc(*ct_n * sizeof *out);
    if (!out)
        return mc_err_set(err, MC_ERR_NOMEM, "certs", NULL, "certs commit: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < *ct_n; i++) {
        const mc_ct_entry *e = &(*ct)[i];
        int skip = 0;
        for (size_t j = 0; j < n && !skip; j++)
            skip = resigned[j] && v[j].serial_len == e->serial_len &&
                   memcmp(v[j].serial, e->serial, e->serial_len) == 0;
        if (!skip)
            out[k++] = *e;
    }
    *keep = out;
    *ct = out;
    *ct_n = k;
    return MC_OK;
}

int mc_store_same_tbs(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    mc_der_tlv ta, tb;
    return cert_tbs(a, an, &ta) && cert_tbs(b, bn, &tb) && ta.rawlen == tb.rawlen &&
           memcmp(ta.raw, tb.raw, ta.rawlen) == 0;
}

/* Checks each row and clears its resigned flag (the backend sets it). */
static mc_err certs_check(const mc_stored_cert *v, size_t n, mc_errdetail *err)
{
    for (size_t i = 0; i < n; i++) {
        mc_err ce = cert_check(&v[i], i, err);
        if (ce)
            return ce;
        if (v[i].resigned)
            *v[i].resigned = 0;
    }
    return MC_OK;
}

mc_err mc_store_certs_commit(mc_store *s, const mc_stored_cert *v, size_t n, mc_errdetail *err)
{
    if (!s || (n && !v))
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "certs commit: NULL argument");
    mc_err ce = certs_check(v, n, err);
    if (ce)
        return ce;
    return n ? s->ops->certs_commit(s, v, n, NULL, 0, err) : MC_OK;
}

mc_err mc_store_lookup(mc_store *s, const char *order_id, int *found, uint8_t **serial,
                       size_t *serial_len, uint8_t **tbs, size_t *tbs_len, uint8_t **der,
                       size_t *der_len, mc_errdetail *err)
{
    if (!s || !order_id || !found)
        return mc_err_set(err, MC_ERR_INVALID, "order_id", NULL, "lookup: NULL argument");
    *found = 0;
    uint8_t **outs[3] = {serial, tbs, der};
    size_t *lens[3] = {serial_len, tbs_len, der_len};
    for (int k = 0; k < 3; k++) {
        if (outs[k])
            *outs[k] = NULL;
        if (lens[k])
            *lens[k] = 0;
    }
    mc_err e =
        s->ops->lookup(s, order_id, found, serial, serial_len, tbs, tbs_len, der, der_len, err);
    if (e) {
        /* a failed lookup hands back nothing, whatever the backend had copied so far */
        *found = 0;
        for (int k = 0; k < 3; k++) {
            if (outs[k]) {
                free(*outs[k]);
                *outs[k] = NULL;
            }
            if (lens[k])
                *lens[k] = 0;
        }
    }
    return e;
}

mc_err mc_store_lint_meta(mc_store *s, const char *order_id, char *lint_version, size_t lv_cap,
                          char *warnings, size_t w_cap, mc_errdetail *err)
{
    if (!s || !order_id || !lint_version || !warnings || !lv_cap || !w_cap)
        return mc_err_set(err, MC_ERR_INVALID, "order_id", NULL, "lint meta: NULL argument");
    return s->ops->lint_meta(s, order_id, lint_version, lv_cap, warnings, w_cap, err);
}

mc_err mc_store_counts(mc_store *s, int64_t *certs, int64_t *pending, mc_errdetail *err)
{
    if (!s)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "counts: NULL store");
    return s->ops->counts(s, certs, pending, err);
}

mc_err mc_store_pending(mc_store *s, mc_store_pending_fn fn, void *arg, mc_errdetail *err)
{
    if (!s || !fn)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "pending: NULL argument");
    return s->ops->pending(s, fn, arg, err);
}

/* --- CT outbox: public functions ---------------------------------------------------------------
 */

static mc_err ct_key_check(const char *what, size_t i, const uint8_t *serial, size_t serial_len,
                           const uint8_t *log_id, mc_errdetail *err)
{
    char field[MC_ERR_FIELD_MAX];
    if (!serial || serial_len == 0 || serial_len > MC_SERIAL_MAX) {
        snprintf(field, sizeof field, "%s[%zu].serial", what, i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL,
                          "%s %zu: serial length %zu not in 1..%d", what, i,
                          serial ? serial_len : 0, MC_SERIAL_MAX);
    }
    if (!log_id) {
        snprintf(field, sizeof field, "%s[%zu].log_id", what, i);
        return mc_err_set(err, MC_ERR_INVALID, field, NULL, "%s %zu: log id missing", what, i);
    }
    return MC_OK;
}

static mc_err ct_entries_check(const mc_ct_entry *v, size_t n, mc_errdetail *err)
{
    for (size_t i = 0; i < n; i++) {
        mc_err e = ct_key_check("ct", i, v[i].serial, v[i].serial_len, v[i].log_id, err);
        if (e)
            return e;
        if (!v[i].chain || v[i].chain_len == 0) {
            char field[MC_ERR_FIELD_MAX];
            snprintf(field, sizeof field, "ct[%zu].chain", i);
            return mc_err_set(err, MC_ERR_INVALID, field, NULL, "ct %zu: chain missing", i);
        }
    }
    return MC_OK;
}

mc_err mc_store_ct_enqueue(mc_store *s, const mc_ct_entry *v, size_t n, mc_errdetail *err)
{
    if (!s || (n && !v))
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "ct enqueue: NULL argument");
    mc_err e = ct_entries_check(v, n, err);
    if (e)
        return e;
    return n ? s->ops->ct_enqueue(s, v, n, (int64_t)time(NULL), err) : MC_OK;
}

mc_err mc_store_certs_commit_ct(mc_store *s, const mc_stored_cert *v, size_t n,
                                const mc_ct_entry *ct, size_t ct_n, mc_errdetail *err)
{
    if (!s || (n && !v) || (ct_n && !ct))
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "certs commit: NULL argument");
    mc_err e = certs_check(v, n, err);
    if (e)
        return e;
    e = ct_entries_check(ct, ct_n, err);
    if (e)
        return e;
    if (n)
        return s->ops->certs_commit(s, v, n, ct, ct_n, err);
    return ct_n ? s->ops->ct_enqueue(s, ct, ct_n, (int64_t)time(NULL), err) : MC_OK;
}

mc_err mc_store_ct_claim(mc_store *s, int64_t now_ms, int64_t lease_until_ms, size_t limit,
                         mc_ct_job **jobs, size_t *n, mc_errdetail *err)
{
    if (!s || !jobs || !n)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "ct claim: NULL argument");
    *jobs = NULL;
    *n = 0;
    if (lease_until_ms <= now_ms)
        return mc_err_set(err, MC_ERR_INVALID, "lease_until_ms", NULL,
                          "ct claim: lease end %lld not after now %lld", (long long)lease_until_ms,
                          (long long)now_ms);
    return limit ? s->ops->ct_claim(s, now_ms, lease_until_ms, limit, jobs, n, err) : MC_OK;
}

void mc_store_ct_jobs_free(mc_ct_job *jobs, size_t n)
{
    if (!jobs)
        return;
    for (size_t i = 0; i < n; i++)
        free(jobs[i].chain);
    free(jobs);
}

mc_err mc_store_ct_record(mc_store *s, const mc_ct_outcome *v, size_t n, mc_errdetail *err)
{
    if (!s || (n && !v))
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "ct record: NULL argument");
    for (size_t i = 0; i < n; i++) {
        mc_err e = ct_key_check("outcome", i, v[i].serial, v[i].serial_len, v[i].log_id, err);
        if (e)
            return e;
        if (v[i].state == MC_CT_DONE && (!v[i].sct || v[i].sct_len == 0)) {
            char field[MC_ERR_FIELD_MAX];
            snprintf(field, sizeof field, "outcome[%zu].sct", i);
            return mc_err_set(err, MC_ERR_INVALID, field, NULL, "outcome %zu: done without SCT", i);
        }
        if (v[i].state != MC_CT_PENDING && v[i].state != MC_CT_DONE &&
            v[i].state != MC_CT_REJECTED) {
            char field[MC_ERR_FIELD_MAX];
            snprintf(field, sizeof field, "outcome[%zu].state", i);
            return mc_err_set(err, MC_ERR_INVALID, field, NULL, "outcome %zu: state %d unknown", i,
                              (int)v[i].state);
        }
    }
    return n ? s->ops->ct_record(s, v, n, (int64_t)time(NULL), err) : MC_OK;
}

mc_err mc_store_ct_list(mc_store *s, const uint8_t *serial, size_t serial_len,
                        mc_store_ct_row_fn fn, void *arg, mc_errdetail *err)
{
    if (!s || !fn)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "ct list: NULL argument");
    if (serial && (serial_len == 0 || serial_len > MC_SERIAL_MAX))
        return mc_err_set(err, MC_ERR_INVALID, "serial", NULL,
                          "ct list: serial length %zu not in 1..%d", serial_len, MC_SERIAL_MAX);
    return s->ops->ct_list(s, serial, serial ? serial_len : 0, fn, arg, err);
}

mc_err mc_store_ct_counts(mc_store *s, int64_t *pending, int64_t *done, int64_t *rejected,
                          mc_errdetail *err)
{
    if (!s)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "ct counts: NULL store");
    return s->ops->ct_counts(s, pending, done, rejected, err);
}

/* --- replacement and revocation: public functions -------------------------------------------- */

int mc_store_serial_parse(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = hex ? strlen(hex) : 0;
    if (n == 0 || n % 2 || n / 2 > MC_SERIAL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = hex[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return 0;
        if (i % 2)
            out[i / 2] = (uint8_t)(out[i / 2] | v);
        else
            out[i / 2] = (uint8_t)(v << 4);
    }
    *len = n / 2;
    return 1;
}

static mc_err serial_arg_check(const char *op, const uint8_t *serial, size_t serial_len,
                               mc_errdetail *err)
{
    if (!serial || serial_len == 0 || serial_len > MC_SERIAL_MAX)
        return mc_err_set(err, MC_ERR_INVALID, "serial", NULL, "%s: serial length %zu not in 1..%d",
                          op, serial ? serial_len : 0, MC_SERIAL_MAX);
    return MC_OK;
}

mc_err mc_store_replaced_by(mc_store *s, const uint8_t *serial, size_t serial_len, uint8_t *out,
                            size_t *out_len, mc_errdetail *err)
{
    if (!s || !out || !out_len)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "replaced by: NULL argument");
    *out_len = 0;
    mc_err e = serial_arg_check("replaced by", serial, serial_len, err);
    return e ? e : s->ops->replaced_by(s, serial, serial_len, out, out_len, err);
}

/* SBR 7.2.2 and 4.9.13 (store.h "revocation"): the RFC 5280 reasons a subscriber certificate
 * may carry here. */
int mc_crl_reason_allowed(int reason)
{
    switch (reason) {
    case MC_CRL_UNSPECIFIED:
    case MC_CRL_KEY_COMPROMISE:
    case MC_CRL_AFFILIATION_CHANGED:
    case MC_CRL_SUPERSEDED:
    case MC_CRL_CESSATION_OF_OPERATION:
    case MC_CRL_PRIVILEGE_WITHDRAWN:
        return 1;
    default:
        return 0;
    }
}

/* 1 when t is a non-empty string of at most max bytes, all of them in set. */
static int all_of(const char *t, size_t max, const char *set)
{
    size_t n = t ? strlen(t) : 0;
    return n > 0 && n <= max && t[strspn(t, set)] == '\0';
}

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define DIGITS "0123456789"

mc_err mc_store_sel_check(const mc_store_sel *sel, int *criteria, mc_errdetail *err)
{
    int n = 0;
    if (criteria)
        *criteria = 0;
    if (!sel)
        return mc_err_set(err, MC_ERR_INVALID, "selector", NULL, "selector: NULL argument");
    if (sel->serial) {
        mc_err e = serial_arg_check("selector", sel->serial, sel->serial_len, err);
        if (e)
            return e;
    }
    const struct {
        const char *v, *field;
    } text[] = {{sel->account, "account"},
                {sel->profile, "profile"},
                {sel->lint_version, "lint_version"},
                {sel->lint_enforced, "lint_enforced"},
                {sel->engine_version, "engine_version"}};
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        if (text[i].v && !text[i].v[0])
            return mc_err_set(err, MC_ERR_INVALID, text[i].field, NULL,
                              "selector: %s is empty (leave it out to select any)", text[i].field);
    /* a lint id (mc_lint_def.id): a comma or '%' would match something other than one whole
     * id of the list */
    if (sel->lint_id && !all_of(sel->lint_id, 80, LOWER DIGITS "_"))
        return mc_err_set(err, MC_ERR_INVALID, "lint_id", NULL,
                          "selector: '%s' is not a lint id (a-z, 0-9, '_', at most 80)",
                          sel->lint_id);
    /* SBR 3.2.2: mailbox control is validated by 3.2.2.1 (domain), 3.2.2.2 (email), 3.2.2.3
     * (SMTP FQDN) or 3.2.2.4 (ACME for S/MIME); the evidence records one of them per mailbox */
    if (sel->method && strcmp(sel->method, "3.2.2.1") != 0 && strcmp(sel->method, "3.2.2.2") != 0 &&
        strcmp(sel->method, "3.2.2.3") != 0 && strcmp(sel->method, "3.2.2.4") != 0)
        return mc_err_set(err, MC_ERR_INVALID, "method", "SBR 3.2.2",
                          "selector: '%s' is not an SBR 3.2.2 mailbox validation method "
                          "(3.2.2.1, 3.2.2.2, 3.2.2.3, 3.2.2.4)",
                          sel->method);
    /* the certificate carries domains as A-labels (SBR 7.1.4.2.1): LDH labels and dots; an '@'
     * or ',' would match across mailboxes */
    if (sel->domain && (!all_of(sel->domain, 253, LOWER "ABCDEFGHIJKLMNOPQRSTUVWXYZ" DIGITS "-.") ||
                        sel->domain[0] == '.' || sel->domain[strlen(sel->domain) - 1] == '.' ||
                        strstr(sel->domain, "..")))
        return mc_err_set(err, MC_ERR_INVALID, "domain", "RFC 5321 4.1.2",
                          "selector: '%s' is not a domain name (A-labels: letters, digits, '-', "
                          "dots between labels)",
                          sel->domain);
    if (sel->status && strcmp(sel->status, "issued") != 0 && strcmp(sel->status, "revoked") != 0)
        return mc_err_set(err, MC_ERR_INVALID, "status", NULL,
                          "selector: status '%s' is neither issued nor revoked", sel->status);
    if ((sel->has & MC_SEL_ISSUED_AFTER) && (sel->has & MC_SEL_ISSUED_BEFORE) &&
        sel->issued_after >= sel->issued_before)
        return mc_err_set(err, MC_ERR_INVALID, "issued_before", NULL,
                          "selector: issued-before %lld is not after issued-after %lld (the "
                          "window [after, before) would be empty)",
                          (long long)sel->issued_before, (long long)sel->issued_after);
    if (sel->caa_unchecked != 0 && sel->caa_unchecked != 1)
        return mc_err_set(err, MC_ERR_INVALID, "caa_unchecked", NULL,
                          "selector: caa_unchecked is %d, not 0 or 1", sel->caa_unchecked);
    if (sel->has &
        ~(MC_SEL_ISSUED_AFTER | MC_SEL_ISSUED_BEFORE | MC_SEL_EXPIRED | MC_SEL_UNEXPIRED))
        return mc_err_set(err, MC_ERR_INVALID, "has", NULL, "selector: unknown bits 0x%x in has",
                          sel->has);
    const void *given[] = {sel->serial,         sel->account,      sel->spki_sha256,   sel->profile,
                           sel->profile_hash,   sel->lint_version, sel->lint_enforced, sel->lint_id,
                           sel->engine_version, sel->method,       sel->domain,        sel->status};
    for (size_t i = 0; i < sizeof given / sizeof given[0]; i++)
        n += given[i] != NULL;
    n += sel->caa_unchecked;
    for (unsigned bit = 1; bit <= MC_SEL_UNEXPIRED; bit <<= 1)
        n += (sel->has & bit) != 0;
    if (criteria)
        *criteria = n;
    return MC_OK;
}

mc_err mc_store_revoke(mc_store *s, const mc_store_sel *sel, int reason, int64_t revoked_at,
                       int dry_run, mc_revoke_counts *out, mc_errdetail *err)
{
    if (!s || !sel || !out)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "revoke: NULL argument");
    memset(out, 0, sizeof *out);
    if (!mc_crl_reason_allowed(reason))
        return mc_err_set(err, MC_ERR_INVALID, "reason", "SBR 7.2.2",
                          "revoke: CRLReason %d is not one a subscriber certificate is revoked "
                          "with here (unspecified, keyCompromise, affiliationChanged, "
                          "superseded, cessationOfOperation, privilegeWithdrawn)",
                          reason);
    int criteria = 0;
    mc_err e = mc_store_sel_check(sel, &criteria, err);
    if (e)
        return e;
    /* an empty selector would be every certificate: never by accident */
    if (criteria == 0)
        return mc_err_set(err, MC_ERR_INVALID, "selector", NULL,
                          "revoke: no selection criterion given (an empty selector would revoke "
                          "every certificate)");
    return s->ops->revoke(s, sel, reason, revoked_at, dry_run, out, err);
}

mc_err mc_store_query(mc_store *s, const mc_store_sel *sel, mc_store_row_fn fn, void *arg,
                      int64_t *rows, mc_errdetail *err)
{
    if (rows)
        *rows = 0;
    if (!s || !sel)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "query: NULL argument");
    mc_err e = mc_store_sel_check(sel, NULL, err);
    int64_t n = 0;
    if (!e)
        e = s->ops->query(s, sel, fn, arg, &n, err);
    if (rows)
        *rows = n;
    return e;
}

mc_err mc_store_cert_status(mc_store *s, const uint8_t *serial, size_t serial_len, char *status,
                            size_t cap, int64_t *revoked_at, int *reason, mc_errdetail *err)
{
    if (!s || (status && !cap))
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "certificate status: NULL argument");
    mc_err e = serial_arg_check("certificate status", serial, serial_len, err);
    return e ? e : s->ops->cert_status(s, serial, serial_len, status, cap, revoked_at, reason, err);
}

mc_err mc_store_serial_status(mc_store *s, const uint8_t *serial, size_t serial_len,
                              mc_serial_status *out, mc_errdetail *err)
{
    if (!s || !out)
        return mc_err_set(err, MC_ERR_INVALID, NULL, NULL, "serial status: NULL argument");
    memset(out, 0, sizeof *out);
    out->revoked_at = -1;
    out->reason = -1;
    mc_err e = serial_arg_check("serial status", serial, serial_len, err);
    return e ? e : s->ops->serial_status(s, serial, serial_len, out, err);
}
