/*
 * mc_query: `mailca query`, the incident inventory (engine/query.c): which certificates were
 * issued under a profile, a lint set, an engine version, a validation method, in a time
 * window...; streamed one per line as JSON Lines or CSV, or counted. The selector options are
 * shared with `mailca revoke` (mc_query_sel_*), so an incident's query and its revocation name
 * the same certificates with the same flags. The store does the selection (mc_store_query,
 * store.h "selection").
 */
#ifndef MAILCA_QUERY_H
#define MAILCA_QUERY_H

#include "mailca/err.h"
#include "mailca/store.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

/* --- selector options (query and revoke) ---------------------------------------------------- */

/* The selector options as getopt_long entries (terminated by a zero entry); their codes are
 * MC_QUERY_OPT_BASE and up, clear of any single-character option. */
#define MC_QUERY_OPT_BASE 0x100
extern const struct option mc_query_sel_options[];

/* Usage lines describing the selector options (static text). */
extern const char mc_query_sel_usage[];

/* A selector being built from the command line; the buffers hold the parsed bytes the
 * selector points into, so it lives as long as this value. */
typedef struct mc_query_selopts {
    mc_store_sel sel;
    uint8_t serial[MC_SERIAL_MAX];
    uint8_t key[32];
    uint8_t profile_hash[32];
    unsigned seen; /* bit i: option mc_query_sel_options[i] was given */
} mc_query_selopts;

/* Zeroes o. */
void mc_query_selopts_init(mc_query_selopts *o);

/* Takes option code ch (a getopt_long answer) with value val, now being the current time (for
 * "now"). Returns 1 when ch is a selector option and was taken, 0 when it is not one, -1 on a
 * bad value or a repeated option (err names the option, e.g. field "--method", and the rule). */
int mc_query_sel_option(mc_query_selopts *o, int ch, const char *val, int64_t now,
                        mc_errdetail *err);

/* After all options: checks what depends on several (issued-after < issued-before) and the
 * selector as the store will (mc_store_sel_check). *criteria gets how many were given. */
mc_err mc_query_sel_finish(mc_query_selopts *o, int *criteria, mc_errdetail *err);

/* --- output --------------------------------------------------------------------------------- */

typedef enum mc_query_field {
    MC_QF_SERIAL = 0,
    MC_QF_ORDER_ID,
    MC_QF_ACCOUNT,
    MC_QF_PROFILE,
    MC_QF_PROFILE_HASH,
    MC_QF_LINT_VERSION,
    MC_QF_LINT_ENFORCED,
    MC_QF_LINT_WARNINGS,
    MC_QF_ENGINE_VERSION,
    MC_QF_NOT_BEFORE,
    MC_QF_NOT_AFTER,
    MC_QF_STATUS,
    MC_QF_REVOKED_AT,
    MC_QF_REASON,
    MC_QF_MAILBOXES,
    MC_QF_EVIDENCE,
    MC_QF_COUNT_
} mc_query_field;

typedef enum mc_query_format {
    MC_QUERY_JSONL = 0, /* one JSON object per line (RFC 8259; JSON Lines) */
    MC_QUERY_CSV,       /* RFC 4180: a header line, CRLF line ends, quoted where needed */
} mc_query_format;

typedef struct mc_query_fields {
    mc_query_field f[MC_QF_COUNT_];
    size_t n;
} mc_query_fields;

/* The field's name as --fields, the JSON keys and the CSV header spell it (static string). */
const char *mc_query_field_name(mc_query_field f);

/* list NULL: every field, in the order of mc_query_field. Else a comma-separated list of field
 * names, each at most once: MC_ERR_INVALID naming "--fields" otherwise. */
mc_err mc_query_fields_parse(const char *list, mc_query_fields *out, mc_errdetail *err);

/* The CSV header line (nothing for JSON Lines). */
void mc_query_write_header(FILE *f, mc_query_format fmt, const mc_query_fields *fields);

/* One row. JSON: strings escaped per RFC 8259 7 (quote, backslash and every control character;
 * bytes that are not UTF-8 become U+FFFD, JSON text being UTF-8 by RFC 8259 8.1), times ISO 8601
 * UTC, NULL as null, lint_warnings and mailboxes as arrays, evidence as the string recorded.
 * CSV: a field holding a comma, quote, CR, LF or other control character is quoted, quotes
 * doubled (RFC 4180 2.6, 2.7). MC_ERR_IO when f reports a write error. */
mc_err mc_query_write_row(FILE *f, mc_query_format fmt, const mc_query_fields *fields,
                          const mc_store_row *row, mc_errdetail *err);

/* `mailca query [--config FILE] [selectors] [--count | --format jsonl|csv] [--fields LIST]`;
 * argv[0] is "query". Returns the exit status: 0 when the query ran (also with no rows), 1 on
 * an error (a bad value, the store), 2 on a usage error. */
int mc_query_main(int argc, char **argv);

#endif
