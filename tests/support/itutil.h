/*
 * mc_it: helpers for the integration tests (tests/test_it_*.c) that drive the real mailca binary
 * the way users do: a scratch directory under $MAILCA_TEST_TMP, running `mailca ...` through
 * fork/execv with its exit status and output captured, reading the results and orders streams,
 * checking certificates with OpenSSL against the CA that `mailca init` wrote, and looking
 * certificates up in the SQLite store.
 *
 * Usage:
 *   char dir[1024];
 *   mc_it_tmpdir("batch", dir, sizeof dir);
 *   mc_it_run r;
 *   mc_it_mailca(&r, "init", "--dir", dir, NULL);        // r.status 0, r.err holds stderr
 *   mc_it_run_free(&r);
 *   mc_it_results res;
 *   mc_it_results_load(path, &res);                      // res.r[0..res.n-1]
 *   mc_it_results_free(&res);
 *   mc_it_rmtree(dir);
 *
 * Test code only: helpers allocate freely and report failures by return value (with a line on
 * stderr saying why), so that the cmocka test asserts on them.
 */
#ifndef MAILCA_TEST_ITUTIL_H
#define MAILCA_TEST_ITUTIL_H

#include "mailca/result.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* $MAILCA_BIN, or NULL when the variable is missing (the test cannot run). */
const char *mc_it_bin(void);

/* Creates a fresh directory <$MAILCA_TEST_TMP or /tmp>/<prefix>XXXXXX and writes its path into
 * out. Returns 0, or -1. */
int mc_it_tmpdir(const char *prefix, char *out, size_t cap);

/* Removes path and everything under it (symlinks are removed, not followed). 0 or -1. */
int mc_it_rmtree(const char *path);

/* The outcome of one run of the binary. status: the exit code, 128 + signal number when it was
 * killed by a signal, -1 when it could not be run. out and err are NUL-terminated captures of
 * stdout and stderr (never NULL after mc_it_mailca returned); free with mc_it_run_free. */
typedef struct mc_it_run {
    int status;
    int timed_out;
    char *out, *err;
    size_t out_len, err_len;
} mc_it_run;

/* Runs argv[0] (searched in PATH) with stdin from in_path (NULL: /dev/null), LC_ALL=C, in its
 * own process group, capturing stdout and stderr; after timeout_s seconds the whole group is
 * killed (status then reports SIGKILL and timed_out is 1). Returns r->status (127: not found). */
int mc_it_exec(mc_it_run *r, int timeout_s, const char *in_path, const char *const *argv);

/* Runs $MAILCA_BIN with the NULL-terminated argument list, stdin from /dev/null, capturing
 * stdout and stderr, killing it after timeout_s seconds (status then reports SIGKILL and
 * timed_out is 1). Returns r->status. */
int mc_it_mailca_argv(mc_it_run *r, int timeout_s, const char *const *args);

/* The same with the arguments inline and a 300 s timeout: mc_it_mailca(&r, "batch", ..., NULL). */
int mc_it_mailca(mc_it_run *r, ...) __attribute__((sentinel));

void mc_it_run_free(mc_it_run *r);

/* A decoded results stream. Each r[i] owns its order_id (NUL-terminated) and cert copies and
 * points serial, lint_version and warnings into its own store, so the array may be kept after
 * the file is gone. */
typedef struct mc_it_results {
    mc_result *r;
    size_t n;
} mc_it_results;

/* Reads every result map of the file with a msgpack_unpacker and mc_result_decode. Returns 0;
 * -1 when the file cannot be read, a result does not decode, or bytes are left over (an
 * incomplete last result). Free with mc_it_results_free (also after a failure). */
int mc_it_results_load(const char *path, mc_it_results *out);
void mc_it_results_free(mc_it_results *res);

/* The orders of an orders stream as the tests need them: id, first mailbox and CSR. Entries
 * that are not valid orders (mc_order_decode fails) have valid == 0 and NULL strings. */
typedef struct mc_it_order {
    int valid;
    char *id;
    char *mailbox;
    char *usage;
    uint8_t *csr;
    size_t csr_len;
} mc_it_order;

typedef struct mc_it_orders {
    mc_it_order *o;
    size_t n;
} mc_it_orders;

/* Reads an orders stream (every complete msgpack object). Returns 0, or -1 when the file cannot
 * be read or holds a malformed object. Free with mc_it_orders_free. */
