/*
 * mc_revoke: `mailca revoke` (include/mailca/revoke.h). The store does the work
 * (mc_store_revoke: one selection, then set-based chunks); this module parses the command line,
 * names reasons and prints what changed.
 */
#include "mailca/revoke.h"

#include "mailca/config.h"
#include "mailca/lint.h"
#include "mailca/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const struct {
    const char *name;
    int code;
} reasons[] = {
    /* RFC 5280 5.3.1 CRLReason */
    {"unspecified", 0},        {"keyCompromise", 1}, {"cACompromise", 2},
    {"affiliationChanged", 3}, {"superseded", 4},    {"cessationOfOperation", 5},
    {"certificateHold", 6},    {"removeFromCRL", 8}, {"privilegeWithdrawn", 9},
    {"aACompromise", 10},
};

const char *mc_revoke_reason_name(int reason)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == reason)
            return reasons[i].name;
    return "?";
}

mc_err mc_revoke_reason_parse(const char *name, int *reason, mc_errdetail *err)
{
    for (size_t i = 0; name && i < sizeof reasons / sizeof reasons[0]; i++) {
        if (strcasecmp(name, reasons[i].name) != 0)
            continue;
        /* SBR 7.2.2 and 4.9.13: see store.h "revocation" for why these are refused */
        if (!mc_crl_reason_allowed(reasons[i].code))
            return mc_err_set(err, MC_ERR_INVALID, "reason",
                              reasons[i].code == 6 ? "SBR 4.9.13" : "SBR 7.2.2",
                              "reason '%s' (%d) is not used for subscriber certificates here "
                              "(unspecified, keyCompromise, affiliationChanged, superseded, "
                              "cessationOfOperation, privilegeWithdrawn)",
                              name, reasons[i].code);
        *reason = reasons[i].code;
        return MC_OK;
    }
    return mc_err_set(err, MC_ERR_INVALID, "reason", "RFC 5280 5.3.1",
                      "reason '%s' is not an RFC 5280 CRLReason name", name ? name : "");
}

mc_err mc_revoke_time_parse(const char *text, const char *field, int64_t *out, mc_errdetail *err)
{
    struct tm tm;
    char *end = NULL;
    memset(&tm, 0, sizeof tm);
    if (text && text[0] >= '0' && text[0] <= '9') {
        long long v = strtoll(text, &end, 10);
        if (end && *end == '\0') {
            *out = v;
            return MC_OK;
        }
        end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end) {
            memset(&tm, 0, sizeof tm);
            end = strptime(text, "%Y-%m-%d", &tm);
        }
        if (end && *end == '\0') {
            *out = (int64_t)timegm(&tm);
            return MC_OK;
        }
    }
    return mc_err_set(err, MC_ERR_INVALID, field, NULL,
                      "'%s' is not a time (seconds since the epoch, YYYY-MM-DD or "
                      "YYYY-MM-DDTHH:MM:SSZ)",
                      text ? text : "");
}

/* 64 hex digits into 32 bytes. */
static int hex32(const char *hex, uint8_t *out)
{
    char half[33];
    size_t l1 = 0, l2 = 0;
    memcpy(half, hex, 32);
    half[32] = '\0';
    return mc_store_serial_parse(half, out, &l1) &&
           mc_store_serial_parse(hex + 32, out + 16, &l2) && l1 == 16 && l2 == 16;
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: mailca revoke [--config FILE] (--serial HEX | --account A | --key-sha256 HEX |\n"
        "                     --profile P --issued-after T --issued-before T |\n"
        "                     --lint-version V | --lint-warning ID) --reason NAME [--dry-run]\n"
        "  NAME: unspecified keyCompromise affiliationChanged superseded\n"
        "        cessationOfOperation privilegeWithdrawn (RFC 5280; SBR 4.9.1.1, 7.2.2)\n"
        "  T: seconds since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (notBefore in\n"
        "     [after, before))\n"
        "  V: the lint set of the build that issued (lint_version); ID: a lint id among the\n"
        "     certificate's recorded warnings (an error lint lint.enforced_set did not enforce\n"
        "     yet is recorded there)\n");
    return 2;
}

static int fail(const mc_errdetail *e)
{
    char buf[600];
    fprintf(stderr, "mailca revoke: %s\n", mc_err_format(e, buf, sizeof buf));
    return 1;
}

