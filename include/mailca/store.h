/*
 * mc_store: durable storage of intents and certificates. Two backends behind the same functions:
 * SQLite in WAL mode (engine/store.c, the embedded default: the store is a file path) and
 * PostgreSQL through libpq (engine/store_pg.c: the store is a "postgresql://" or "postgres://"
 * URI; several engine nodes may share one database). One mc_store per thread (neither a SQLite
 * connection nor a libpq connection is shared between threads).
 *
 * Durability contract (DESIGN.md, "Sinks and durability"): before a batch of TBS certificates goes
 * to the HSM, their serials, TBS hashes and order ids are committed (mc_store_intents_commit,
 * one transaction per batch); after signing, the certificates are committed
 * (mc_store_certs_commit, one transaction per batch). An intent without a certificate after a
 * crash is found by mc_store_pending and reconciled.
 */
#ifndef MAILCA_STORE_H
#define MAILCA_STORE_H

#include "mailca/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct mc_store mc_store;

#define MC_SERIAL_MAX 20

/* One intent. order_id, serial (1..MC_SERIAL_MAX bytes), tbs, tbs_hash and profile_hash are
 * required (MC_ERR_INVALID otherwise); the text fields may be NULL (stored as NULL). */
typedef struct mc_intent {
    const char *order_id;
    const char *account;
    const char *profile;         /* profile name */
    const uint8_t *profile_hash; /* 32 bytes, SHA-256 of the profile file */
    const char *lint_version;    /* lint set version applied */
    const char *engine_version;
    const uint8_t *serial;
    size_t serial_len;
    const uint8_t *tbs; /* the exact TBSCertificate DER to be signed */
    size_t tbs_len;
    const uint8_t *tbs_hash; /* 32 bytes SHA-256 of tbs */
    int64_t not_before, not_after;
    const char *mailboxes;     /* comma-separated */
    const char *evidence;      /* validation evidence as text (JSON) */
    const char *lint_warnings; /* warning lint ids, comma-separated, may be "" */
    const char *replaces;      /* hex serial or NULL */
    /* SHA-256 of the subject's SubjectPublicKeyInfo DER (32 bytes), or NULL: then the key is
     * neither recorded nor bound to the account (see MC_INTENT_KEY_BOUND). */
    const uint8_t *spki_sha256;
    /* The lint set whose error lints blocked this issuance (mc_lint_set_effective of the
     * config's lint.enforced_set): error lints added after it only warned, and those of them
     * that fired are in lint_warnings. NULL when lint was off. */
    const char *lint_enforced;
} mc_intent;

/* What an intent commit found per entry. */
typedef enum mc_intent_state {
    MC_INTENT_NEW = 0,         /* recorded now: go ahead and sign */
    MC_INTENT_ISSUED,          /* the order id already has a certificate: return it, do not sign */
    MC_INTENT_PENDING,         /* the order id has an intent but no certificate (earlier crash or in
                                  flight): re-sign the stored TBS, same serial */
    MC_INTENT_KEY_BOUND,       /* a new order whose subject key is bound to another account (the
                                  first account to use a key owns it, issue 6): nothing was recorded;
                                  refuse it (mc_keycheck_reuse_refusal) */
    MC_INTENT_KEY_COMPROMISED, /* an order whose subject key was revoked for keyCompromise
                                  (SBR 6.1.1.3 (4)): nothing was recorded, and an intent of it
                                  recorded before is not to be signed; refuse it */
} mc_intent_state;

typedef struct mc_stored_cert {
    const char *order_id;
    const uint8_t *serial;
    size_t serial_len;
    const uint8_t *der; /* Certificate DER */
    size_t der_len;
    /* Optional (NULL) output of the certs commit: 1 when the serial already had a certificate
     * with another signature over the same TBSCertificate (two engines, or engine nodes sharing
     * a store, signed one pending intent: each re-signs its recorded TBS), 0 otherwise. The
     * stored certificate stands and the order is to be answered with it (mc_store_lookup): this
     * one is never recorded, so it must never leave the engine. Meaningful only when the commit
     * returned MC_OK (a rolled-back commit may leave flags of rows it had checked). */
    int *resigned;
} mc_stored_cert;

/* Opens (creating and migrating the schema as needed) the store at where:
 * - a URI starting "postgresql://" or "postgres://" (libpq connection URI; its search_path, if
 *   given with options=-csearch_path=..., picks the schema): PostgreSQL. MC_ERR_UNSUPPORTED when
 *   this build has no libpq (MAILCA_HAVE_LIBPQ undefined). Messages name host, port and database,
 *   never the password.
 * - anything else is a file path: SQLite in WAL mode, synchronous=NORMAL, foreign keys on, a busy
 *   timeout for concurrent writers.
 * Several handles (threads, processes or hosts) may open the same store. A store whose
 * schema_version is newer than this engine knows is refused (MC_ERR_STORE). Caller frees *out
 * with mc_store_close. */
mc_err mc_store_open(const char *where, mc_store **out, mc_errdetail *err);
void mc_store_close(mc_store *s);

