/*
 * A SQLite VFS over the default one that gathers WAL appends into large writes.
 *
 * Why: SQLite writes each WAL frame as two pwrite calls, its 24-byte header and then the page
 * (wal.c, walWriteOneFrame), and a commit of a batch of 256 intents is about 600 frames (the
 * serial and key-hash indexes take random keys, so each intent dirties index pages). Each call
 * pays a system call and the kernel's per-page work (page-cache look-up, ext4 write_begin/end)
 * once for the 24 bytes and again for the 4 KiB, which spans two pages since frames are 4120
 * bytes: perf of `mailca bench --store-only` put about 60% of the sink's CPU in the kernel.
 * Here the frames of a transaction are appended to a buffer and written sequentially in
 * up to MC_SQLVFS_BUF bytes at a time.
 *
 * Why it is safe: SQLite makes a commit visible (the wal-index header, in shared memory) only
 * after it has written the commit frame, the one whose header carries the database size. The
 * buffer is written out as soon as that frame's page is in it, so every published frame is in
 * the file, as without this VFS. Frames of a transaction not yet committed may wait in the
 * buffer; they are not part of the database until their commit frame is written, and SQLite
 * recovers a WAL by its last valid commit frame. Anything that is not the next append (an
 * overwrite of an earlier frame, a checksum rewrite, a write at offset 0 after a restart), and
 * every read, sync, truncate, size query, file control and close, first writes the buffer out,
 * so SQLite never sees the file without its own writes.
 *
 * Frames of a transaction that rolls back must never reach the file: another connection may
 * append its own committed frames at the same offsets once this one lets go of the WAL write
 * lock. So the main database file is wrapped too, only to see that lock (slot 0 of its shared
 * memory locks, wal.c WAL_WRITE_LOCK) being released: what the WAL's buffer still holds then
 * belongs to no commit and is dropped. And with sector padding (a device without
 * SQLITE_IOCAP_POWERSAFE_OVERWRITE, synchronous FULL), SQLite splits a padding frame around
 * a sync and publishes it without another write, so there nothing is gathered.
 */
#include "mailca/sqlvfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 29 frames of 4 KiB pages per write. The default VFS writes at most 0x1ffff bytes per call
 * (os_unix.c seekAndWriteFd masks the length), so the buffer stays under 128 KiB. */
#define MC_SQLVFS_BUF (120 * 1024)
#define WAL_FRAME_HDR 24 /* SQLite file format: a WAL frame header is 24 bytes */

/* What both wrappers start with: the default VFS's file lives in the same allocation, after
 * the wrapper (FILE_HEAD). */
typedef struct wrap {
    sqlite3_file base; /* pMethods = &wal_io or &db_io */
    sqlite3_file *real;
} wrap;

typedef struct db_file db_file;

typedef struct wal_file {
    wrap h;
    db_file *db;        /* its database file, whose locks end a transaction; NULL: none found */
    int nobuf;          /* write straight through (no database file, or sector padding) */
    unsigned char *buf; /* appends not yet written, from buf_off; malloc'd on first use */
    size_t len;
    sqlite3_int64 buf_off;
    sqlite3_int64 next; /* offset just past SQLite's last write */
    int commit_hdr;     /* the last 24-byte write was a commit frame's header */
} wal_file;

struct db_file {
    wrap h;
    wal_file *wal; /* the same connection's WAL while it is open */
};

#define MAX_(a, b) ((a) > (b) ? (a) : (b))
/* Room for either wrapper followed by the real file, aligned for it. */
#define FILE_HEAD ((MAX_(sizeof(wal_file), sizeof(db_file)) + 15) & ~(size_t)15)
#define REAL(f) (((wrap *)(f))->real)

static sqlite3_vfs vfs;
static sqlite3_vfs *real_vfs;
static int register_rc = SQLITE_ERROR;
static atomic_ullong n_sqlite_writes, n_os_writes, n_dropped;

static int wal_flush(wal_file *w)
{
    if (w->len == 0)
        return SQLITE_OK;
    int rc = REAL(w)->pMethods->xWrite(REAL(w), w->buf, (int)w->len, w->buf_off);
    atomic_fetch_add_explicit(&n_os_writes, 1, memory_order_relaxed);
    /* On failure the frames are dropped with the error: SQLite fails the transaction and
     * writes its frames again from the last commit. */
    w->len = 0;
    return rc;
}

/* The WAL write lock is being released: a transaction ended. A commit has written its frames
 * out already, so what is left belongs to a transaction rolled back (pages it spilled early). */
static void wal_drop(wal_file *w)
{
    atomic_fetch_add_explicit(&n_dropped, w->len, memory_order_relaxed);
    w->len = 0;
    w->commit_hdr = 0;
}

