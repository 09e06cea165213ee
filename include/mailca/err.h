/*
 * mc_err: error codes and the error detail every fallible mailca function fills.
 *
 * Functions return an mc_err (MC_OK == 0) and, when given a non-NULL mc_errdetail, say which field
 * was wrong, which rule it broke (e.g. "SBR 7.1.2.3(e)") and a readable message. The detail is a
 * fixed-size value type so that hot paths can fill it without allocating.
 */
#ifndef MAILCA_ERR_H
#define MAILCA_ERR_H

#include <stddef.h>

typedef enum mc_err {
    MC_OK = 0,
    MC_ERR_NOMEM,       /* allocation failed or an arena is full */
    MC_ERR_IO,          /* file or socket I/O failed */
    MC_ERR_INVALID,     /* bad input: a field is malformed, missing, unknown or out of bounds */
    MC_ERR_UNSUPPORTED, /* well-formed but not supported (key type, profile feature) */
    MC_ERR_CSR,         /* CSR malformed or its signature does not verify */
    MC_ERR_LINT,        /* the certificate failed an error-severity lint */
    MC_ERR_PROFILE,     /* a profile file is invalid or would produce non-compliant output */
    MC_ERR_CONFIG,      /* configuration is missing or invalid */
    MC_ERR_CRYPTO,      /* an OpenSSL operation failed */
    MC_ERR_HSM,         /* PKCS#11: transient failure, retry elsewhere */
    MC_ERR_HSM_SESSION, /* PKCS#11: the session is dead, reopen it */
    MC_ERR_HSM_FATAL,   /* PKCS#11: never retry (bad PIN, key missing, module unusable) */
    MC_ERR_STORE,       /* storage failed */
    MC_ERR_DUPLICATE,   /* the order id is already known */
    MC_ERR_ZMQ,         /* a ZeroMQ call failed */
    MC_ERR_CAA,         /* CAA forbids issuance for a mailbox domain (SBR 4.2.2.1) */
    MC_ERR_DNS,         /* a DNS lookup failed or timed out: retry later (fail closed) */
    MC_ERR_INTERNAL,    /* a bug: an invariant did not hold (keep last: ranges end here) */
} mc_err;

#define MC_ERR_FIELD_MAX 64
#define MC_ERR_RULE_MAX 48
#define MC_ERR_MSG_MAX 256

typedef struct mc_errdetail {
    mc_err code;
    char field[MC_ERR_FIELD_MAX]; /* e.g. "mailboxes[2]"; "" when not about one field */
    char rule[MC_ERR_RULE_MAX];   /* e.g. "SBR 7.1.2.3(e)" or a lint id; "" when none */
    char message[MC_ERR_MSG_MAX]; /* human readable, names the offending value or limit */
} mc_errdetail;

/* Fills *d (when d is not NULL) and returns code, so callers write `return mc_err_set(...)`.
 * field and rule may be NULL. Values are truncated to their buffers. */
mc_err mc_err_set(mc_errdetail *d, mc_err code, const char *field, const char *rule,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Resets *d to MC_OK with empty strings. */
void mc_err_clear(mc_errdetail *d);

/* Stable lower-case name of a code, used in results ("invalid", "csr", "lint", ...). */
const char *mc_err_name(mc_err code);

/* Writes "name: field: message [rule]" into buf (always NUL-terminated). Returns buf. */
const char *mc_err_format(const mc_errdetail *d, char *buf, size_t len);

/* Writes the field path "<a>.<b>" (just "<a>" when b is NULL) into buf, truncated to its cap,
 * and returns buf. Order decoding builds a path for each field it reads, so this is a copy,
 * not snprintf (which was 3% of a certificate's instructions). */
const char *mc_err_field(char *buf, size_t cap, const char *a, const char *b);

/* Writes "<name>[<i>]" into buf, truncated to its cap, and returns buf. */
const char *mc_err_field_index(char *buf, size_t cap, const char *name, size_t i);

/* True for codes whose order may succeed if retried later (HSM and storage faults). */
int mc_err_retryable(mc_err code);

#endif