/* WAL checkpoints, SQLite only (the PostgreSQL backend has none: mc_store_has_wal is 0, the
 * others do nothing and return MC_OK / 0).
 * A SQLite commit that finds MC_STORE_WAL_CHECKPOINT_PAGES in the WAL copies it into the
 * database itself, which stalls that commit for the copy's whole length. The engine's collector
 * commits before every batch is signed, so it hands the copy to a connection of its own:
 * - mc_store_checkpoint_elsewhere: this connection's commits no longer copy the WAL, unless it
 *   reaches hard_pages (the engine: MC_STORE_WAL_HARD_PAGES), so that it stays bounded if
 *   nobody else copies it;
 * - mc_store_wal_pages: pages in the WAL after this connection's last commit;
 * - mc_store_checkpoint: copies the WAL into the database (SQLite's PASSIVE checkpoint: it
 *   never blocks writers, and a writer restarts the WAL once it is all copied). */
#define MC_STORE_WAL_CHECKPOINT_PAGES 16384
#define MC_STORE_WAL_HARD_PAGES (4 * MC_STORE_WAL_CHECKPOINT_PAGES)
int mc_store_has_wal(const mc_store *s);
mc_err mc_store_checkpoint_elsewhere(mc_store *s, long hard_pages, mc_errdetail *err);
long mc_store_wal_pages(const mc_store *s);
mc_err mc_store_checkpoint(mc_store *s, mc_errdetail *err);

/* Brings the store at where (as for mc_store_open) to this engine's schema version and closes
 * it: the work of `mailca store migrate`. Versions and migration numbers are the same for both
 * backends (table schema_version: one row per applied migration). A newer store is
 * MC_ERR_STORE. */
mc_err mc_store_migrate(const char *where, mc_errdetail *err);

/* The schema version this engine writes (the number of the last migration). */
int mc_store_schema_version(void);

/* "sqlite" or "postgresql" (static string). */
const char *mc_store_backend(const mc_store *s);

/* How a commit reaches the disk on this store's own connection, read back from it (not from
 * the config): SQLite "synchronous=full" (store open sets FULL), PostgreSQL
 * "synchronous_commit=on fsync=on" (store open turns synchronous_commit back on when the
 * server, role or database has it off; the server's fsync it cannot change). For `mailca
 * status`: a store whose commits a power loss can undo breaks the write-ahead of intent, and
 * *durable says whether they are safe (SQLite FULL or EXTRA; PostgreSQL synchronous_commit not
 * off and fsync on). */
mc_err mc_store_durability(mc_store *s, char *buf, size_t cap, int *durable, mc_errdetail *err);

/* Records n intents in one transaction. state[i] says what was found for each order id (for an
 * existing order id nothing is written; an order id repeated within v yields MC_INTENT_PENDING
 * for the repeat). A new order with spki_sha256 binds that key to its account when the key is
 * new, and is MC_INTENT_KEY_BOUND (nothing written) when another account owns it; the binding and
 * the intent commit together, so two engine nodes cannot both bind one key. A serial already
 * recorded for another order id is MC_ERR_STORE naming the serial. On any error the whole batch is
 * rolled back and state[] is meaningless. The caller's buffers are only read during the call. */
mc_err mc_store_intents_commit(mc_store *s, const mc_intent *v, size_t n, mc_intent_state *state,
                               mc_errdetail *err);

/* Records n certificates in one transaction (each must match a recorded intent by order id and
 * serial, else MC_ERR_STORE naming the order id and nothing is written). Committing the same DER
 * again for a serial is a no-op (MC_OK); so is another signature over the same TBSCertificate
 * (v[i].resigned set, the stored certificate kept); a different TBSCertificate for a serial
 * that has a certificate is MC_ERR_STORE. */
mc_err mc_store_certs_commit(mc_store *s, const mc_stored_cert *v, size_t n, mc_errdetail *err);

/* 1 when the certificates a and b (DER) hold the same TBSCertificate: both signatures of one
 * recorded intent (mc_stored_cert.resigned). */
int mc_store_same_tbs(const uint8_t *a, size_t an, const uint8_t *b, size_t bn);

/* Looks up an order id. "Not found" is MC_OK with *found = 0 (all outputs NULL / 0). Found: *found
 * = 1 and *serial, *tbs, *der are malloc'd copies the caller frees with free() (*der NULL and
 * *der_len 0 when only an intent exists). Any output pointer pair may be NULL when not wanted.
 * On error nothing is left allocated. */
mc_err mc_store_lookup(mc_store *s, const char *order_id, int *found, uint8_t **serial,
                       size_t *serial_len, uint8_t **tbs, size_t *tbs_len, uint8_t **der,
                       size_t *der_len, mc_errdetail *err);

/* The lint set version and warning ids recorded with an order's intent (copied, truncated to
 * the buffers). MC_ERR_STORE when the order id has no intent. */
mc_err mc_store_lint_meta(mc_store *s, const char *order_id, char *lint_version, size_t lv_cap,
                          char *warnings, size_t w_cap, mc_errdetail *err);

/* Counts: certificates stored, intents without a certificate. */
mc_err mc_store_counts(mc_store *s, int64_t *certs, int64_t *pending, mc_errdetail *err);

/* Calls fn for each intent that has no certificate (reconciliation at start), oldest first. The
 * pointers passed to fn are valid only during that call (copy what you keep), and fn must not
 * call into s: the listing statement is still running. */