int mc_revoke_main(int argc, char **argv)
{
    static const struct option lo[] = {{"config", 1, 0, 'c'},
                                       {"serial", 1, 0, 's'},
                                       {"account", 1, 0, 'a'},
                                       {"key-sha256", 1, 0, 'k'},
                                       {"profile", 1, 0, 'p'},
                                       {"issued-after", 1, 0, 'A'},
                                       {"issued-before", 1, 0, 'B'},
                                       {"lint-version", 1, 0, 'l'},
                                       {"reason", 1, 0, 'r'},
                                       {"dry-run", 0, 0, 'n'},
                                       {"help", 0, 0, 'h'},
                                       {"lint-warning", 1, 0, 'w'},
                                       {0, 0, 0, 0}};
    const char *cfgp = NULL, *reason_name = NULL, *after = NULL, *before = NULL;
    uint8_t serial[MC_SERIAL_MAX], key[32];
    size_t len = 0;
    int dry = 0, kinds = 0, ch, reason = 0;
    mc_revoke_sel sel;
    mc_errdetail e;
    memset(&sel, 0, sizeof sel);
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            cfgp = optarg;
            break;
        case 's':
            if (!mc_store_serial_parse(optarg, serial, &len)) {
                fprintf(stderr, "mailca revoke: --serial '%s': not a hex serial of 1..%d bytes\n",
                        optarg, MC_SERIAL_MAX);
                return 2;
            }
            sel = (mc_revoke_sel){.by = MC_REVOKE_SERIAL, .serial = serial, .serial_len = len};
            kinds++;
            break;
        case 'a':
            sel = (mc_revoke_sel){.by = MC_REVOKE_ACCOUNT, .account = optarg};
            kinds++;
            break;
        case 'k':
            /* 32 bytes: two halves through the serial parser (which takes up to 20) */
            if (strlen(optarg) != 64 || !hex32(optarg, key)) {
                fprintf(stderr, "mailca revoke: --key-sha256 '%s': not 64 hex digits\n", optarg);
                return 2;
            }
            sel = (mc_revoke_sel){.by = MC_REVOKE_KEY, .spki_sha256 = key};
            kinds++;
            break;
        case 'p':
            sel = (mc_revoke_sel){.by = MC_REVOKE_PROFILE, .profile = optarg};
            kinds++;
            break;
        case 'A':
            after = optarg;
            break;
        case 'B':
            before = optarg;
            break;
        case 'l':
            sel = (mc_revoke_sel){.by = MC_REVOKE_LINT, .lint_version = optarg};
            kinds++;
            break;
        case 'w':
            sel = (mc_revoke_sel){.by = MC_REVOKE_LINT_WARNING, .lint_id = optarg};
            kinds++;
            break;
        case 'r':
            reason_name = optarg;
            break;
        case 'n':
            dry = 1;
            break;
        case 'h':
            usage();
            return 0;
        default:
            return usage();
        }
    }
    if (optind != argc || kinds != 1 || !reason_name ||
        (sel.by == MC_REVOKE_PROFILE) != (after && before) ||
        (sel.by != MC_REVOKE_PROFILE && (after || before)))
        return usage();
    if (mc_revoke_reason_parse(reason_name, &reason, &e) != MC_OK)
        return fail(&e);
    /* a misspelt lint id would select nothing and look like an answer: only ids this build
     * knows (mailca lint --list) */
    if (sel.by == MC_REVOKE_LINT_WARNING) {
        size_t nd = 0;
        const mc_lint_def *defs = mc_lint_defs(&nd);
        int known = 0;
        for (size_t i = 0; i < nd && !known; i++)
            known = strcmp(defs[i].id, sel.lint_id) == 0;
        if (!known) {
            mc_err_set(&e, MC_ERR_INVALID, "lint-warning", NULL,
                       "'%s' is not a lint id of this build", sel.lint_id);
            return fail(&e);
        }
    }
    /* a misspelt set would select nothing and look like an answer: only a set version (as
     * `mailca version` prints it) or what lint-disabled runs record */
    if (sel.by == MC_REVOKE_LINT && strcmp(sel.lint_version, "lint-disabled") != 0 &&
        mc_lint_set_check(sel.lint_version, "lint-version", &e) != MC_OK)
        return fail(&e);
    if (sel.by == MC_REVOKE_PROFILE &&
        (mc_revoke_time_parse(after, "issued-after", &sel.issued_after, &e) != MC_OK ||
         mc_revoke_time_parse(before, "issued-before", &sel.issued_before, &e) != MC_OK))
        return fail(&e);
    mc_config cfg;
    mc_store *s = NULL;
    mc_revoke_counts c;
    if (mc_config_load(mc_config_path(cfgp), &cfg, &e) != MC_OK)
        return fail(&e);
    mc_err rc = mc_store_open(cfg.store_sqlite, &s, &e);
    if (rc == MC_OK)
        rc = mc_store_revoke(s, &sel, reason, (int64_t)time(NULL), dry, &c, &e);
    mc_store_close(s);
    if (rc != MC_OK)
        return fail(&e);
    printf("mailca revoke: %s%lld selected, %lld %s (%s), %lld %s to keyCompromise, %lld "
           "already revoked\n",
           dry ? "dry run, nothing written: " : "", (long long)c.selected, (long long)c.revoked,
           dry ? "would be revoked" : "revoked", mc_revoke_reason_name(reason),
           (long long)c.reason_updated, dry ? "would change reason" : "changed reason",
           (long long)c.unchanged);
    if (c.keys_compromised > 0)
        printf("mailca revoke: %lld subject key(s) %s as compromised: orders for them are "
               "refused from then on (SBR 6.1.1.3)\n",
               (long long)c.keys_compromised, dry ? "would be recorded" : "recorded");
    return 0;
}
