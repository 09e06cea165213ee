/*
 * mc_store: durable storage of intents and certificates (SQLite in WAL mode, the embedded
 * default). One mc_store per thread (a SQLite connection is not shared between threads).
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

typedef struct mc_intent {
    const char *order_id;
    const char *account;
    const char *profile;       /* profile name */
    const uint8_t *profile_hash; /* 32 bytes, SHA-256 of the profile file */
    const char *lint_version;  /* lint set version applied */
    const char *engine_version;
    const uint8_t *serial;
    size_t serial_len;
    const uint8_t *tbs;        /* the exact TBSCertificate DER to be signed */
    size_t tbs_len;
    const uint8_t *tbs_hash;   /* 32 bytes SHA-256 of tbs */
    int64_t not_before, not_after;
    const char *mailboxes;     /* comma-separated */
    const char *evidence;      /* validation evidence as text (JSON) */
    const char *lint_warnings; /* warning lint ids, comma-separated, may be "" */
    const char *replaces;      /* hex serial or NULL */
} mc_intent;

/* What an intent commit found per entry. */
typedef enum mc_intent_state {
    MC_INTENT_NEW = 0,     /* recorded now: go ahead and sign */
    MC_INTENT_ISSUED,      /* the order id already has a certificate: return it, do not sign */
    MC_INTENT_PENDING,     /* the order id has an intent but no certificate (earlier crash or in
                              flight): re-sign the stored TBS, same serial */
} mc_intent_state;

typedef struct mc_stored_cert {
    const char *order_id;
    const uint8_t *serial;
    size_t serial_len;
    const uint8_t *der; /* Certificate DER */
    size_t der_len;
} mc_stored_cert;

/* Opens (creating and migrating the schema as needed) the database at path, WAL mode,
 * synchronous=NORMAL... Caller frees with mc_store_close. */
mc_err mc_store_open(const char *path, mc_store **out, mc_errdetail *err);
void mc_store_close(mc_store *s);

/* Records n intents in one transaction. state[i] says what was found for each order id (for an
 * existing order id nothing is written). */
mc_err mc_store_intents_commit(mc_store *s, const mc_intent *v, size_t n, mc_intent_state *state,
                               mc_errdetail *err);

/* Records n certificates in one transaction (each must match a recorded intent by order id and
 * serial, else MC_ERR_STORE and nothing is written). */
mc_err mc_store_certs_commit(mc_store *s, const mc_stored_cert *v, size_t n, mc_errdetail *err);

/* Looks up an order id. Returns MC_OK and fills what it has (the buffers are malloc'd, the caller
 * frees them; *der NULL when only an intent exists), MC_ERR_INVALID-free "not found" is reported
 * as *found = 0. */
mc_err mc_store_lookup(mc_store *s, const char *order_id, int *found, uint8_t **serial,
                       size_t *serial_len, uint8_t **tbs, size_t *tbs_len, uint8_t **der,
                       size_t *der_len, mc_errdetail *err);

/* Counts: certificates stored, intents without a certificate. */
mc_err mc_store_counts(mc_store *s, int64_t *certs, int64_t *pending, mc_errdetail *err);

/* Calls fn for each intent that has no certificate (reconciliation at start). */
typedef void (*mc_store_pending_fn)(void *arg, const char *order_id, const uint8_t *serial,
                                    size_t serial_len, const uint8_t *tbs, size_t tbs_len);
mc_err mc_store_pending(mc_store *s, mc_store_pending_fn fn, void *arg, mc_errdetail *err);

#endif