typedef void (*mc_store_pending_fn)(void *arg, const char *order_id, const uint8_t *serial,
                                    size_t serial_len, const uint8_t *tbs, size_t tbs_len);
mc_err mc_store_pending(mc_store *s, mc_store_pending_fn fn, void *arg, mc_errdetail *err);

/* --- replacement (migration 4) ---------------------------------------------------------------
 * An intent's replaces (hex, as orders.md writes serials; upper case accepted) is recorded as
 * given. When it parses as a serial (1..MC_SERIAL_MAX bytes) it is also kept as bytes
 * (intents.replaces_serial), and when the replacing certificate is committed, the replaced
 * certificate's replaced_by is set to the new serial in the same transaction (both backends).
 * A replaces naming a serial this store has no certificate for is recorded as given and links
 * nothing (another CA's serial, or a typo: the order is not refused for it). A certificate that
 * is replaced twice keeps the first replacement committed (replaced_by is never overwritten). */

/* mc_store_replaced_by: the serial that replaced serial (copied into out, MC_SERIAL_MAX bytes;
 * *out_len 0 when none or when serial is unknown). */
mc_err mc_store_replaced_by(mc_store *s, const uint8_t *serial, size_t serial_len, uint8_t *out,
                            size_t *out_len, mc_errdetail *err);

/* Parses a hex serial (even number of digits, either case, 1..MC_SERIAL_MAX bytes) into out.
 * Returns 1 and *len, or 0 when hex is not one. */
int mc_store_serial_parse(const char *hex, uint8_t *out, size_t *len);

/* --- revocation (SBR 4.9.1.1, 7.2.2) ---------------------------------------------------------
 * RFC 5280 5.3.1 CRLReason codes a subscriber certificate may be revoked with here:
 * - unspecified (0) is recorded as 0, and a CRL or OCSP writer SHALL then omit reasonCode
 *   (SBR 7.2.2: "The CRLReason indicated SHALL NOT be unspecified (0)");
 * - caCompromise (2) and aACompromise (10) are about CA and attribute-authority keys and
 *   removeFromCRL (8) exists only in delta CRLs: never a subscriber certificate's reason;
 * - certificateHold (6) is suspension, which mailca does not implement (SBR 4.9.13: a CA that
 *   suspends SHALL use only certificateHold and describe it in its CP/CPS; SBR 7.2.2 forbids it
 *   for Strict certificates), so it is refused too.
 * mc_store_revoke refuses any other code with MC_ERR_INVALID (field "reason"). */
typedef enum mc_crl_reason {
    MC_CRL_UNSPECIFIED = 0,
    MC_CRL_KEY_COMPROMISE = 1,
    MC_CRL_AFFILIATION_CHANGED = 3,
    MC_CRL_SUPERSEDED = 4,
    MC_CRL_CESSATION_OF_OPERATION = 5,
    MC_CRL_PRIVILEGE_WITHDRAWN = 9,
} mc_crl_reason;

/* 1 when reason is one of mc_crl_reason above (SBR 7.2.2 / 4.9.13 as explained there). */
int mc_crl_reason_allowed(int reason);

/* --- selection (`mailca query`, `mailca revoke`) -----------------------------------------------
 * Which certificates (intents with a certificate: an intent never signed was never issued) a
 * query or a revocation selects: every criterion given (non-NULL, or its bit in has) must hold
 * (AND). A selector with no criterion selects every certificate; mc_store_revoke refuses it.
 * Values are bound as parameters, never pasted into SQL text. */
#define MC_SEL_ISSUED_AFTER 1u  /* notBefore >= issued_after */
#define MC_SEL_ISSUED_BEFORE 2u /* notBefore < issued_before */
#define MC_SEL_EXPIRED                                                                             \
    4u                      /* notAfter < expired_at: no longer valid at that time (RFC 5280       \
                               4.1.2.5: the validity period includes notAfter) */
#define MC_SEL_UNEXPIRED 8u /* notAfter >= unexpired_at */

typedef struct mc_store_sel {
    const uint8_t *serial; /* serial_len bytes (1..MC_SERIAL_MAX) */
    size_t serial_len;
    const char *account;         /* the ordering account */
    const uint8_t *spki_sha256;  /* 32 bytes: every certificate for the subject key (SBR 4.9.1.1
                                    item 3, key compromise) */
    const char *profile;         /* profile name */
    const uint8_t *profile_hash; /* 32 bytes: SHA-256 of the profile file */
    const char *lint_version;    /* the lint set the issuing build ran */
    const char *lint_enforced;   /* the lint set whose error lints blocked issuance */
    const char *lint_id;         /* a whole element of lint_warnings (a warning lint, or an error
                                    lint its lint_enforced did not enforce yet); a-z 0-9 '_' */
    const char *engine_version;
    const char *method; /* SBR 3.2.2 method "3.2.2.1" .. "3.2.2.4": some element of the
                           evidence's mailboxes[] has it as "method" */
    const char *domain; /* the exact domain (ASCII, compared case-insensitively) of one of the
                           subject's mailboxes */
    const char *status; /* "issued" or "revoked" */
    int caa_unchecked;  /* 1: the evidence records "caa_checked": false (issued with CAA
                           lookups off, SBR 4.2.2.1); 0: any */
    unsigned has;       /* MC_SEL_* bits: which of the times below are criteria */
    int64_t issued_after, issued_before; /* seconds since the epoch; after < before */
    int64_t expired_at, unexpired_at;
} mc_store_sel;