static int wal_close(sqlite3_file *f)
{
    wal_file *w = (wal_file *)f;
    int rc = wal_flush(w);
    int rc2 = REAL(w)->pMethods->xClose(REAL(w));
    if (w->db)
        w->db->wal = NULL;
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

/* The default VFS's methods, for what a wrapper passes on (after writing its buffer out). */
static int fwd_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off);
static int fwd_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 off);
static int fwd_truncate(sqlite3_file *f, sqlite3_int64 size);
static int fwd_sync(sqlite3_file *f, int flags);
static int fwd_file_size(sqlite3_file *f, sqlite3_int64 *size);
static int fwd_file_control(sqlite3_file *f, int op, void *arg);
static int fwd_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp);

static int wal_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off)
{
    int rc = wal_flush((wal_file *)f);
    return rc != SQLITE_OK ? rc : fwd_read(f, out, amt, off);
}

static int wal_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 off)
{
    wal_file *w = (wal_file *)f;
    int rc = SQLITE_OK;
    atomic_fetch_add_explicit(&n_sqlite_writes, 1, memory_order_relaxed);
    const int append = !w->nobuf && off == w->next && amt > 0 && (size_t)amt <= MC_SQLVFS_BUF;
    if (append && !w->buf)
        w->buf = malloc(MC_SQLVFS_BUF); /* none: every write goes straight through */
    if (append && w->buf) {
        if (w->len + (size_t)amt > MC_SQLVFS_BUF && (rc = wal_flush(w)) != SQLITE_OK)
            return rc;
        if (w->len == 0)
            w->buf_off = off;
        memcpy(w->buf + w->len, data, (size_t)amt);
        w->len += (size_t)amt;
    } else {
        if ((rc = wal_flush(w)) != SQLITE_OK)
            return rc;
        rc = fwd_write(f, data, amt, off);
        atomic_fetch_add_explicit(&n_os_writes, 1, memory_order_relaxed);
        if (rc != SQLITE_OK)
            return rc;
    }
    w->next = off + amt;
    if (amt == WAL_FRAME_HDR) {
        /* bytes 4..7 of a frame header: the database size after a commit, 0 otherwise */
        const unsigned char *h = data;
        w->commit_hdr = (h[4] | h[5] | h[6] | h[7]) != 0;
    } else if (w->commit_hdr) {
        /* The commit frame is complete: into the file before SQLite publishes it. */
        w->commit_hdr = 0;
        rc = wal_flush(w);
    }
    return rc;
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    int rc = wal_flush((wal_file *)f);
    return rc != SQLITE_OK ? rc : fwd_truncate(f, size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
    int rc = wal_flush((wal_file *)f);
    return rc != SQLITE_OK ? rc : fwd_sync(f, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    int rc = wal_flush((wal_file *)f);
    return rc != SQLITE_OK ? rc : fwd_file_size(f, size);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg)
{
    int rc = wal_flush((wal_file *)f);
    return rc != SQLITE_OK ? rc : fwd_file_control(f, op, arg);
}

static int wal_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    *pp = NULL; /* no memory map: SQLite reads instead */
    int rc = wal_flush((wal_file *)f);
    return rc != SQLITE_OK ? rc : fwd_fetch(f, off, amt, pp);
}

/* --- the default VFS's methods, for what either wrapper passes on ------------------------------
 */

static int fwd_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), out, amt, off);
}

static int fwd_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xWrite(REAL(f), data, amt, off);
}

