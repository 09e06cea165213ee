/*
 * mc_result: what every order yields, exactly once: issued (certificate DER, serial), rejected
 * (code, field, rule, message) or failed (an internal fault, retryable). Encoded as a msgpack
 * map in the results stream (docs/orders.md describes it).
 */
#ifndef MAILCA_RESULT_H
#define MAILCA_RESULT_H

#include "mailca/err.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mc_status {
    MC_STATUS_ISSUED = 1,
    MC_STATUS_REJECTED,
    MC_STATUS_FAILED,
} mc_status;

/* Limits that mc_result_pack enforces, so that every packed result can be decoded again. */
#define MC_RESULT_SERIAL_MAX 20       /* octets, RFC 5280 4.1.2.2 */
#define MC_RESULT_LINT_VERSION_MAX 64 /* bytes including the NUL */
#define MC_RESULT_WARNINGS_MAX 4096   /* bytes including the NUL: MC_LINT_WARNING_IDS_MAX */

/* Storage used only by mc_result_decode: the decoded serial and NUL-terminated copies of
 * lint_version and warnings. A decoded result's pointers refer to it, so copy such a result by
 * value only if you re-point serial, lint_version and warnings. */
typedef struct mc_result_store {
    uint8_t serial[MC_RESULT_SERIAL_MAX];
    char lint_version[MC_RESULT_LINT_VERSION_MAX];
    char warnings[MC_RESULT_WARNINGS_MAX];
} mc_result_store;

typedef struct mc_result {
    const char *order_id; /* may be "" when the order's id could not be read */
    size_t order_id_len;
    uint64_t seq; /* position of the order in the input stream (0-based) */
    mc_status status;
    const uint8_t *serial; /* issued */
    size_t serial_len;
    const uint8_t *cert; /* issued: Certificate DER */
    size_t cert_len;
    const char *lint_version; /* issued: lint set applied */
    const char *warnings;     /* issued: warning lint ids, comma separated, may be NULL */
    mc_errdetail error;       /* rejected/failed: code must not be MC_OK */
    mc_result_store store;    /* mc_result_decode's storage; producers leave it alone */
} mc_result;

/* "issued", "rejected", "failed" ("unknown" otherwise). */
const char *mc_status_name(mc_status s);

/* Packs r as one msgpack map (docs/orders.md, "Results"). Nothing is written unless r is
 * complete: MC_ERR_INTERNAL for an issued result without serial (1..20 octets), certificate or
 * lint_version, or with a lint_version/warnings longer than the limits above, and for a
 * rejected/failed result whose error code is MC_OK; MC_ERR_IO when the packer's writer fails. */
mc_err mc_result_pack(msgpack_packer *pk, const mc_result *r);

/* Decodes a result map (tests, tools) as strictly as orders: unknown, duplicate or missing keys
 * are errors. order_id and cert point into obj; serial, lint_version and warnings into r->store;
 * error is copied. */
mc_err mc_result_decode(const msgpack_object *obj, mc_result *r, mc_errdetail *err);

#endif
