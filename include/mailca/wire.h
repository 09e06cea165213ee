/*
 * mc_wire: the messages that cross the pipeline's ZeroMQ sockets, as msgpack. Threads and
 * (later) processes exchange only these, so the same worker code runs over inproc://, ipc:// or
 * tcp://. One module packs and unpacks each message so both ends agree.
 *
 *   order    intake -> worker     [seq, t0, {order map}]
 *   intents  worker -> collector  [[seq, t0, id, account, profile, profile_hash, serial, tbs,
 *                                   tbs_hash, not_before, not_after, mailboxes, evidence,
 *                                   warnings, lint_version, engine_version, replaces,
 *                                   spki_sha256 (empty: none), lint_enforced ("": lint
 *                                   off)], ...]
 *                                                                            (DEALER -> ROUTER)
 *   verdicts collector -> worker  [[action] | [MC_WIRE_RESUME, serial, tbs], ...]
 *   results  worker|intake -> collector  [[seq, t0, id, status, serial, cert, warnings, code,
 *                                   field, rule, message, profile], ...]
 *   end      intake -> collector  total order count (a bare unsigned integer)
 */
#ifndef MAILCA_WIRE_H
#define MAILCA_WIRE_H

#include "mailca/arena.h"
#include "mailca/err.h"
#include "mailca/result.h"
#include "mailca/store.h"

#include <msgpack.h>
#include <stdint.h>

enum mc_wire_action {
    MC_WIRE_SIGN = 0,   /* intent recorded: sign it */
    MC_WIRE_SKIP = 1,   /* the collector answers this order itself (earlier result) */
    MC_WIRE_RESUME = 2, /* an intent from an earlier run: sign the stored TBS with its serial */
    MC_WIRE_FAIL = 3,   /* storage failed: do not sign, report failed */
    /* the subject key belongs to another account: reject, nothing recorded */
    MC_WIRE_KEY_BOUND = 4,
    /* the subject key is compromised (SBR 6.1.1.3 (4)): reject, nothing recorded */
    MC_WIRE_KEY_COMPROMISED = 5,
};

typedef struct mc_wire_intent {
    uint64_t seq, t0;
    mc_intent in; /* strings NUL-terminated */
} mc_wire_intent;

typedef struct mc_wire_verdict {
    int action;
    const uint8_t *serial; /* MC_WIRE_RESUME */
    size_t serial_len;
    const uint8_t *tbs;
    size_t tbs_len;
} mc_wire_verdict;

typedef struct mc_wire_result {
    uint64_t t0;
    const char *profile; /* issued: the profile's name (CT submission is per profile) */
    mc_result r;         /* strings NUL-terminated when unpacked */
} mc_wire_result;

void mc_wire_pack_intent(msgpack_packer *pk, const mc_wire_intent *w);
void mc_wire_pack_verdict(msgpack_packer *pk, const mc_wire_verdict *v);
void mc_wire_pack_result(msgpack_packer *pk, const mc_wire_result *w);

/* Unpack one element of the arrays above. Strings are copied NUL-terminated into a; byte
 * strings point into obj's memory. */
mc_err mc_wire_unpack_intent(const msgpack_object *o, mc_arena *a, mc_wire_intent *w);
mc_err mc_wire_unpack_verdict(const msgpack_object *o, mc_wire_verdict *v);
mc_err mc_wire_unpack_result(const msgpack_object *o, mc_arena *a, mc_wire_result *w);

/* A msgpack write callback for a FILE* (data). Unlike msgpack_fbuffer_write, a zero-length
 * write (an empty string's body) succeeds. */
int mc_wire_file_write(void *data, const char *buf, size_t len);

/* Small helpers shared by pipeline code. */
void mc_wire_pack_str(msgpack_packer *pk, const char *s, size_t len);
void mc_wire_pack_cstr(msgpack_packer *pk, const char *s); /* NULL packs "" */
void mc_wire_pack_bin(msgpack_packer *pk, const void *p, size_t len);

#endif
