/*
 * Unit tests for CAA processing without DNS: issuemail value parsing (RFC 9495 3 / RFC 8659 4.2
 * ABNF), issuer matching (RFC 9495 4), the critical flag (RFC 8659 4.1), accounturi and
 * validationmethods (RFC 8657 3, 4), the freshness window (SBR 4.2.2.1), JSON provenance and the
 * configuration checks of mc_caa_ctx_new. Each rule has a passing and a failing case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/caa.h"

#include <stdio.h>
#include <string.h>

static const char *const ISSUERS[] = {"ca.mailca.test", "mailca.example"};
#define ACCT "https://acme.mailca.test/acct/42"

static mc_caa_record rec(uint8_t flags, const char *tag, const char *value)
{
    mc_caa_record r;
    memset(&r, 0, sizeof r);
    r.flags = flags;
    snprintf(r.tag, sizeof r.tag, "%s", tag);
    r.value_len = strlen(value);
    memcpy(r.value, value, r.value_len);
    return r;
}

static void parse(const char *v, mc_caa_issuemail *im)
{
    mc_caa_issuemail_parse((const uint8_t *)v, strlen(v), im);
}

static int issuer_is(const mc_caa_issuemail *im, const char *want)
{
    return im->issuer_len == strlen(want) && !memcmp(im->issuer, want, im->issuer_len);
}

/* Evaluates one RRset; returns the decision, rule and reason in *res. */
static mc_caa_decision eval(const mc_caa_record *r, size_t n, const char *acct, mc_vmethod m,
                            mc_caa_result *res)
{
    memset(res, 0, sizeof *res);
    mc_caa_evaluate(r, n, ISSUERS, 2, acct, m, res);
    return res->decision;
}

static void test_parse_valid(void **state)
{
    (void)state;
    mc_caa_issuemail im;
    parse("ca.mailca.test", &im);
    assert_true(im.valid);
    assert_true(issuer_is(&im, "ca.mailca.test"));
    assert_int_equal(im.n_params, 0);

    parse("  ca.mailca.test  ;  accounturi = https://x/1 ; validationmethods=a-b,c  ", &im);
    assert_true(im.valid);
    assert_true(issuer_is(&im, "ca.mailca.test"));
    assert_int_equal(im.n_params, 2);
    assert_int_equal(im.params[0].tag_len, 10);
    assert_memory_equal(im.params[0].value, "https://x/1", 11);
    assert_int_equal(im.params[0].value_len, 11);
    assert_memory_equal(im.params[1].value, "a-b,c", 5);

    parse(";", &im); /* empty issuer: forbids everyone */
    assert_true(im.valid);
    assert_int_equal(im.issuer_len, 0);
    parse("", &im);
    assert_true(im.valid);
    assert_int_equal(im.issuer_len, 0);
    parse("; a=b", &im);
    assert_true(im.valid);
    assert_int_equal(im.issuer_len, 0);
    assert_int_equal(im.n_params, 1);
    parse("x-1.y--2.z; k=", &im); /* inner hyphen runs; empty parameter value */
    assert_true(im.valid);
    assert_true(issuer_is(&im, "x-1.y--2.z"));
    assert_int_equal(im.params[0].value_len, 0);
}

static void test_parse_invalid(void **state)
{
    (void)state;
    /* RFC 9495 4: a value off the ABNF counts as an empty issuer-domain-name (valid 0). */
    const char *bad[] = {
        "ca.mailca.test.",            /* trailing dot */
        "-ca.mailca.test",            /* label starting with '-' */
        "ca-.mailca.test",            /* label ending with '-' */
        "ca..mailca.test",            /* empty label */
        "ca.mailca.test x",           /* junk after the name */
        "ca.mailca.test; a",          /* parameter without '=' */
        "ca.mailca.test; a=b;",       /* trailing ';' (no parameter follows) */
        "ca.mailca.test; a=b c=d",    /* parameters not separated by ';' */
        "ca.mailca.test; -a=b",       /* bad parameter tag */
        "ca.mailca.test; a=\x01",     /* control character in a value */
        "ca.mailca.test; a=\xc3\xa9", /* non-ASCII in a value */
        "ca_x.test",                  /* '_' is not in a label */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mc_caa_issuemail im;
        parse(bad[i], &im);
        if (im.valid)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(im.issuer_len, 0);
    }
}

