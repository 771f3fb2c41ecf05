/*
 * respd's data store: binary-safe string keys and values in one hash
 * table, each key with an optional expiry time in milliseconds.
 *
 * Expired keys go two ways, as in Redis: lazily, when a lookup finds one
 * (it is deleted then and reported missing), and actively, through
 * store_sweep(), which samples keys with an expiry and deletes the
 * expired ones with a bounded amount of work per call.
 *
 * Times are milliseconds on a monotonic clock that the caller reads and
 * passes in (now_ms), so the store never reads a clock itself and tests
 * could drive it with any time they like.  Not thread-safe: it belongs to
 * the one thread that runs the event loop.
 */
#ifndef RESPD_STORE_H
#define RESPD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One key and its value.  The store owns it; a pointer returned by a
 * lookup stays valid until the next call that changes the store. */
struct entry {
    uint64_t hash;     /* of the key; cached for probing and resizing */
    int64_t expire_ms; /* absolute expiry time, or 0: no expiry */
    char *val;         /* value bytes (owned), NULL when val_len is 0 */
    size_t val_len;    /* bytes in val */
    size_t key_len;    /* bytes in key */
    char key[];        /* key bytes, allocated with the entry */
};

/* The table: open addressing with linear probing, deletion by backward
 * shift (so no tombstones), capacity a power of two, load at most 3/4. */
struct store {
    struct entry **slots; /* cap slots, NULL where empty */
    size_t cap;           /* power of two, >= STORE_MIN_CAP */
    size_t count;         /* keys stored, expired ones not yet deleted too */
    size_t volatile_keys; /* keys with an expiry (expire_ms != 0) */
    size_t sweep_cursor;  /* slot where the next store_sweep() starts */
    uint64_t seed;        /* hash seed, so clients cannot choose collisions */
};

/* 0, or -1 with errno ENOMEM. */
int store_init(struct store *s);

/* Free every key and the table. */
void store_free(struct store *s);

/* Delete every key; the table goes back to its initial size (when that
 * allocation fails, the larger table is kept, emptied). */
void store_clear(struct store *s);

/* The live entry for key, or NULL (an expired one is deleted first). */
struct entry *store_get(struct store *s, const char *key, size_t key_len,
                        int64_t now_ms);

/*
 * Set key to val (copied).  expire_ms is the new absolute expiry (0: none)
 * unless keep_ttl, which keeps an existing key's expiry.  Returns the
 * entry, or NULL with errno ENOMEM (the store is then unchanged).
 */
struct entry *store_set(struct store *s, const char *key, size_t key_len,
                        const char *val, size_t val_len, int64_t expire_ms,
                        bool keep_ttl, int64_t now_ms);

/* Replace e's value (copied); its expiry stays.  0, or -1 with errno
 * ENOMEM (e unchanged). */
int store_set_value(struct entry *e, const char *val, size_t val_len);

/* Set or clear (0) e's expiry. */
void store_set_expire(struct store *s, struct entry *e, int64_t expire_ms);

/* Delete key; whether a live key was deleted. */
bool store_del(struct store *s, const char *key, size_t key_len,
               int64_t now_ms);

/* Keys stored, counting expired keys not deleted yet (as Redis's DBSIZE
 * does). */
size_t store_count(const struct store *s);

/*
 * Active expiry: look at up to 20 keys with an expiry (visiting at most
 * 400 slots), from where the last call stopped, and delete the expired
 * ones; repeat while more than a quarter of those looked at had expired,
 * at most 16 times.  So one call costs at most 6400 slot visits, however
 * large the table.  Returns the number of keys deleted.
 */
size_t store_sweep(struct store *s, int64_t now_ms);

#endif
