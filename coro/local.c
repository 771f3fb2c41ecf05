/*
 * Coroutine-local storage: per key, a stack of values per coroutine, for
 * request contexts pushed and popped as a request passes through layers.
 *
 * Keys are process-wide (like pthread keys): a slot index plus a
 * generation, so a deleted key's slot can be reused without old values
 * being mistaken for the new key's.  Each coroutine keeps its values in
 * one list, newest first; the number of live values per coroutine is
 * small, so a walk beats any index.
 */
#include "coro_internal.h"

#include <pthread.h>

#define SLOT_BITS 11 /* 2048 > CORO_KEYS_MAX slots */

struct coro__local {
    struct coro__local *next; /* older value */
    coro_key_t key;           /* key it belongs to */
    void *value;              /* owned by the application */
};

static struct {
    pthread_mutex_t lock;
    struct {
        void (*dtor)(void *);  /* may be NULL */
        uint32_t gen;          /* bumped on delete */
        bool used;             /* a live key holds it */
    } slot[CORO_KEYS_MAX];
} keys = {.lock = PTHREAD_MUTEX_INITIALIZER};

static coro_key_t make_key(uint32_t slot, uint32_t gen)
{
    return gen << SLOT_BITS | (slot + 1);
}

/* True if key is live; *dtor receives its destructor. */
static bool key_valid(coro_key_t key, void (**dtor)(void *))
{
    uint32_t slot = (key & ((1u << SLOT_BITS) - 1)) - 1;
    if (key == 0 || slot >= CORO_KEYS_MAX)
        return false;
    pthread_mutex_lock(&keys.lock);
    bool ok = keys.slot[slot].used &&
              make_key(slot, keys.slot[slot].gen) == key;
    if (ok && dtor != NULL)
        *dtor = keys.slot[slot].dtor;
    pthread_mutex_unlock(&keys.lock);
    return ok;
}

int coro_key_create(coro_key_t *key, void (*dtor)(void *))
{
    if (key == NULL) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&keys.lock);
    for (uint32_t i = 0; i < CORO_KEYS_MAX; i++) {
        if (!keys.slot[i].used) {
            keys.slot[i].used = true;
            keys.slot[i].dtor = dtor;
            /* Generations stay within the 21 bits above the slot. */
            keys.slot[i].gen = (keys.slot[i].gen + 1) & 0x1fffff;
            if (keys.slot[i].gen == 0)
                keys.slot[i].gen = 1;
            *key = make_key(i, keys.slot[i].gen);
            pthread_mutex_unlock(&keys.lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&keys.lock);
    errno = EAGAIN;
    return -1;
}

int coro_key_delete(coro_key_t key)
{
    if (!key_valid(key, NULL)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&keys.lock);
    keys.slot[(key & ((1u << SLOT_BITS) - 1)) - 1].used = false;
    pthread_mutex_unlock(&keys.lock);
    return 0;
}

/* The calling coroutine, after checking key; NULL with errno. */
static struct coro *self_for(coro_key_t key)
{
    if (!key_valid(key, NULL)) {
        errno = EINVAL;
        return NULL;
    }
    return coro__self();
}

static struct coro__local **find(struct coro *co, coro_key_t key)
{
    struct coro__local **link = &co->locals;
    while (*link != NULL && (*link)->key != key)
        link = &(*link)->next;
    return link;
}

int coro_local_push(coro_key_t key, void *value)
{
    struct coro *co = self_for(key);
    if (co == NULL)
        return -1;
    struct coro__local *l = coro__sys_malloc(sizeof *l);
    if (l == NULL)
        return -1;
    *l = (struct coro__local){.next = co->locals, .key = key, .value = value};
    co->locals = l;
    return 0;
}

int coro_local_pop(coro_key_t key, void **value)
{
    struct coro *co = self_for(key);
    if (co == NULL)
        return -1;
    struct coro__local **link = find(co, key), *l = *link;
    if (l == NULL) {
        errno = ENOENT;
        return -1;
    }
    *link = l->next;
    if (value != NULL)
        *value = l->value;
    coro__sys_free(l);
    return 0;
}

void *coro_local_get(coro_key_t key)
{
    struct coro *co = self_for(key);
    if (co == NULL)
        return NULL;
    struct coro__local *l = *find(co, key);
    if (l == NULL) {
        errno = ENOENT;
        return NULL;
    }
    return l->value;
}

int coro_local_set(coro_key_t key, void *value, void **old)
{
    struct coro *co = self_for(key);
    if (co == NULL)
        return -1;
    struct coro__local *l = *find(co, key);
    if (l == NULL) {
        if (coro_local_push(key, value) != 0)
            return -1;
        if (old != NULL)
            *old = NULL;
        return 0;
    }
    if (old != NULL)
        *old = l->value;
    l->value = value;
    return 0;
}

size_t coro_local_depth(coro_key_t key)
{
    struct sched *s = coro__tls_sched;
    if (s == NULL || s->current == NULL || !key_valid(key, NULL))
        return 0;
    size_t n = 0;
    for (struct coro__local *l = s->current->locals; l; l = l->next)
        n += l->key == key;
    return n;
}

void coro__local_exit(struct coro *co)
{
    /* Newest first, so inner contexts are torn down before outer ones. */
    while (co->locals != NULL) {
        struct coro__local *l = co->locals;
        co->locals = l->next;
        void (*dtor)(void *) = NULL;
        if (l->value != NULL && key_valid(l->key, &dtor) && dtor != NULL)
            dtor(l->value);
        coro__sys_free(l);
    }
}
