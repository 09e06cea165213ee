/*
 * mc_audit: the events SBR 5.4.1 makes a CA record, written to the store's append-only audit
 * log (store.h "audit log"), and `mailca audit`, which reads them back.
 *
 * Recorded:
 *   run.start      a batch began: engine version, lint set and the set enforced, the profiles
 *                  loaded with their hashes (SBR 5.4.1 1.vii: a profile hash never seen before is
 *                  a profile introduced), workers, processes
 *   run.end        the counts of issued, rejected and failed orders
 *   order.rejected an order refused (SBR 5.4.1 2.iii "rejection of Certificate Requests"): its id
 *                  (the subject), account, code, field, rule and message
 *   order.failed   an order that could not be processed (an anomaly, SBR 5.4.1 3.v), same fields
 *   revoke.start   a revocation about to run (2.i): the selection and the reason (nothing is
 *                  revoked unless this is recorded)
 *   revoke         the revocation done: what changed (also when it stopped part way)
 *   crl.published  a CRL made and published (2.v): number, entries, times
 *   store.migrate  the schema upgraded (3.iv: an update of the Certificate System)
 *   ca.init        the CA keys generated in the token and the CA certificates made (1.i)
 *   ocsp.start     an OCSP responder began signing responses (2.vi), and ocsp.stop with how
 *                  many it answered: per serving period, not per response
 * Approvals are the certificates themselves (intents and certificates hold who, what, when and
 * from which evidence).
 *
 * Who: the operating-system user running the command ("user NAME (uid N)"), and the user who ran
 * sudo when that is how it ran: the person making the record, when applicable (SBR 5.4.1).
 */
#ifndef MAILCA_AUDIT_H
#define MAILCA_AUDIT_H

#include "mailca/err.h"
#include "mailca/store.h"

#include <stddef.h>
#include <stdint.h>

#define MC_AUDIT_ACTOR_MAX 160

/* The actor of this process into buf ("user root (uid 0)", "... via sudo from alice"). */
const char *mc_audit_actor(char *buf, size_t cap);

/* A growing JSON object, for event details: begin, add members, end. Strings are escaped
 * (quotes, backslash, control characters; other bytes as given). oom is set when an allocation
 * failed; the text is then incomplete and mc_audit_json_end returns NULL. */
typedef struct mc_audit_json {
    char *p;
    size_t len, cap;
    int oom, members;
} mc_audit_json;

void mc_audit_json_begin(mc_audit_json *j);
void mc_audit_json_str(mc_audit_json *j, const char *key, const char *val); /* NULL: null */
void mc_audit_json_strn(mc_audit_json *j, const char *key, const char *val, size_t len);
void mc_audit_json_int(mc_audit_json *j, const char *key, int64_t val);
/* A member whose value is already JSON text (an array or object built by the caller). */
void mc_audit_json_raw(mc_audit_json *j, const char *key, const char *json);
/* Closes the object and returns its text (owned by j), or NULL after an allocation failure. */
const char *mc_audit_json_end(mc_audit_json *j);
void mc_audit_json_free(mc_audit_json *j);

/* Records one event now, by this process's actor: event and subject as in store.h, detail a
 * JSON object or NULL. */
mc_err mc_audit_record(mc_store *s, const char *event, const char *subject, const char *detail,
                       mc_errdetail *err);

/* `mailca audit [--config FILE] [--since T] [--event NAME] [--after-id N]`: the events as JSON
 * lines, oldest first. */
int mc_audit_main(int argc, char **argv);

#endif