/* MC_OK when every criterion of sel is well-formed (serial 1..MC_SERIAL_MAX bytes, no empty
 * text, a method of SBR 3.2.2, a domain of letters, digits, '-' and '.', a lint id of a-z 0-9
 * '_', status "issued" / "revoked", caa_unchecked 0 or 1, issued_after < issued_before when
 * both are given);
 * MC_ERR_INVALID naming the field and the rule otherwise. *criteria (may be NULL) gets how many
 * criteria sel has. */
mc_err mc_store_sel_check(const mc_store_sel *sel, int *criteria, mc_errdetail *err);

/* One selected certificate as a query lists it. Pointers are valid only during the callback;
 * text columns recorded as NULL are NULL. */
typedef struct mc_store_row {
    const uint8_t *serial;
    size_t serial_len;
    const char *order_id;
    const char *account;
    const char *profile;
    const uint8_t *profile_hash; /* profile_hash_len bytes (32), NULL when none */
    size_t profile_hash_len;
    const char *lint_version, *lint_enforced, *lint_warnings, *engine_version;
    int64_t not_before, not_after;
    const char *status;    /* "issued" / "revoked" */
    int64_t revoked_at;    /* -1 when not revoked */
    int reason;            /* RFC 5280 CRLReason code, -1 when not revoked */
    const char *mailboxes; /* comma-separated */
    const char *evidence;  /* as recorded (JSON text) */
} mc_store_row;

/* Gets each row; a non-MC_OK return stops the query, which then returns that code (err is the
 * callback's to fill). fn must not call into the store: the query is still running. */
typedef mc_err (*mc_store_row_fn)(void *arg, const mc_store_row *row);

/* Lists the certificates sel selects (mc_store_sel_check first) to fn, in intent order (the
 * order they were recorded), one row at a time: the result is never held whole (SQLite steps
 * the statement, PostgreSQL streams in single-row mode), so memory stays bounded however many
 * rows match. fn NULL: only counts. *rows (may be NULL) gets how many rows were selected (handed
 * to fn). */
mc_err mc_store_query(mc_store *s, const mc_store_sel *sel, mc_store_row_fn fn, void *arg,
                      int64_t *rows, mc_errdetail *err);

typedef struct mc_revoke_counts {
    int64_t selected;         /* certificates the selector matched (intents without a certificate
                                 are not revoked: they were never issued) */
    int64_t revoked;          /* issued -> revoked now */
    int64_t reason_updated;   /* already revoked, reason changed to keyCompromise now */
    int64_t unchanged;        /* already revoked, left as they were */
    int64_t keys_compromised; /* keyCompromise: subject keys recorded as compromised now (their
                                 orders are refused from now on, SBR 6.1.1.3 (4)) */
} mc_revoke_counts;

/* Revokes the certificates sel selects (mc_store_sel_check; a selector without any criterion
 * is refused, MC_ERR_INVALID field "selector": never everything by accident) with reason
 * (mc_crl_reason_allowed) at revoked_at (seconds since the epoch). Re-revoking keeps the first
 * revocation's time and reason, except that keyCompromise supersedes another reason (RFC 5280
 * practice: the reason is raised to keyCompromise when the compromise is learnt later; the first
 * revocation time is kept). The selection is taken once (a snapshot of the certificates then
 * committed), then revoked in chunks of MC_REVOKE_CHUNK certificates, each chunk one transaction of
 * set-based statements, so a million certificates do not hold the store's write lock for minutes:
 * the engine keeps issuing in between. On an error the chunks committed stay revoked and *out
 * counts them; running the same revocation again finishes the rest. dry_run: nothing is written,
 * *out says what would change. */
#define MC_REVOKE_CHUNK 20000
mc_err mc_store_revoke(mc_store *s, const mc_store_sel *sel, int reason, int64_t revoked_at,
                       int dry_run, mc_revoke_counts *out, mc_errdetail *err);

/* CRLs (engine/crl.c). A revoked certificate, as a CRL lists it. */
typedef void (*mc_store_revoked_fn)(void *arg, const uint8_t *serial, size_t serial_len,
                                    int64_t revoked_at, int reason);

/* Starts a CRL: in one transaction, holding a lock other nodes wait on, lists every revoked
 * certificate not expired at this_update (its notAfter not before it: RFC 5280 5.1.2.6), in
 * serial order, to fn, then records the CRL (times, entry count) under the next CRL number, one
 * more than the highest ever recorded, and returns it in *number. So numbers never go backwards
 * (RFC 5280 5.2.3) and a higher number always lists at least what a lower one did, across
 * engine nodes sharing a PostgreSQL store too. A CRL that then fails to sign or publish leaves
 * its number unused (numbers increase; they need not be consecutive). fn must not call the
 * store. */
mc_err mc_store_crl_begin(mc_store *s, int64_t this_update, int64_t next_update,
                          mc_store_revoked_fn fn, void *arg, uint64_t *number, mc_errdetail *err);

/* Partitioned CRLs (crl.h). A revoked certificate with its own recorded TBSCertificate (the
 * caller reads the shard from its CRL DP: mc_crl_shard_of_tbs). */
