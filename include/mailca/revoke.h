/*
 * mc_revoke: the `mailca revoke` command (engine/revoke.c) over mc_store_revoke (store.h
 * "revocation"): selects certificates with the selector options of `mailca query` (query.h;
 * every criterion given must hold), revokes them with an RFC 5280 CRLReason name and prints
 * the counts.
 */
#ifndef MAILCA_REVOKE_H
#define MAILCA_REVOKE_H

#include "mailca/err.h"

#include <stdint.h>

/* RFC 5280 5.3.1 reason name (case-insensitive: "keyCompromise", "superseded", ...) to its code.
 * Names of reasons mc_crl_reason_allowed refuses are MC_ERR_INVALID naming SBR 7.2.2 / 4.9.13;
 * unknown names too. */
mc_err mc_revoke_reason_parse(const char *name, int *reason, mc_errdetail *err);

/* The RFC 5280 name of a reason code ("?" when unknown; static string). */
const char *mc_revoke_reason_name(int reason);

/* A time given as seconds since the epoch, "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC).
 * MC_ERR_INVALID naming field otherwise. */
mc_err mc_revoke_time_parse(const char *text, const char *field, int64_t *out, mc_errdetail *err);

/* `mailca revoke [--config F] selectors... --reason NAME [--dry-run]` (selectors: query.h
 * mc_query_sel_options, at least one). argv[0] is "revoke". Returns the exit status (0 done,
 * 1 failed, 2 usage). */
int mc_revoke_main(int argc, char **argv);

#endif