static int fwd_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int fwd_sync(sqlite3_file *f, int flags)
{
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int fwd_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int fwd_lock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int fwd_unlock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int fwd_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int fwd_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int fwd_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int fwd_device(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int fwd_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    if (REAL(f)->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMMAP;
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int fwd_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    if (REAL(f)->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMLOCK;
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void fwd_shm_barrier(sqlite3_file *f)
{
    if (REAL(f)->pMethods->iVersion >= 2)
        REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int fwd_shm_unmap(sqlite3_file *f, int del)
{
    if (REAL(f)->pMethods->iVersion < 2)
        return SQLITE_OK;
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int fwd_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    *pp = NULL;
    if (REAL(f)->pMethods->iVersion < 3)
        return SQLITE_OK;
    return REAL(f)->pMethods->xFetch(REAL(f), off, amt, pp);
}

static int fwd_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    if (REAL(f)->pMethods->iVersion < 3)
        return SQLITE_OK;
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

/* A WAL file has no shared memory or memory map of its own (those belong to the database
 * file); its table forwards them anyway so that it is complete for any caller. */
static const sqlite3_io_methods wal_io = {
    .iVersion = 3,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = fwd_lock,
    .xUnlock = fwd_unlock,
    .xCheckReservedLock = fwd_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = fwd_sector_size,
    .xDeviceCharacteristics = fwd_device,
    .xShmMap = fwd_shm_map,
    .xShmLock = fwd_shm_lock,
    .xShmBarrier = fwd_shm_barrier,
    .xShmUnmap = fwd_shm_unmap,
    .xFetch = wal_fetch,
    .xUnfetch = fwd_unfetch,
};

/* --- the main database file: everything passed on; the WAL write lock watched ----------------- */

static int db_close(sqlite3_file *f)
{
    db_file *d = (db_file *)f;
    if (d->wal) /* SQLite closes the WAL first; in case it did not, it must not point here */
        d->wal->db = NULL;
    return REAL(f)->pMethods->xClose(REAL(f));
}

static int db_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    db_file *d = (db_file *)f;
    /* wal.c: WAL_WRITE_LOCK is slot 0, released when a write transaction ends */
    if (d->wal && offset == 0 && n >= 1 && flags == (SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE))
        wal_drop(d->wal);
    return fwd_shm_lock(f, offset, n, flags);
}

static const sqlite3_io_methods db_io = {
    .iVersion = 3,
    .xClose = db_close,
    .xRead = fwd_read,
    .xWrite = fwd_write,
    .xTruncate = fwd_truncate,
    .xSync = fwd_sync,
    .xFileSize = fwd_file_size,
    .xLock = fwd_lock,
    .xUnlock = fwd_unlock,
    .xCheckReservedLock = fwd_check_reserved,
    .xFileControl = fwd_file_control,
    .xSectorSize = fwd_sector_size,
    .xDeviceCharacteristics = fwd_device,
    .xShmMap = fwd_shm_map,
    .xShmLock = db_shm_lock,
    .xShmBarrier = fwd_shm_barrier,
    .xShmUnmap = fwd_shm_unmap,
    .xFetch = fwd_fetch,
    .xUnfetch = fwd_unfetch,
};

static int vfs_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *oflags)
{
    if (!(flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_DB)))
        return real_vfs->xOpen(real_vfs, name, f, flags, oflags); /* f has room: szOsFile */
    memset(f, 0, FILE_HEAD);
    wrap *h = (wrap *)f;
    h->real = (sqlite3_file *)((unsigned char *)f + FILE_HEAD);
    int rc = real_vfs->xOpen(real_vfs, name, h->real, flags, oflags);
    if (rc != SQLITE_OK) {
        /* SQLite closes a file whose pMethods is set even when xOpen fails: leave ours unset
         * and close the real one here if it was left open. */
        if (h->real->pMethods)
            h->real->pMethods->xClose(h->real);
        h->base.pMethods = NULL;
        return rc;
    }
    if (flags & SQLITE_OPEN_MAIN_DB) {
        h->base.pMethods = &db_io;
        return SQLITE_OK;
    }
    wal_file *w = (wal_file *)f;
    w->next = -1;
    sqlite3_file *db = sqlite3_database_file_object(name);
    if (db && db->pMethods == &db_io && !((db_file *)db)->wal) {
        w->db = (db_file *)db;
        w->db->wal = w;
    }
    /* Without its database file's locks a rollback could not be seen; with sector padding a
     * published frame could stay behind (header comment): write straight through. SQLite
     * decides on padding from the database file's characteristics (wal.c sqlite3WalOpen). */
    w->nobuf = !w->db || !(REAL(w->db)->pMethods->xDeviceCharacteristics(REAL(w->db)) &
                           SQLITE_IOCAP_POWERSAFE_OVERWRITE);
    h->base.pMethods = &wal_io;
    return SQLITE_OK;
}

static void vfs_init(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs)
        return;
    /* Everything but opening a file is the default VFS's own method (they use the vfs only
     * for its constants, copied here). */
    vfs = *real_vfs;
    vfs.zName = MC_SQLVFS_NAME;
    vfs.pNext = NULL;
    vfs.szOsFile = (int)FILE_HEAD + real_vfs->szOsFile;
    vfs.xOpen = vfs_open;
    register_rc = sqlite3_vfs_register(&vfs, 0);
}

mc_err mc_sqlvfs_register(mc_errdetail *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, vfs_init);
    if (!real_vfs)
        return mc_err_set(err, MC_ERR_STORE, NULL, NULL, "sqlite: no default VFS");
    if (register_rc != SQLITE_OK)
        return mc_err_set(err, MC_ERR_STORE, NULL, NULL, "sqlite: registering VFS '%s': %s",
                          MC_SQLVFS_NAME, sqlite3_errstr(register_rc));
    return MC_OK;
}

void mc_sqlvfs_stats_get(mc_sqlvfs_stats *out)
{
    out->sqlite_writes = atomic_load_explicit(&n_sqlite_writes, memory_order_relaxed);
    out->os_writes = atomic_load_explicit(&n_os_writes, memory_order_relaxed);
    out->dropped_bytes = atomic_load_explicit(&n_dropped, memory_order_relaxed);
}