typedef void (*mc_store_shard_revoked_fn)(void *arg, const uint8_t *serial, size_t serial_len,
                                          int64_t revoked_at, int reason, const uint8_t *tbs,
                                          size_t tbs_len);
/* One shard CRL to record: the caller fills shard and entries; the store fills number. */
typedef struct mc_store_crl_shard {
    unsigned shard;
    int64_t entries;
    uint64_t number;
} mc_store_crl_shard;
/* Called once, after the last entry and inside the transaction, with the shards that have a
 * CRL recorded already (ascending, nknown of them: a shard once served keeps being served, since
 * certificates issued under a larger ca.crl_shards name it): *v and *n are the shard CRLs to
 * record (the caller's array, which the store fills numbers into). Non-zero: abandon (the
 * transaction is rolled back and nothing recorded; MC_ERR_NOMEM). */
typedef int (*mc_store_crl_plan_fn)(void *arg, const unsigned *known, size_t nknown,
                                    mc_store_crl_shard **v, size_t *n);

/* As mc_store_crl_begin for every shard at once: in one transaction under the same lock, lists
 * every revoked certificate not expired at this_update, in serial order, to fn with its
 * TBSCertificate (so a certificate's shard is read from the URL it was issued with, whatever
 * the shard count now), then records one CRL per
 * shard plan returns (crls.shard), numbered one after another above the highest number ever
 * recorded, full CRLs included: one sequence, so each shard's numbers increase too
 * (RFC 5280 5.2.3). fn and plan must not call the store. */
mc_err mc_store_crl_shards_begin(mc_store *s, int64_t this_update, int64_t next_update,
                                 mc_store_shard_revoked_fn fn, mc_store_crl_plan_fn plan, void *arg,
                                 mc_errdetail *err);

/* The shard CRLs published, each shard's latest: *shards how many shards have one, the oldest
 * thisUpdate and the earliest nextUpdate among them (0 when none). */
mc_err mc_store_crl_shards_latest(mc_store *s, int64_t *shards, int64_t *oldest_this_update,
                                  int64_t *earliest_next_update, mc_errdetail *err);

/* Marks CRL number as published (written where it is served) at time at. */
mc_err mc_store_crl_published(mc_store *s, uint64_t number, int64_t at, mc_errdetail *err);
/* The same for every CRL numbered first..last (the shards of one run), in one statement: one
 * commit for thousands of shards. MC_ERR_STORE when one of them was never recorded (the
 * others are marked). */
mc_err mc_store_crl_published_range(mc_store *s, uint64_t first, uint64_t last, int64_t at,
                                    mc_errdetail *err);

/* The latest full CRL published (mc_store_crl_published; shard CRLs are not full ones):
 * *number 0 when none yet; its times. */
mc_err mc_store_crl_latest(mc_store *s, uint64_t *number, int64_t *this_update,
                           int64_t *next_update, mc_errdetail *err);

/* A certificate's status: *status "issued" / "revoked" (copied, cap bytes), *revoked_at and
 * *reason (-1 when not revoked). MC_ERR_STORE (field "serial") when the serial has no
 * certificate. Any output may be NULL. */
mc_err mc_store_cert_status(mc_store *s, const uint8_t *serial, size_t serial_len, char *status,
                            size_t cap, int64_t *revoked_at, int *reason, mc_errdetail *err);

/* What an OCSP responder may say of a serial (engine/ocsp.c, SBR 4.9.10): unlike
 * mc_store_cert_status, "never assigned" and "reserved but not recorded as issued" are answers,
 * not errors, so that neither is ever answered "good". */
typedef enum mc_serial_state {
    MC_SERIAL_UNUSED = 0, /* no intent: this CA never assigned the serial */
    MC_SERIAL_RESERVED,   /* an intent without a certificate: in flight, or maybe signed before a
                             crash and never recorded (mc_store_pending): not known to be issued */
    MC_SERIAL_ISSUED,     /* a certificate, not revoked */
    MC_SERIAL_REVOKED,    /* a certificate, revoked */
} mc_serial_state;

typedef struct mc_serial_status {
    mc_serial_state state;
    int64_t not_after;  /* the intent's notAfter (0 when UNUSED) */
    int64_t revoked_at; /* REVOKED: revocation time (seconds since the epoch); else -1 */
    int reason;         /* REVOKED: CRLReason as recorded (0 unspecified); else -1 */
} mc_serial_status;

/* The state of serial in one read (*out zeroed first). MC_ERR_INVALID for a serial outside
 * 1..MC_SERIAL_MAX bytes; MC_ERR_STORE on a store failure. */
mc_err mc_store_serial_status(mc_store *s, const uint8_t *serial, size_t serial_len,
                              mc_serial_status *out, mc_errdetail *err);
/* --- audit log (migration 10; engine/audit.c writes it, include/mailca/audit.h) ------------
 * SBR 5.4.1: the CA SHALL record the approval and rejection of certificate requests, revocation,
 * the generation of CRLs, the introduction of certificate profiles and other lifecycle events,
 * each with its date and time, who made it (when applicable) and a description. Certificates
 * and their provenance are the approvals (intents, certificates); this table holds the rest.
 * Rows are append-only: the store refuses UPDATE and DELETE (SQLite triggers; PostgreSQL
 * triggers refusing UPDATE, DELETE and TRUNCATE), a first protection against modification
 * (SBR 5.4.4) -- the database's own access control and backups do the rest. */
