/*
 * Unit tests for the SBR 4.2.1 evidence reuse windows: each method at its boundary (exactly N
 * days passes, one second more fails), evidence from the future, and the error naming the
 * mailbox, the method and the window.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mailca/evidence.h"

#include <string.h>

#define NOW ((int64_t)1767225600) /* 2026-01-01T00:00:00Z */
#define DAY ((int64_t)86400)

static mc_mailbox mbox(const char *addr, mc_vmethod m, int64_t at)
{
    mc_mailbox b;
    memset(&b, 0, sizeof b);
    b.address.p = addr;
    b.address.len = strlen(addr);
    b.method = m;
    b.validated_at = at;
    b.reference = (mc_str){"ref", 3};
    return b;
}

static void boundary(mc_vmethod m, int days)
{
    mc_errdetail err;
    assert_int_equal(mc_evidence_window_days(m), days);
    mc_mailbox in = mbox("alice@example.test", m, NOW - days * DAY);
    assert_int_equal(mc_evidence_check_mailbox(&in, NOW, "mailboxes[0].validated_at", &err), MC_OK);
    mc_mailbox out = mbox("alice@example.test", m, NOW - days * DAY - 1);
    assert_int_equal(mc_evidence_check_mailbox(&out, NOW, "mailboxes[0].validated_at", &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 4.2.1");
    assert_string_equal(err.field, "mailboxes[0].validated_at");
    assert_non_null(strstr(err.message, "alice@example.test"));
    char window[32];
    snprintf(window, sizeof window, "window is %d days", days);
    assert_non_null(strstr(err.message, window));
}

/* SBR 4.2.1 item 1: 3.2.2.1 and 3.2.2.3 398 days; 3.2.2.2 30 days; 3.2.2.4 not stated: 30. */
static void test_domain_398(void **state)
{
    (void)state;
    boundary(MC_VM_DOMAIN, 398);
}

static void test_smtp_398(void **state)
{
    (void)state;
    boundary(MC_VM_SMTP, 398);
}

static void test_email_30(void **state)
{
    (void)state;
    boundary(MC_VM_EMAIL, 30);
    mc_errdetail err;
    /* 31 days: inside the domain window, outside the email window. */
    mc_mailbox b = mbox("bob@example.test", MC_VM_EMAIL, NOW - 31 * DAY);
    assert_int_equal(mc_evidence_check_mailbox(&b, NOW, NULL, &err), MC_ERR_INVALID);
    assert_non_null(strstr(err.message, "3.2.2.2"));
    assert_non_null(strstr(err.message, "31 days"));
    b.method = MC_VM_DOMAIN;
    assert_int_equal(mc_evidence_check_mailbox(&b, NOW, NULL, &err), MC_OK);
}

static void test_acme_30(void **state)
{
    (void)state;
    boundary(MC_VM_ACME, 30);
}

static void test_future(void **state)
{
    (void)state;
    mc_errdetail err;
    mc_mailbox b = mbox("carol@example.test", MC_VM_EMAIL, NOW + MC_EVIDENCE_SKEW);
    assert_int_equal(mc_evidence_check_mailbox(&b, NOW, NULL, &err), MC_OK);
    b.validated_at = NOW + MC_EVIDENCE_SKEW + 1;
    assert_int_equal(mc_evidence_check_mailbox(&b, NOW, NULL, &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "orders.md mailboxes.validated_at");
}

static void test_unknown_method(void **state)
{
    (void)state;
    mc_errdetail err;
    mc_mailbox b = mbox("dave@example.test", (mc_vmethod)9, NOW);
    assert_int_equal(mc_evidence_check_mailbox(&b, NOW, NULL, &err), MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 3.2.2");
}

static void test_order_names_mailbox(void **state)
{
    (void)state;
    mc_order o;
    memset(&o, 0, sizeof o);
    o.n_mailboxes = 3;
    o.mailboxes[0] = mbox("a@example.test", MC_VM_DOMAIN, NOW - 300 * DAY);
    o.mailboxes[1] = mbox("b@example.test", MC_VM_EMAIL, NOW - 10 * DAY);
    o.mailboxes[2] = mbox("c@example.test", MC_VM_EMAIL, NOW - 45 * DAY);
    mc_errdetail err;
    assert_int_equal(mc_evidence_check(&o, NOW, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "mailboxes[2].validated_at");
    assert_non_null(strstr(err.message, "c@example.test"));
    assert_non_null(strstr(err.message, "2025-11-17T00:00:00Z"));
    o.mailboxes[2].validated_at = NOW - 29 * DAY;
    assert_int_equal(mc_evidence_check(&o, NOW, &err), MC_OK);
}

/* SBR 4.2.1 items 2 and 3, SBR 3.2.3 / 3.2.4: the identity validations each certificate type
 * rests on, within 825 days (exactly 825 days passes, one second more fails). */
static void test_identity(void **state)
{
    (void)state;
    mc_errdetail err;
    mc_order o;
    memset(&o, 0, sizeof o);
    o.id_org = (mc_identity_evidence){NOW - 825 * DAY, {"kyb", 3}};
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_ORGANIZATION, NOW, &err), MC_OK);
    o.id_org.validated_at = NOW - 825 * DAY - 1;
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_ORGANIZATION, NOW, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.rule, "SBR 4.2.1");
    assert_string_equal(err.field, "identity.organization.validated_at");
    assert_non_null(strstr(err.message, "window is 825 days"));
    /* in the future (beyond the clock skew): refused */
    o.id_org.validated_at = NOW + MC_EVIDENCE_SKEW + 1;
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_ORGANIZATION, NOW, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.rule, "orders.md identity");
    o.id_org.validated_at = NOW + MC_EVIDENCE_SKEW;
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_ORGANIZATION, NOW, &err), MC_OK);

    /* missing: SBR 3.2.3 for the organization, 3.2.4 for the individual */
    memset(&o, 0, sizeof o);
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_ORGANIZATION, NOW, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.field, "identity.organization");
    assert_string_equal(err.rule, "SBR 3.2.3");
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_INDIVIDUAL, NOW, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "identity.individual");
    assert_string_equal(err.rule, "SBR 3.2.4");
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_MAILBOX, NOW, &err), MC_OK);

    /* sponsor-validated: both, each within its window */
    o.id_org = (mc_identity_evidence){NOW - DAY, {"kyb", 3}};
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_SPONSOR, NOW, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "identity.individual");
    o.id_individual = (mc_identity_evidence){NOW - 825 * DAY - 1, {"kyc", 3}};
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_SPONSOR, NOW, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "identity.individual.validated_at");
    assert_string_equal(err.rule, "SBR 4.2.1");
    o.id_individual.validated_at = NOW - 825 * DAY;
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_SPONSOR, NOW, &err), MC_OK);

    /* an identity the type does not name is refused, never ignored */
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_INDIVIDUAL, NOW, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "identity.organization");
    assert_string_equal(err.rule, "orders.md identity");
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_MAILBOX, NOW, &err), MC_ERR_INVALID);
    assert_string_equal(err.field, "identity.organization");
    memset(&o.id_org, 0, sizeof o.id_org);
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_INDIVIDUAL, NOW, &err), MC_OK);
    assert_int_equal(mc_evidence_check_identity(&o, MC_TYPE_ORGANIZATION, NOW, &err),
                     MC_ERR_INVALID);
    assert_string_equal(err.field, "identity.organization");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_398),
        cmocka_unit_test(test_smtp_398),
        cmocka_unit_test(test_email_30),
        cmocka_unit_test(test_acme_30),
        cmocka_unit_test(test_future),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_order_names_mailbox),
        cmocka_unit_test(test_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