int mc_it_orders_load(const char *path, mc_it_orders *out);
void mc_it_orders_free(mc_it_orders *o);

/* Reads every certificate of a PEM file into a new stack (caller frees with
 * sk_X509_pop_free(s, X509_free)). NULL when the file cannot be read or holds none. */
STACK_OF(X509) * mc_it_pem_load(const char *path);

/* The first certificate of a PEM file, or NULL. Caller frees with X509_free. */
X509 *mc_it_pem_first(const char *path);

/* The common start of an integration test: a scratch folder (prefix), `mailca init` in
 * <dir>/ca, the root and issuing certificates loaded, and one P-256 subscriber key with its CSR.
 * Returns 0 on success; the caller frees the X509s, the key (EVP_PKEY_free) and the CSR
 * (free). */
typedef struct mc_it_ca {
    char dir[512];
    char ca[640];
    X509 *root, *ica;
    EVP_PKEY *key;
    uint8_t *csr;
    size_t csr_len;
} mc_it_ca;
int mc_it_ca_setup(const char *prefix, mc_it_ca *out);
/* The CA's repository in mc_it_ca_setup's CA (--base-url). */
#define MC_IT_BASE_URL "http://pki.mailca.example.com"
/* Frees what mc_it_ca_setup made and removes its folder (kept when $MAILCA_KEEP_TMP is set).
 * Returns 0, or -1 when the folder could not be removed. */
int mc_it_ca_free(mc_it_ca *ca);

/* Verifies a DER certificate against root (trusted) and the issuing CA (untrusted
 * intermediate) with X509_STORE_CTX for an X509_PURPOSE_* (X509_PURPOSE_ANY: the chain only).
 * Returns 1 when it verifies, 0 when not (*why, if not NULL, gets OpenSSL's reason), -1 when
 * the DER does not parse or OpenSSL failed. */
int mc_it_verify(X509 *root, X509 *ica, const uint8_t *der, size_t len, int purpose,
                 const char **why);

/* The same chain check of leaf with crl (of the issuing CA) in the store and
 * X509_V_FLAG_CRL_CHECK: 1 when it verifies, 0 when not (*error gets OpenSSL's X509_V_ERR_
 * code: a revoked leaf, a CRL of another scope), -1 when OpenSSL failed. */
int mc_it_verify_crl(X509 *root, X509 *ica, X509_CRL *crl, X509 *leaf, int *error);

/* Opens the SQLite store read-only. NULL on failure. Close with sqlite3_close. */
sqlite3 *mc_it_db_open(const char *path);

/* SELECT der FROM certificates WHERE serial = ?. Returns 1 and a malloc'd copy in *der (caller
 * frees) when found, 0 when not, -1 on an SQLite error. */
int mc_it_db_cert(sqlite3 *db, const uint8_t *serial, size_t serial_len, uint8_t **der,
                  size_t *der_len);

/* SELECT count(*) FROM <table> (table is a fixed name from the test). -1 on error. */
long long mc_it_db_count(sqlite3 *db, const char *table);

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience; *len excludes the
 * NUL). NULL on failure. */
uint8_t *mc_it_read_file(const char *path, size_t *len);

/* Copies the config file in to out (beside it: relative paths stay valid) with
 * hsm.sign_timeout_ms set to ms: its line replaced, or added after hsm.module. 0 on success. */
int mc_it_config_with_deadline(const char *in, const char *out, int ms);

/* Copies the config file in to out (beside it: relative paths stay valid) with the first line
 * of key ("  key: ...") replaced by "  key: value" (value written as given, quotes included).
 * key is "name" (any section) or "section.name" (only within "section:"). 0, or -1 when in has
 * no such line or a file cannot be read or written. */
int mc_it_config_set(const char *in, const char *out, const char *key, const char *value);

/* Writes len bytes to path (created or truncated). 0 or -1. */
int mc_it_write_file(const char *path, const void *data, size_t len);

/* Replaces path with text through a new file renamed over it (a new inode: a reader that
 * watches stat(), as the fault module does its control file, always notices). 0 or -1. */
int mc_it_replace_file(const char *path, const char *text);

/* n, divided by $MAILCA_TEST_SCALE when it is above 1 (the ASan build runs a tenth of the
 * work), but never below floor. */
int mc_it_scaled(int n, int floor);

/* Appends cert as PEM to path (created when missing). 0 or -1. */
int mc_it_append_pem(const char *path, const uint8_t *der, size_t len);

#endif