typedef struct mc_audit_event {
    int64_t id;          /* assigned by the store: order of recording (listing only) */
    int64_t at;          /* seconds since the epoch */
    const char *actor;   /* who: "user NAME (uid N)", with "via sudo from NAME" when so */
    const char *event;   /* e.g. "run.start", "order.rejected", "revoke" (audit.h) */
    const char *subject; /* what it is about (an order id, a serial, a CRL number); may be NULL */
    const char *detail;  /* a JSON object; may be NULL */
} mc_audit_event;

/* Records v[0..n) in one transaction (durable when it returns). actor and event are required
 * (MC_ERR_INVALID naming v[i].actor / v[i].event otherwise); id is ignored. */
mc_err mc_store_audit_append(mc_store *s, const mc_audit_event *v, size_t n, mc_errdetail *err);

/* Calls fn for every event with id > after_id, at >= since and (event non-NULL) that event
 * name, oldest first, streaming (rows are not held in memory). The event's strings are valid
 * during the call only. fn must not call the store. */
typedef void (*mc_store_audit_fn)(void *arg, const mc_audit_event *ev);
mc_err mc_store_audit_list(mc_store *s, int64_t after_id, int64_t since, const char *event,
                           mc_store_audit_fn fn, void *arg, mc_errdetail *err);

/* --- CT outbox (migration 2; engine/ct.c drives it, include/mailca/ct.h) ----------------------
 * One row per (serial, log, entry type): the chain to submit, its state and retry schedule, the
 * last answer. SCTs received are kept in their own table, keyed the same way. Times are
 * milliseconds since the epoch (SCT timestamps are too). Both tables reference intents(serial):
 * only certificates (or precertificates) this CA recorded are submitted. */

#define MC_CT_LOG_ID_LEN 32

typedef enum mc_ct_state {
    MC_CT_PENDING = 0,  /* waiting for its next attempt (next_ms) */
    MC_CT_DONE = 1,     /* an SCT was received, verified and stored */
    MC_CT_REJECTED = 2, /* the log refused it for good (4xx): http_status and message say why */
} mc_ct_state;

/* One submission to record in the outbox. chain is the encoded chain (engine/ct.c
 * mc_ct_chain_encode: { u24 length | DER }+, leaf or precertificate first). */
typedef struct mc_ct_entry {
    const uint8_t *serial;
    size_t serial_len;
    const uint8_t *log_id; /* MC_CT_LOG_ID_LEN bytes */
    int precert;           /* 0: add-chain (x509_entry); 1: add-pre-chain (precert_entry) */
    const uint8_t *chain;
    size_t chain_len;
    int64_t due_ms; /* first attempt at */
} mc_ct_entry;

/* A claimed outbox row: owned copies (chain malloc'd; free the array with mc_store_ct_jobs_free).
 */
typedef struct mc_ct_job {
    uint8_t serial[MC_SERIAL_MAX];
    size_t serial_len;
    uint8_t log_id[MC_CT_LOG_ID_LEN];
    int precert;
    uint8_t *chain;
    size_t chain_len;
    int attempts; /* attempts recorded before this one */
} mc_ct_job;

/* What became of one attempt. state DONE: sct (a serialized SCT, RFC 6962 3.3) is stored and the
 * row is finished; PENDING: retry at next_ms; REJECTED: finished without SCT. message (may be
 * NULL) is the last error or the log's refusal, kept for the operator. */
typedef struct mc_ct_outcome {
    const uint8_t *serial;
    size_t serial_len;
    const uint8_t *log_id;
    int precert;
    mc_ct_state state;
    int64_t next_ms;
    int http_status; /* 0: no HTTP answer (timeout, connection failure) */
    const char *message;
    int64_t sct_timestamp; /* DONE: the SCT's timestamp */
    const uint8_t *sct;    /* DONE: serialized SCT */
    size_t sct_len;
} mc_ct_outcome;

/* An outbox row as listed (pointers valid only during the callback). sct is NULL unless done. */
typedef struct mc_ct_row {
    const uint8_t *serial;
    size_t serial_len;
    const uint8_t *log_id;
    int precert;
    mc_ct_state state;
    int attempts;
    int64_t next_ms;
    int http_status;
    const char *message; /* "" when none */
    int64_t sct_timestamp;
    const uint8_t *sct;
    size_t sct_len;
} mc_ct_row;

/* Records n submissions in one transaction. An entry already in the outbox (same serial, log and
 * type) is left as it is (MC_OK): enqueueing is idempotent. A serial without an intent is
 * MC_ERR_STORE and nothing is written. */
mc_err mc_store_ct_enqueue(mc_store *s, const mc_ct_entry *v, size_t n, mc_errdetail *err);

/* Claims up to limit pending rows due at now_ms (oldest due first) and moves their next attempt
 * to lease_until_ms, so another drainer (thread, process or node) does not claim them meanwhile
 * and a drainer that dies leaves them due again later. *jobs (malloc'd, caller frees with
 * mc_store_ct_jobs_free) holds *n rows; none is MC_OK with *jobs NULL and *n 0. */
