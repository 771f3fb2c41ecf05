/*
 * respd's hash table: open addressing, linear probing, backward-shift
 * deletion.  See respd_store.h.
 */
#include "respd_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The smallest table: small enough to cost nothing for a few keys. */
#define STORE_MIN_CAP 64

/* Active expiry sizing, Redis's numbers: keys looked at per round, the
 * share of expired ones that makes another round worthwhile, rounds per
 * call; plus a cap on slots visited per round, so a sparse table cannot
 * make one round walk the whole array. */
#define SWEEP_KEYS   20
#define SWEEP_SLOTS  (SWEEP_KEYS * 20)
#define SWEEP_ROUNDS 16

/* A 64-bit multiply-xorshift hash over 8-byte words (in the spirit of
 * wyhash and murmur's finalizer): fast for short keys, and seeded per
 * process so a client cannot aim at one probe chain. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

static uint64_t hash_key(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = mix(h ^ w) + 0x9e3779b97f4a7c15ull;
    }
    uint64_t w = 0;
    memcpy(&w, key + i, len - i);
    return mix(h ^ w ^ ((uint64_t)(len - i) << 56));
}

int store_init(struct store *s)
{
    struct entry **slots = calloc(STORE_MIN_CAP, sizeof *slots);
    if (slots == NULL)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *s = (struct store){
        .slots = slots,
        .cap = STORE_MIN_CAP,
        .seed = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                    ((uint64_t)getpid() << 40)),
    };
    return 0;
}

static void entry_free(struct entry *e)
{
    free(e->val);
    free(e);
}

static void free_all(struct store *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i] != NULL) {
            entry_free(s->slots[i]);
            s->slots[i] = NULL;
        }
    }
    s->count = 0;
    s->volatile_keys = 0;
    s->sweep_cursor = 0;
}

void store_free(struct store *s)
{
    free_all(s);
    free(s->slots);
    s->slots = NULL;
    s->cap = 0;
}

void store_clear(struct store *s)
{
    free_all(s);
    if (s->cap == STORE_MIN_CAP)
        return;
    struct entry **small = calloc(STORE_MIN_CAP, sizeof *small);
    if (small == NULL)
        return; /* keep the big, now empty, table */
    free(s->slots);
    s->slots = small;
    s->cap = STORE_MIN_CAP;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find_slot(const struct store *s, uint64_t h, const char *key,
                        size_t len)
{
    size_t mask = s->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        struct entry *e = s->slots[i];
        if (e == NULL || (e->hash == h && e->key_len == len &&
                          memcmp(e->key, key, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

/* Double the table.  0, or -1 with errno ENOMEM (table unchanged). */
static int grow(struct store *s)
{
    size_t cap = s->cap * 2;
    struct entry **slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        struct entry *e = s->slots[i];
        if (e == NULL)
            continue;
        size_t j = (size_t)e->hash & (cap - 1);
        while (slots[j] != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = e;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    s->sweep_cursor = 0;
    return 0;
}

/*
 * Empty slot i and shift later members of its probe run back, so every
 * key stays reachable from its home slot without tombstones (Knuth's
 * algorithm R).
 */
static void remove_at(struct store *s, size_t i)
{
    size_t mask = s->cap - 1;
    struct entry *gone = s->slots[i];
    if (gone->expire_ms != 0)
        s->volatile_keys--;
    entry_free(gone);
    s->count--;
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        struct entry *e = s->slots[j];
        if (e == NULL)
            break;
        size_t home = (size_t)e->hash & mask;
        /* e may move to the hole unless its home lies cyclically in
         * (hole, j]: then the hole is before its home. */
        bool home_in_between =
            hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (home_in_between)
            continue;
        s->slots[hole] = e;
        hole = j;
    }
    s->slots[hole] = NULL;
}

static bool expired(const struct entry *e, int64_t now_ms)
{
    return e->expire_ms != 0 && e->expire_ms <= now_ms;
}

struct entry *store_get(struct store *s, const char *key, size_t key_len,
                        int64_t now_ms)
{
    uint64_t h = hash_key(s->seed, key, key_len);
    size_t i = find_slot(s, h, key, key_len);
    struct entry *e = s->slots[i];
    if (e == NULL)
        return NULL;
    if (expired(e, now_ms)) {
        remove_at(s, i);
        return NULL;
    }
    return e;
}

int store_set_value(struct entry *e, const char *val, size_t val_len)
{
    char *copy = NULL;
    if (val_len > 0) {
        /* Reuse the buffer when the size is unchanged: SET of the same
         * size in a loop then allocates nothing. */
        if (val_len == e->val_len) {
            memcpy(e->val, val, val_len);
            return 0;
        }
        copy = malloc(val_len);
        if (copy == NULL)
            return -1;
        memcpy(copy, val, val_len);
    }
    free(e->val);
    e->val = copy;
    e->val_len = val_len;
    return 0;
}

void store_set_expire(struct store *s, struct entry *e, int64_t expire_ms)
{
    if (e->expire_ms != 0)
        s->volatile_keys--;
    if (expire_ms != 0)
        s->volatile_keys++;
    e->expire_ms = expire_ms;
}

struct entry *store_set(struct store *s, const char *key, size_t key_len,
                        const char *val, size_t val_len, int64_t expire_ms,
                        bool keep_ttl, int64_t now_ms)
{
    uint64_t h = hash_key(s->seed, key, key_len);
    size_t i = find_slot(s, h, key, key_len);
    struct entry *e = s->slots[i];
    if (e != NULL) {
        if (store_set_value(e, val, val_len) != 0)
            return NULL;
        /* An expired key is replaced, so its old expiry must not stay. */
        if (!keep_ttl || expired(e, now_ms))
            store_set_expire(s, e, keep_ttl ? 0 : expire_ms);
        return e;
    }
    if ((s->count + 1) * 4 > s->cap * 3) {
        if (grow(s) != 0)
            return NULL;
        i = find_slot(s, h, key, key_len);
    }
    e = malloc(sizeof *e + key_len);
    if (e == NULL)
        return NULL;
    *e = (struct entry){.hash = h, .key_len = key_len};
    memcpy(e->key, key, key_len);
    if (store_set_value(e, val, val_len) != 0) {
        free(e);
        return NULL;
    }
    store_set_expire(s, e, keep_ttl ? 0 : expire_ms);
    s->slots[i] = e;
    s->count++;
    return e;
}

bool store_del(struct store *s, const char *key, size_t key_len, int64_t now_ms)
{
    uint64_t h = hash_key(s->seed, key, key_len);
    size_t i = find_slot(s, h, key, key_len);
    struct entry *e = s->slots[i];
    if (e == NULL)
        return false;
    bool live = !expired(e, now_ms);
    remove_at(s, i);
    return live;
}

size_t store_count(const struct store *s)
{
    return s->count;
}

size_t store_sweep(struct store *s, int64_t now_ms)
{
    size_t deleted = 0;
    for (int round = 0; round < SWEEP_ROUNDS; round++) {
        if (s->volatile_keys == 0)
            break;
        size_t looked = 0, gone = 0;
        size_t i = s->sweep_cursor & (s->cap - 1);
        for (int visits = 0; visits < SWEEP_SLOTS && looked < SWEEP_KEYS;
             visits++) {
            struct entry *e = s->slots[i];
            if (e != NULL && e->expire_ms != 0) {
                looked++;
                if (e->expire_ms <= now_ms) {
                    gone++;
                    /* The backward shift may move an unvisited key into
                     * slot i: look at slot i again. */
                    remove_at(s, i);
                    continue;
                }
            }
            i = (i + 1) & (s->cap - 1);
        }
        s->sweep_cursor = i;
        deleted += gone;
        if (gone * 4 <= looked || looked == 0)
            break;
    }
    return deleted;
}
