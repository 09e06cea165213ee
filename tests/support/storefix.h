/*
 * mc_sf: the store fixtures test_store.c and test_store_query.c share, so both suites run once
 * per backend the same way: SQLite in a fresh temporary folder under $MAILCA_TEST_TMP;
 * PostgreSQL at $MAILCA_TEST_PG_URI or a private server started for the group, one schema per
 * test, selected through the URI's search_path. The raw helpers open a separate connection
 * (another reader or writer of the same store) and fail the running cmocka test when the
 * database cannot be reached or refuses the statement.
 */
#ifndef MAILCA_TEST_STOREFIX_H
#define MAILCA_TEST_STOREFIX_H

#include <stddef.h>
#include <stdint.h>

/* One test's store: the cmocka state of the setups below (malloc'd there, freed by the
 * teardowns). */
typedef struct mc_sf {
    int pg;           /* 1: PostgreSQL, 0: SQLite */
    char dir[512];    /* sqlite: the temporary directory */
    char where[1024]; /* what mc_store_open gets: a path or a URI */
    char schema[64];  /* postgresql: this test's schema */
} mc_sf;

/* Per-test setups and teardowns: SQLite a fresh folder, PostgreSQL a fresh schema. */
int mc_sf_sqlite_setup(void **state);
int mc_sf_sqlite_teardown(void **state);
int mc_sf_pg_setup(void **state);
int mc_sf_pg_teardown(void **state);
/* The group setup and teardown of a PostgreSQL suite (state unused). */
int mc_sf_pg_group_setup(void **state);
int mc_sf_pg_group_teardown(void **state);

/* On a separate raw connection to f's store: one integer answer (PostgreSQL's t/f as 1/0; -1
 * for no row or NULL); a statement that must run; a statement that may be refused (1 it ran,
 * 0 refused). */
int64_t mc_sf_raw_int(const mc_sf *f, const char *sql);
void mc_sf_raw_exec(const mc_sf *f, const char *sql);
int mc_sf_raw_try(const mc_sf *f, const char *sql);

#ifdef MAILCA_HAVE_LIBPQ
#include <libpq-fe.h>
/* A raw connection to uri, notices silenced; fails the test when it cannot connect. */
PGconn *mc_sf_pg_connect(const char *uri);
#endif

#endif