mc_err mc_store_ct_claim(mc_store *s, int64_t now_ms, int64_t lease_until_ms, size_t limit,
                         mc_ct_job **jobs, size_t *n, mc_errdetail *err);
void mc_store_ct_jobs_free(mc_ct_job *jobs, size_t n);

/* Records n outcomes in one transaction; each counts an attempt. Only pending rows change: an
 * outcome for a row already finished (another drainer got there first) or unknown is ignored,
 * and its SCT is not stored. */
mc_err mc_store_ct_record(mc_store *s, const mc_ct_outcome *v, size_t n, mc_errdetail *err);

/* Calls fn for each outbox row of serial (serial NULL: every row), ordered by serial, log id
 * and type, with its SCT when done. fn must not call into s. */
typedef void (*mc_store_ct_row_fn)(void *arg, const mc_ct_row *row);
mc_err mc_store_ct_list(mc_store *s, const uint8_t *serial, size_t serial_len,
                        mc_store_ct_row_fn fn, void *arg, mc_errdetail *err);

/* Outbox rows per state (any output may be NULL). */
mc_err mc_store_ct_counts(mc_store *s, int64_t *pending, int64_t *done, int64_t *rejected,
                          mc_errdetail *err);

/* mc_store_certs_commit and mc_store_ct_enqueue of ct_n rows in ONE transaction: a certificate
 * is never recorded without its CT submissions, nor the reverse (engine/ct.c
 * mc_ct_certs_commit builds the rows). Either failing rolls back both. */
mc_err mc_store_certs_commit_ct(mc_store *s, const mc_stored_cert *v, size_t n,
                                const mc_ct_entry *ct, size_t ct_n, mc_errdetail *err);

/* --- backend interface: for engine/store.c and engine/store_pg.c only ---------------------
 * mc_store_* above check their arguments and input (required fields, serial lengths, NULLs),
 * return early for n == 0, then call the backend, which gets only valid input with n > 0 and
 * implements the semantics documented above. A backend's handle starts with struct mc_store. */
/* Both backends apply the same numbered migrations (a static assertion in each holds its list to
 * this number): a new migration is added to both at once. */
#define MC_STORE_SCHEMA_VERSION 11

/* Backends' certs commit: keeps of the CT outbox rows *ct[0..*ct_n) those for certificates
 * actually recorded, i.e. not for a row of v[0..n) flagged in resigned[] (its chain holds a
 * signature no record has, which must never reach a log). When a row is flagged, *ct and
 * *ct_n are replaced by a malloc'd copy returned in *keep (the caller frees it; NULL
 * otherwise). MC_ERR_NOMEM names field "certs". */
mc_err mc_store_ct_recorded(const mc_stored_cert *v, const uint8_t *resigned, size_t n,
                            const mc_ct_entry **ct, size_t *ct_n, mc_ct_entry **keep,
                            mc_errdetail *err);

/* Backends' certs commit: row c was not inserted and its serial holds der. The same DER is a
 * replay (MC_OK); another signature over the same TBSCertificate sets *resigned (and
 * c->resigned) and is MC_OK; anything else is MC_ERR_STORE naming field. */
mc_err mc_store_cert_vs_stored(const mc_stored_cert *c, const uint8_t *der, size_t der_len,
                               const char *field, uint8_t *resigned, mc_errdetail *err);

