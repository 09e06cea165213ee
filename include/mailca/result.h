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

typedef struct mc_result {
    const char *order_id; /* may be "" when the order's id could not be read */
    size_t order_id_len;
    uint64_t seq;         /* position of the order in the input stream (0-based) */
    mc_status status;
    const uint8_t *serial; /* issued */
    size_t serial_len;
    const uint8_t *cert; /* issued: Certificate DER */
    size_t cert_len;
    const char *lint_version; /* issued: lint set applied */
    const char *warnings;     /* issued: warning lint ids, comma separated, may be NULL */
    mc_errdetail error;       /* rejected/failed */
} mc_result;

const char *mc_status_name(mc_status s);

/* Packs r as one msgpack map. */
mc_err mc_result_pack(msgpack_packer *pk, const mc_result *r);

/* Decodes a result map (tests, tools). Pointers refer into obj. */
mc_err mc_result_decode(const msgpack_object *obj, mc_result *r, mc_errdetail *err);

#endif