static void test_permit_no_issuemail(void **state)
{
    (void)state;
    mc_caa_result res;
    /* Empty RRset, or one with only issue/issuewild/iodef: no restriction on email (RFC 9495 4). */
    assert_int_equal(eval(NULL, 0, NULL, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
    assert_string_equal(res.rule, "RFC 9495 4");
    mc_caa_record r[] = {rec(0, "issue", ";"), rec(0, "issuewild", ";"),
                         rec(0, "iodef", "mailto:x@y.test")};
    assert_int_equal(eval(r, 3, NULL, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
    assert_int_equal(res.matched, -1);
    assert_non_null(strstr(res.reason, "no issuemail"));
}

static void test_issuer_match(void **state)
{
    (void)state;
    mc_caa_result res;
    mc_caa_record ok[] = {rec(0, "issuemail", "other.example"),
                          rec(0, "IssueMail", "MAILCA.Example")};
    /* Tags and issuer domains compare case-insensitively; any one matching record suffices. */
    assert_int_equal(eval(ok, 2, NULL, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
    assert_string_equal(res.rule, "RFC 9495 4");
    assert_int_equal(res.matched, 1);

    mc_caa_record other[] = {rec(0, "issuemail", "other.example"),
                             rec(0, "issue", "ca.mailca.test")};
    assert_int_equal(eval(other, 2, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_string_equal(res.rule, "RFC 9495 4");
    assert_non_null(strstr(res.reason, "\"other.example\""));

    /* A suffix or prefix of our name is not our name. */
    mc_caa_record near[] = {rec(0, "issuemail", "mailca.test"),
                            rec(0, "issuemail", "x.ca.mailca.test")};
    assert_int_equal(eval(near, 2, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
}

static void test_deny_empty_and_malformed(void **state)
{
    (void)state;
    mc_caa_result res;
    mc_caa_record semi[] = {rec(0, "issuemail", ";")};
    assert_int_equal(eval(semi, 1, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_string_equal(res.rule, "RFC 9495 4");
    mc_caa_record empty[] = {rec(0, "issuemail", "")};
    assert_int_equal(eval(empty, 1, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
    /* Our name, but the value is off the ABNF: as if the issuer were empty. */
    mc_caa_record bad[] = {rec(0, "issuemail", "ca.mailca.test; a=b;")};
    assert_int_equal(eval(bad, 1, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
    /* ... but a valid record next to a malformed one still authorises. */
    mc_caa_record mixed[] = {rec(0, "issuemail", "ca.mailca.test.."),
                             rec(0, "issuemail", "ca.mailca.test")};
    assert_int_equal(eval(mixed, 2, NULL, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
    /* A value cut to MC_CAA_VALUE_MAX never authorises. */
    mc_caa_record cut[] = {rec(0, "issuemail", "ca.mailca.test")};
    cut[0].cut = 1;
    assert_int_equal(eval(cut, 1, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
}

static void test_critical_flag(void **state)
{
    (void)state;
    mc_caa_result res;
    mc_caa_record crit[] = {rec(128, "tbs", "x"), rec(0, "issuemail", "ca.mailca.test")};
    assert_int_equal(eval(crit, 2, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_string_equal(res.rule, "RFC 8659 4.1");
    assert_non_null(strstr(res.reason, "tbs"));
    /* Not critical: an unknown tag is ignored. Critical with a known tag (any case): fine. */
    mc_caa_record noncrit[] = {rec(0, "tbs", "x"), rec(128, "ISSUEMAIL", "ca.mailca.test"),
                               rec(129, "issue", ";")};
    assert_int_equal(eval(noncrit, 3, NULL, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
}

static void test_accounturi(void **state)
{
    (void)state;
    mc_caa_result res;
    mc_caa_record r[] = {rec(0, "issuemail", "ca.mailca.test; accounturi=" ACCT)};
    assert_int_equal(eval(r, 1, ACCT, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
    assert_int_equal(res.matched, 0);
    assert_int_equal(eval(r, 1, ACCT "3", MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_string_equal(res.rule, "RFC 8657 3");
    assert_non_null(strstr(res.reason, ACCT "3"));
    assert_int_equal(eval(r, 1, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_string_equal(res.rule, "RFC 8657 3");
    /* Exact comparison: case matters in a URI path. */
    assert_int_equal(eval(r, 1, "https://acme.mailca.test/ACCT/42", MC_VM_EMAIL, &res),
                     MC_CAA_DENY);
    /* Twice: authorises no one. */
    mc_caa_record twice[] = {
        rec(0, "issuemail", "ca.mailca.test; accounturi=" ACCT "; accounturi=" ACCT)};
    assert_int_equal(eval(twice, 1, ACCT, MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_string_equal(res.rule, "RFC 8657 3");
    /* One bound record for another account and an unbound one: the unbound one authorises. */
    mc_caa_record two[] = {rec(0, "issuemail", "ca.mailca.test; accounturi=https://x/9"),
                           rec(0, "issuemail", "ca.mailca.test")};
    assert_int_equal(eval(two, 2, ACCT, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
    assert_int_equal(res.matched, 1);
}

static void test_validationmethods(void **state)
{
    (void)state;
    mc_caa_result res;
    assert_string_equal(mc_caa_method_label(MC_VM_ACME), "email-reply-00");
    mc_caa_record r[] = {
        rec(0, "issuemail", "ca.mailca.test; validationmethods=email-reply-00,ca-smime-domain")};
    assert_int_equal(eval(r, 1, NULL, MC_VM_ACME, &res), MC_CAA_PERMIT);
    assert_int_equal(eval(r, 1, NULL, MC_VM_DOMAIN, &res), MC_CAA_PERMIT);
    assert_int_equal(eval(r, 1, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_string_equal(res.rule, "RFC 8657 4");
    assert_non_null(strstr(res.reason, "ca-smime-email"));
    assert_int_equal(eval(r, 1, NULL, MC_VM_SMTP, &res), MC_CAA_DENY);
    /* Malformed list: never authorises. */
    mc_caa_record bad[] = {
        rec(0, "issuemail", "ca.mailca.test; validationmethods=ca-smime-email,")};
    assert_int_equal(eval(bad, 1, NULL, MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_string_equal(res.rule, "RFC 8657 4");
    /* Both parameters must hold. */
    mc_caa_record both[] = {rec(
        0, "issuemail", "ca.mailca.test; accounturi=" ACCT "; validationmethods=ca-smime-email")};
    assert_int_equal(eval(both, 1, ACCT, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
    assert_int_equal(eval(both, 1, "https://x/1", MC_VM_EMAIL, &res), MC_CAA_DENY);
    assert_int_equal(eval(both, 1, ACCT, MC_VM_ACME, &res), MC_CAA_DENY);
    /* Unknown parameters are ignored. */
    mc_caa_record unk[] = {rec(0, "issuemail", "ca.mailca.test; policy=ev")};
    assert_int_equal(eval(unk, 1, NULL, MC_VM_EMAIL, &res), MC_CAA_PERMIT);
}

static void test_fresh(void **state)
{
    (void)state;
    mc_caa_result res;
    memset(&res, 0, sizeof res);
    res.decision = MC_CAA_PERMIT;
    res.checked_at = 1000000;
    res.ttl = 300;
    /* SBR 4.2.2.1: within max(TTL, 8 h) of the check. */
    assert_true(mc_caa_result_fresh(&res, 1000000 + 28800));
    assert_false(mc_caa_result_fresh(&res, 1000000 + 28801));
    res.ttl = 86400;
    assert_true(mc_caa_result_fresh(&res, 1000000 + 86400));
    assert_false(mc_caa_result_fresh(&res, 1000000 + 86401));
    res.decision = MC_CAA_DENY;
    assert_false(mc_caa_result_fresh(&res, 1000000));
}

static void test_json(void **state)
{
    (void)state;
    mc_caa_result res;
    mc_caa_record r[] = {rec(0, "issuemail", "ca.mailca.test"), rec(128, "iodef", "a\"b\\c\x01")};
    eval(r, 2, NULL, MC_VM_EMAIL, &res);
    snprintf(res.domain, sizeof res.domain, "example.test");
    snprintf(res.relevant, sizeof res.relevant, "example.test");
    snprintf(res.resolver, sizeof res.resolver, "127.0.0.1@53");
    res.n_records = 2;
    memcpy(res.records, r, sizeof r);
    res.ttl = 300;
    res.checked_at = 1700000000;
    char buf[MC_CAA_JSON_MAX];
    size_t len = 0;
    assert_int_equal(mc_caa_result_json(&res, buf, sizeof buf, &len), MC_OK);
    assert_int_equal(len, strlen(buf));
    assert_string_equal(
        buf, "{\"domain\":\"example.test\",\"decision\":\"permit\",\"rule\":\"RFC 9495 4\","
             "\"reason\":\"issuemail \\\"ca.mailca.test\\\" authorises ca.mailca.test\","
             "\"relevant\":\"example.test\",\"canonical\":\"\",\"dnssec\":\"insecure\","
             "\"rcode\":0,\"ttl\":300,\"checked_at\":1700000000,\"cached\":false,"
             "\"resolver\":\"127.0.0.1@53\",\"matched\":0,\"records\":["
             "{\"flags\":0,\"tag\":\"issuemail\",\"value\":\"ca.mailca.test\"},"
             "{\"flags\":128,\"tag\":\"iodef\",\"value\":\"a\\\"b\\\\c\\u0001\"}],"
             "\"n_records\":2}");
    /* Too small a buffer: an error and an empty string, never a cut JSON text. */
    assert_int_equal(mc_caa_result_json(&res, buf, 40, &len), MC_ERR_NOMEM);
    assert_string_equal(buf, "");
    /* The bound holds for the largest result. */
    for (size_t i = 0; i < MC_CAA_RECORDS_MAX; i++) {
        res.records[i].flags = 255;
        memset(res.records[i].tag, '"', MC_CAA_TAG_MAX - 1);
        res.records[i].tag[MC_CAA_TAG_MAX - 1] = '\0';
        memset(res.records[i].value, 0x01, MC_CAA_VALUE_MAX);
        res.records[i].value_len = MC_CAA_VALUE_MAX;
        res.records[i].cut = 1;
    }
    res.n_records = 1000;
    memset(res.reason, '\\', sizeof res.reason - 1);
    memset(res.domain, 'a', sizeof res.domain - 1);
    memset(res.relevant, 'a', sizeof res.relevant - 1);
    memset(res.canonical, 'a', sizeof res.canonical - 1);
    assert_int_equal(mc_caa_result_json(&res, buf, sizeof buf, &len), MC_OK);
    /* ... also with every perspective view at its largest. */
    res.quorum = MC_CAA_PERSPECTIVES_MAX;
    res.n_perspectives = MC_CAA_PERSPECTIVES_MAX;
    for (size_t i = 0; i < MC_CAA_PERSPECTIVES_MAX; i++) {
        mc_caa_view *v = &res.views[i];
        memset(v, 0, sizeof *v);
        memset(v->name, '"', sizeof v->name - 1);
        memset(v->rule, '"', sizeof v->rule - 1);
        memset(v->reason, 0x01, sizeof v->reason - 1);
        memset(v->resolver, '\\', sizeof v->resolver - 1);
        memset(v->relevant, 0x7f, sizeof v->relevant - 1);
        v->rcode = INT32_MIN;
        v->checked_at = INT64_MIN;
        v->matched = INT32_MIN;
        v->n_records = SIZE_MAX;
        v->ttl = UINT32_MAX;
    }
    assert_int_equal(mc_caa_result_json(&res, buf, sizeof buf, &len), MC_OK);
}

/* Multi-perspective JSON (SBR 4.2.2.2: each perspective's result is logged). */
static void test_json_perspectives(void **state)
{
    (void)state;
    mc_caa_result res;
    eval(NULL, 0, NULL, MC_VM_EMAIL, &res);
    snprintf(res.domain, sizeof res.domain, "example.test");
    snprintf(res.resolver, sizeof res.resolver, "mpic:a,b");
    res.quorum = 2;
    res.permits = 1;
    res.n_perspectives = 2;
    res.decision = MC_CAA_TEMPFAIL;
    snprintf(res.rule, sizeof res.rule, "SBR 4.2.2.2");
    snprintf(res.reason, sizeof res.reason, "1 of 2");
    res.views[0] = (mc_caa_view){.name = "a",
                                 .decision = MC_CAA_PERMIT,
                                 .rule = "RFC 9495 4",
                                 .reason = "ok",
                                 .resolver = "127.0.0.1@53",
                                 .ttl = 300,
                                 .checked_at = 5,
                                 .matched = -1};
    res.views[1] = (mc_caa_view){.name = "b",
                                 .decision = MC_CAA_TEMPFAIL,
                                 .rule = "SBR 4.2.2.1",
                                 .reason = "timeout",
                                 .resolver = "127.0.0.2@53",
                                 .rcode = -1,
                                 .checked_at = 6,
                                 .cached = 1,
                                 .matched = -1};
    char buf[MC_CAA_JSON_MAX];
    assert_int_equal(mc_caa_result_json(&res, buf, sizeof buf, NULL), MC_OK);
    const char *tail =
        "\"n_records\":0,\"quorum\":2,\"permits\":1,\"perspectives\":["
        "{\"name\":\"a\",\"decision\":\"permit\",\"rule\":\"RFC 9495 4\",\"reason\":\"ok\","
        "\"resolver\":\"127.0.0.1@53\",\"relevant\":\"\",\"dnssec\":\"insecure\",\"rcode\":0,"
        "\"ttl\":300,\"checked_at\":5,\"cached\":false,\"matched\":-1,\"n_records\":0},"
        "{\"name\":\"b\",\"decision\":\"tempfail\",\"rule\":\"SBR 4.2.2.1\",\"reason\":"
        "\"timeout\",\"resolver\":\"127.0.0.2@53\",\"relevant\":\"\",\"dnssec\":\"insecure\","
        "\"rcode\":-1,\"ttl\":0,\"checked_at\":6,\"cached\":true,\"matched\":-1,"
        "\"n_records\":0}]}";
    const char *at = strstr(buf, "\"n_records\":0,\"quorum\"");
    if (!at || strcmp(at, tail) != 0)
        fail_msg("JSON: %s", buf);
    /* Without perspectives nothing is added. */
    res.n_perspectives = 0;
    assert_int_equal(mc_caa_result_json(&res, buf, sizeof buf, NULL), MC_OK);
    assert_null(strstr(buf, "perspectives"));
}

/* caa.perspectives text and the perspective settings of mc_caa_ctx_new. */
static void test_config_perspectives(void **state)
{
    (void)state;
    mc_caa_config cfg = {.issuers = {"ca.mailca.test"}, .n_issuers = 1};
    mc_errdetail err;
    char spec[] = " primary = 127.0.0.1@53 ; eu=192.0.2.1@5353, 192.0.2.2 ;198.51.100.7";
    assert_int_equal(mc_caa_config_perspectives(&cfg, spec, &err), MC_OK);
    assert_int_equal(cfg.n_perspectives, 3);
    assert_string_equal(cfg.perspectives[0].name, "primary");
    assert_int_equal(cfg.perspectives[0].n_resolvers, 1);
    assert_string_equal(cfg.perspectives[0].resolvers[0], "127.0.0.1@53");
    assert_string_equal(cfg.perspectives[1].name, "eu");
    assert_int_equal(cfg.perspectives[1].n_resolvers, 2);
    assert_string_equal(cfg.perspectives[1].resolvers[1], "192.0.2.2");
    assert_null(cfg.perspectives[2].name);
    assert_string_equal(cfg.perspectives[2].resolvers[0], "198.51.100.7");
    char empty[] = "  ";
    assert_int_equal(mc_caa_config_perspectives(&cfg, empty, &err), MC_OK);
    assert_int_equal(cfg.n_perspectives, 0);
    char noresolver[] = "a=127.0.0.1;b=";
    assert_int_equal(mc_caa_config_perspectives(&cfg, noresolver, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "caa.perspectives");
    assert_non_null(strstr(err.message, "perspective 1 has no resolver"));
    char badname[] = "a b=127.0.0.1";
    assert_int_equal(mc_caa_config_perspectives(&cfg, badname, &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "\"a b\""));
    char many[] = "1.1.1.1;1.1.1.2;1.1.1.3;1.1.1.4;1.1.1.5;1.1.1.6;1.1.1.7;1.1.1.8;1.1.1.9";
    assert_int_equal(mc_caa_config_perspectives(&cfg, many, &err), MC_ERR_CONFIG);

    /* mc_caa_ctx_new: two perspectives, quorum 1..2. */
    char two[] = "a=127.0.0.1@53;b=127.0.0.2@53";
    assert_int_equal(mc_caa_config_perspectives(&cfg, two, &err), MC_OK);
    mc_caa_ctx *c = NULL;
    cfg.quorum = 2;
    assert_int_equal(mc_caa_ctx_new(&cfg, &c, &err), MC_OK);
    mc_caa_stats st;
    assert_int_equal(mc_caa_stats_perspective(c, 1, &st), MC_OK);
    assert_int_equal(mc_caa_stats_perspective(c, 2, &st), MC_ERR_INVALID);
    mc_caa_ctx_free(c);
    cfg.quorum = 3;
    assert_int_equal(mc_caa_ctx_new(&cfg, &c, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "caa.quorum");
    assert_string_equal(err.rule, "SBR 4.2.2.2");
    assert_null(c);
    cfg.quorum = 0;
    /* Both resolvers and perspectives: which one is the primary would be a guess. */
    mc_caa_config both = cfg;
    both.resolvers[0] = "127.0.0.1@53";
    both.n_resolvers = 1;
    assert_int_equal(mc_caa_ctx_new(&both, &c, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "caa.resolvers");
    /* A bad resolver is named by its perspective. */
    mc_caa_config bad = cfg;
    bad.perspectives[1].resolvers[0] = "not-an-address";
    assert_int_equal(mc_caa_ctx_new(&bad, &c, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "caa.perspectives[1]");
    /* Names are unique. */
    mc_caa_config dup = cfg;
    dup.perspectives[1].name = "a";
    assert_int_equal(mc_caa_ctx_new(&dup, &c, &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "two perspectives are named \"a\""));
}

static void test_config(void **state)
{
    (void)state;
    mc_caa_ctx *c = NULL;
    mc_errdetail err;
    mc_caa_config cfg = {.issuers = {"ca.mailca.test"},
                         .n_issuers = 1,
                         .resolvers = {"127.0.0.1@53"},
                         .n_resolvers = 1};
    assert_int_equal(mc_caa_ctx_new(&cfg, &c, &err), MC_OK);
    mc_caa_ctx_free(c);

    mc_caa_config none = cfg;
    none.n_issuers = 0;
    assert_int_equal(mc_caa_ctx_new(&none, &c, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "caa.issuer_domains");
    assert_string_equal(err.rule, "SBR 4.2.2.1");
    assert_null(c);

    mc_caa_config badname = cfg;
    badname.issuers[0] = "ca mailca";
    assert_int_equal(mc_caa_ctx_new(&badname, &c, &err), MC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "ca mailca"));
    assert_string_equal(err.field, "caa.issuer_domains");
    assert_string_equal(err.rule, "SBR 4.2.2.1");

    mc_caa_config badres = cfg;
    badres.resolvers[0] = "not-an-address";
    assert_int_equal(mc_caa_ctx_new(&badres, &c, &err), MC_ERR_CONFIG);
    assert_string_equal(err.field, "caa.resolvers");

    /* SBR 4.2.2.1: a cached answer may not outlive max(TTL, 8 h): max_ttl <= 8 h. */
    mc_caa_config ttl = cfg;
    ttl.max_ttl = 28800;
    assert_int_equal(mc_caa_ctx_new(&ttl, &c, &err), MC_OK);
    mc_caa_ctx_free(c);
    ttl.max_ttl = 28801;
    assert_int_equal(mc_caa_ctx_new(&ttl, &c, &err), MC_ERR_CONFIG);
    assert_string_equal(err.rule, "SBR 4.2.2.1");

    /* A bad domain is refused before any lookup. */
    assert_int_equal(mc_caa_ctx_new(&cfg, &c, &err), MC_OK);
    mc_caa_result res;
    assert_int_equal(mc_caa_check(c, "bad..test", NULL, MC_VM_EMAIL, 1, &res, &err),
                     MC_ERR_INVALID);
    assert_int_equal(res.decision, MC_CAA_DENY);
    mc_caa_stats st;
    mc_caa_stats_get(c, &st);
    assert_int_equal(st.queries, 0);
    mc_caa_ctx_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_permit_no_issuemail),
        cmocka_unit_test(test_issuer_match),
        cmocka_unit_test(test_deny_empty_and_malformed),
        cmocka_unit_test(test_critical_flag),
        cmocka_unit_test(test_accounturi),
        cmocka_unit_test(test_validationmethods),
        cmocka_unit_test(test_fresh),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_json_perspectives),
        cmocka_unit_test(test_config_perspectives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