typedef struct mc_store_ops {
    const char *name;
    mc_err (*intents_commit)(mc_store *s, const mc_intent *v, size_t n, mc_intent_state *state,
                             mc_errdetail *err);
    /* ct: CT outbox rows recorded in the same transaction (ct_n may be 0; entries checked). */
    mc_err (*certs_commit)(mc_store *s, const mc_stored_cert *v, size_t n, const mc_ct_entry *ct,
                           size_t ct_n, mc_errdetail *err);
    /* found and all outputs are reset by the caller; the backend fills the non-NULL ones and
     * frees what it allocated on error. */
    mc_err (*lookup)(mc_store *s, const char *order_id, int *found, uint8_t **serial,
                     size_t *serial_len, uint8_t **tbs, size_t *tbs_len, uint8_t **der,
                     size_t *der_len, mc_errdetail *err);
    mc_err (*lint_meta)(mc_store *s, const char *order_id, char *lint_version, size_t lv_cap,
                        char *warnings, size_t w_cap, mc_errdetail *err);
    mc_err (*counts)(mc_store *s, int64_t *certs, int64_t *pending, mc_errdetail *err);
    mc_err (*pending)(mc_store *s, mc_store_pending_fn fn, void *arg, mc_errdetail *err);
    /* CT outbox: n > 0 and entries checked; claim gets limit > 0 and *jobs NULL, *n 0; list
     * gets serial NULL (all rows) or a valid serial. */
    mc_err (*ct_enqueue)(mc_store *s, const mc_ct_entry *v, size_t n, int64_t now_s,
                         mc_errdetail *err);
    mc_err (*ct_claim)(mc_store *s, int64_t now_ms, int64_t lease_until_ms, size_t limit,
                       mc_ct_job **jobs, size_t *n, mc_errdetail *err);
    mc_err (*ct_record)(mc_store *s, const mc_ct_outcome *v, size_t n, int64_t now_s,
                        mc_errdetail *err);
    mc_err (*ct_list)(mc_store *s, const uint8_t *serial, size_t serial_len, mc_store_ct_row_fn fn,
                      void *arg, mc_errdetail *err);
    mc_err (*ct_counts)(mc_store *s, int64_t *pending, int64_t *done, int64_t *rejected,
                        mc_errdetail *err);
    /* replacement and revocation: serial valid, sel checked, reason allowed, out zeroed */
    mc_err (*replaced_by)(mc_store *s, const uint8_t *serial, size_t serial_len, uint8_t *out,
                          size_t *out_len, mc_errdetail *err);
    mc_err (*revoke)(mc_store *s, const mc_store_sel *sel, int reason, int64_t revoked_at,
                     int dry_run, mc_revoke_counts *out, mc_errdetail *err);
    /* sel checked; fn may be NULL (count only); *rows set */
    mc_err (*query)(mc_store *s, const mc_store_sel *sel, mc_store_row_fn fn, void *arg,
                    int64_t *rows, mc_errdetail *err);
    mc_err (*cert_status)(mc_store *s, const uint8_t *serial, size_t serial_len, char *status,
                          size_t cap, int64_t *revoked_at, int *reason, mc_errdetail *err);
    /* WAL checkpoints (mc_store_checkpoint_elsewhere): NULL when the backend has none */
    mc_err (*checkpoint_elsewhere)(mc_store *s, long hard_pages, mc_errdetail *err);
    long (*wal_pages)(const mc_store *s);
    mc_err (*checkpoint)(mc_store *s, mc_errdetail *err);
    mc_err (*durability)(mc_store *s, char *buf, size_t cap, int *durable, mc_errdetail *err);
    mc_err (*crl_begin)(mc_store *s, int64_t this_update, int64_t next_update,
                        mc_store_revoked_fn fn, void *arg, uint64_t *number, mc_errdetail *err);
    mc_err (*crl_published)(mc_store *s, uint64_t first, uint64_t last, int64_t at,
                            mc_errdetail *err);
    mc_err (*crl_latest)(mc_store *s, uint64_t *number, int64_t *this_update, int64_t *next_update,
                         mc_errdetail *err);
    /* OCSP: serial valid, *out zeroed */
    mc_err (*serial_status)(mc_store *s, const uint8_t *serial, size_t serial_len,
                            mc_serial_status *out, mc_errdetail *err);
    mc_err (*crl_shards_begin)(mc_store *s, int64_t this_update, int64_t next_update,
                               mc_store_shard_revoked_fn fn, mc_store_crl_plan_fn plan, void *arg,
                               mc_errdetail *err);
    mc_err (*crl_shards_latest)(mc_store *s, int64_t *shards, int64_t *oldest_this_update,
                                int64_t *earliest_next_update, mc_errdetail *err);
    /* audit log: n > 0 and every event checked; list: fn non-NULL */
    mc_err (*audit_append)(mc_store *s, const mc_audit_event *v, size_t n, mc_errdetail *err);
    mc_err (*audit_list)(mc_store *s, int64_t after_id, int64_t since, const char *event,
                         mc_store_audit_fn fn, void *arg, mc_errdetail *err);
    void (*close)(mc_store *s);
} mc_store_ops;

struct mc_store {
    const mc_store_ops *ops;
};

/* The PostgreSQL backend's open (engine/store_pg.c); uri as for mc_store_open. */
mc_err mc_store_pg_open(const char *uri, mc_store **out, mc_errdetail *err);

/* Shared by the backends. A malloc'd copy of the n bytes at p (caller frees) into *out, n into
 * *len (len may be NULL); NULL and 0 when p is NULL or n is 0; nothing when out is NULL.
 * MC_ERR_NOMEM leaves *out NULL. */
mc_err mc_store_bytes_dup(const void *p, size_t n, uint8_t **out, size_t *len);
/* MC_OK when the store's schema version cur is one this engine knows (<= MC_STORE_SCHEMA_VERSION):
 * an older engine must not write into a newer schema; MC_ERR_STORE naming both otherwise. */
mc_err mc_store_schema_check(int cur, mc_errdetail *err);
/* Fills j (zeroed first) from the columns of one claimed CT outbox row; the chain is copied
 * (malloc'd, freed with the array by mc_store_ct_jobs_free). MC_ERR_STORE naming the lengths
 * for a malformed row (no serial or one over MC_SERIAL_MAX, a log id not MC_CT_LOG_ID_LEN, no
 * chain), MC_ERR_NOMEM; j->chain stays NULL on error. */
mc_err mc_store_ct_job_fill(mc_ct_job *j, const void *serial, size_t serial_len, const void *log_id,
                            size_t log_id_len, int precert, const void *chain, size_t chain_len,
                            int attempts, mc_errdetail *err);

/* The audit record of a schema upgrade from version from (store.migrate, written by each
 * backend's migration in its transaction): this process's actor and the detail JSON. */
void mc_store_migration_event(int from, char *actor, size_t acap, char *detail, size_t dcap);

/* Lower-case hex of a serial for messages into out (2 * MC_SERIAL_MAX + 1 bytes; longer input
 * is cut). Returns out. */
const char *mc_store_serial_hex(char *out, const uint8_t *p, size_t n);

#endif
