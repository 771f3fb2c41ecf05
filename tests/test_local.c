/*
 * Coroutine-local storage: keys, per-coroutine stacks of values, the
 * destructors run when a coroutine ends, and every error of the API.
 * Keys are process-wide, but each Criterion test runs in its own process,
 * so a test may use up or leave behind keys without harming the next one;
 * the tests still delete what they create.
 */
#include "helpers.h"

#include "coro_internal.h" /* coro__sys_fail: the allocation seam */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

TestSuite(local, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);
TestSuite(local_key, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 30);

/* ------------------------------------------------------------------ */
/* What the destructors saw, in the order they ran.                    */

static void *freed[16];
static size_t nfreed;

static void record_dtor(void *value)
{
    cr_assert_lt(nfreed, sizeof freed / sizeof freed[0]);
    freed[nfreed++] = value;
}

/* A second destructor, to tell two keys' destructors apart. */
static void *freed_other[16];
static size_t nfreed_other;

static void record_other_dtor(void *value)
{
    cr_assert_lt(nfreed_other, sizeof freed_other / sizeof freed_other[0]);
    freed_other[nfreed_other++] = value;
}

static coro_key_t new_key(void (*dtor)(void *))
{
    coro_key_t k = 0;
    cr_assert_eq(coro_key_create(&k, dtor), 0, "errno %d", errno);
    cr_assert_neq(k, 0, "0 is never a valid key");
    return k;
}

/* ------------------------------------------------------------------ */
/* Values are per coroutine.                                           */

struct own {
    coro_key_t key;
    int value;       /* the address is what this coroutine pushes */
    void *seen[3];   /* get after each yield */
    size_t depth[3]; /* depth after each yield */
};

static int push_and_yield(void *arg)
{
    struct own *o = arg;
    cr_assert_eq(coro_local_push(o->key, &o->value), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(coro_yield(), 0);
        o->seen[i] = coro_local_get(o->key);
        o->depth[i] = coro_local_depth(o->key);
    }
    void *v = NULL;
    cr_assert_eq(coro_local_pop(o->key, &v), 0);
    cr_assert_eq(v, &o->value);
    return 0;
}

Test(local, two_coroutines_under_one_key_each_see_only_their_own_value)
{
    coro_key_t k = new_key(NULL);
    struct own a = {.key = k}, b = {.key = k};
    cr_assert_not_null(coro_spawn(push_and_yield, &a, "a"));
    cr_assert_not_null(coro_spawn(push_and_yield, &b, "b"));
    cr_assert_eq(coro_event_loop(), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(a.seen[i], &a.value, "a, after yield %d", i);
        cr_assert_eq(b.seen[i], &b.value, "b, after yield %d", i);
        cr_assert_eq(a.depth[i], 1);
        cr_assert_eq(b.depth[i], 1);
    }
    cr_assert_eq(coro_key_delete(k), 0);
}

struct fresh {
    coro_key_t key;
    void *seen;
    int err;
    size_t depth;
};

static int look_without_pushing(void *arg)
{
    struct fresh *f = arg;
    errno = 0;
    f->seen = coro_local_get(f->key);
    f->err = errno;
    f->depth = coro_local_depth(f->key);
    return 0;
}

static int push_then_spawn(void *arg)
{
    struct fresh *f = arg;
    static int mine;
    cr_assert_eq(coro_local_push(f->key, &mine), 0);
    cr_assert_not_null(coro_spawn(look_without_pushing, f, "child"));
    cr_assert_eq(coro_yield(), 0); /* the child runs and looks */
    cr_assert_eq(coro_local_pop(f->key, NULL), 0);
    return 0;
}

Test(local, a_spawned_coroutine_does_not_inherit_its_spawners_values)
{
    struct fresh f = {.key = new_key(NULL), .seen = &f};
    cr_assert_eq(run_in_coro(push_then_spawn, &f), 0);
    cr_assert_null(f.seen);
    cr_assert_eq(f.err, ENOENT);
    cr_assert_eq(f.depth, 0);
    cr_assert_eq(coro_key_delete(f.key), 0);
}

/* ------------------------------------------------------------------ */
/* Push and pop form a stack: a request context stack, as in Flask.    */

struct ctx_stack {
    coro_key_t key;
    int outer, inner;
    void *top_after_outer, *top_after_inner, *popped, *top_after_pop;
    size_t depth_after_inner, depth_after_pop, depth_at_end;
    void *popped_last;
};

static int request_contexts(void *arg)
{
    struct ctx_stack *c = arg;
    cr_assert_eq(coro_local_push(c->key, &c->outer), 0);
    c->top_after_outer = coro_local_get(c->key);
    cr_assert_eq(coro_local_push(c->key, &c->inner), 0);
    c->top_after_inner = coro_local_get(c->key);
    c->depth_after_inner = coro_local_depth(c->key);
    cr_assert_eq(coro_local_pop(c->key, &c->popped), 0);
    c->top_after_pop = coro_local_get(c->key);
    c->depth_after_pop = coro_local_depth(c->key);
    cr_assert_eq(coro_local_pop(c->key, &c->popped_last), 0);
    c->depth_at_end = coro_local_depth(c->key);
    return 0;
}

Test(local, push_and_pop_nest_like_request_contexts)
{
    struct ctx_stack c = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(request_contexts, &c), 0);
    cr_assert_eq(c.top_after_outer, &c.outer);
    cr_assert_eq(c.top_after_inner, &c.inner, "get sees the innermost");
    cr_assert_eq(c.depth_after_inner, 2);
    cr_assert_eq(c.popped, &c.inner, "pop returns the innermost");
    cr_assert_eq(c.top_after_pop, &c.outer, "the outer one is back");
    cr_assert_eq(c.depth_after_pop, 1);
    cr_assert_eq(c.popped_last, &c.outer);
    cr_assert_eq(c.depth_at_end, 0);
    cr_assert_eq(nfreed, 0, "popped values are the caller's");
    cr_assert_eq(coro_key_delete(c.key), 0);
}

struct two_keys {
    coro_key_t a, b;
    int va, vb;
    void *top_a, *top_b;
    size_t depth_a, depth_b;
};

static int push_under_two_keys(void *arg)
{
    struct two_keys *t = arg;
    cr_assert_eq(coro_local_push(t->a, &t->va), 0);
    cr_assert_eq(coro_local_push(t->b, &t->vb), 0);
    t->top_a = coro_local_get(t->a);
    t->top_b = coro_local_get(t->b);
    t->depth_a = coro_local_depth(t->a);
    t->depth_b = coro_local_depth(t->b);
    cr_assert_eq(coro_local_pop(t->a, NULL), 0, "pop a under b's push");
    cr_assert_eq(coro_local_get(t->b), &t->vb);
    cr_assert_eq(coro_local_pop(t->b, NULL), 0);
    return 0;
}

Test(local, each_key_has_its_own_stack)
{
    struct two_keys t = {.a = new_key(NULL), .b = new_key(NULL)};
    cr_assert_neq(t.a, t.b);
    cr_assert_eq(run_in_coro(push_under_two_keys, &t), 0);
    cr_assert_eq(t.top_a, &t.va);
    cr_assert_eq(t.top_b, &t.vb);
    cr_assert_eq(t.depth_a, 1);
    cr_assert_eq(t.depth_b, 1);
    cr_assert_eq(coro_key_delete(t.a), 0);
    cr_assert_eq(coro_key_delete(t.b), 0);
}

struct set {
    coro_key_t key;
    int first, second, third;
    void *old_on_empty, *old_on_top;
    size_t depth_after_first, depth_after_replace;
    void *top, *below;
};

static int set_values(void *arg)
{
    struct set *s = arg;
    s->old_on_empty = &s->old_on_empty; /* must be overwritten */
    cr_assert_eq(coro_local_set(s->key, &s->first, &s->old_on_empty), 0);
    s->depth_after_first = coro_local_depth(s->key);
    cr_assert_eq(coro_local_push(s->key, &s->second), 0);
    cr_assert_eq(coro_local_set(s->key, &s->third, &s->old_on_top), 0);
    s->depth_after_replace = coro_local_depth(s->key);
    cr_assert_eq(coro_local_pop(s->key, &s->top), 0);
    cr_assert_eq(coro_local_pop(s->key, &s->below), 0);
    cr_assert_eq(coro_local_set(s->key, NULL, NULL), 0, "old may be NULL");
    cr_assert_eq(coro_local_pop(s->key, NULL), 0);
    return 0;
}

Test(local, set_replaces_the_top_value_or_pushes_onto_an_empty_stack)
{
    struct set s = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(set_values, &s), 0);
    cr_assert_null(s.old_on_empty, "nothing was replaced");
    cr_assert_eq(s.depth_after_first, 1);
    cr_assert_eq(s.old_on_top, &s.second);
    cr_assert_eq(s.depth_after_replace, 2, "set does not push");
    cr_assert_eq(s.top, &s.third);
    cr_assert_eq(s.below, &s.first);
    cr_assert_eq(nfreed, 0, "a replaced value is the caller's");
    cr_assert_eq(coro_key_delete(s.key), 0);
}

/* ------------------------------------------------------------------ */
/* Destructors.                                                        */

struct ending {
    coro_key_t key, other;
    int v[4];
};

static int leave_three_pushed(void *arg)
{
    struct ending *e = arg;
    cr_assert_eq(coro_local_push(e->key, &e->v[0]), 0);
    cr_assert_eq(coro_local_push(e->key, &e->v[1]), 0);
    cr_assert_eq(coro_local_push(e->key, &e->v[2]), 0);
    return 0;
}

Test(local, destructors_run_at_the_end_innermost_first)
{
    struct ending e = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(leave_three_pushed, &e), 0);
    cr_assert_eq(nfreed, 3);
    cr_assert_eq(freed[0], &e.v[2]);
    cr_assert_eq(freed[1], &e.v[1]);
    cr_assert_eq(freed[2], &e.v[0]);
    cr_assert_eq(coro_key_delete(e.key), 0);
}

static int push_then_pop_some(void *arg)
{
    struct ending *e = arg;
    void *v;
    cr_assert_eq(coro_local_push(e->key, &e->v[0]), 0);
    cr_assert_eq(coro_local_push(e->key, &e->v[1]), 0);
    cr_assert_eq(coro_local_pop(e->key, &v), 0);
    cr_assert_eq(coro_local_push(e->key, &e->v[2]), 0);
    cr_assert_eq(coro_local_pop(e->key, &v), 0);
    return 0;
}

Test(local, destructors_skip_values_already_popped)
{
    struct ending e = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(push_then_pop_some, &e), 0);
    cr_assert_eq(nfreed, 1);
    cr_assert_eq(freed[0], &e.v[0]);
    cr_assert_eq(coro_key_delete(e.key), 0);
}

static int push_null_between(void *arg)
{
    struct ending *e = arg;
    cr_assert_eq(coro_local_push(e->key, &e->v[0]), 0);
    cr_assert_eq(coro_local_push(e->key, NULL), 0);
    cr_assert_eq(coro_local_depth(e->key), 2, "NULL is a value like any");
    cr_assert_eq(coro_local_push(e->key, &e->v[1]), 0);
    return 0;
}

Test(local, destructors_are_not_called_for_null_values)
{
    struct ending e = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(push_null_between, &e), 0);
    cr_assert_eq(nfreed, 2);
    cr_assert_eq(freed[0], &e.v[1]);
    cr_assert_eq(freed[1], &e.v[0]);
    cr_assert_eq(coro_key_delete(e.key), 0);
}

static int push_under_both_keys(void *arg)
{
    struct ending *e = arg;
    cr_assert_eq(coro_local_push(e->key, &e->v[0]), 0);
    cr_assert_eq(coro_local_push(e->other, &e->v[1]), 0);
    cr_assert_eq(coro_local_push(e->key, &e->v[2]), 0);
    cr_assert_eq(coro_local_push(e->other, &e->v[3]), 0);
    return 0;
}

Test(local, each_keys_destructor_gets_only_that_keys_values)
{
    struct ending e = {.key = new_key(record_dtor),
                       .other = new_key(record_other_dtor)};
    cr_assert_eq(run_in_coro(push_under_both_keys, &e), 0);
    cr_assert_eq(nfreed, 2);
    cr_assert_eq(freed[0], &e.v[2]);
    cr_assert_eq(freed[1], &e.v[0]);
    cr_assert_eq(nfreed_other, 2);
    cr_assert_eq(freed_other[0], &e.v[3]);
    cr_assert_eq(freed_other[1], &e.v[1]);
    cr_assert_eq(coro_key_delete(e.key), 0);
    cr_assert_eq(coro_key_delete(e.other), 0);
}

static int push_and_exit(void *arg)
{
    struct ending *e = arg;
    cr_assert_eq(coro_local_push(e->key, &e->v[0]), 0);
    errno = EIO;
    coro_exit(-1);
    cr_assert_fail("coro_exit returned");
    return 0;
}

static void quiet(coro_t *co, int status, int err)
{
    (void)co, (void)status, (void)err;
}

Test(local, destructors_run_for_a_coroutine_that_exits_with_a_failure)
{
    struct ending e = {.key = new_key(record_dtor)};
    coro_set_exit_notifier(quiet);
    coro_t *co = coro_spawn(push_and_exit, &e, "exits");
    cr_assert_not_null(co);
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(nfreed, 1);
    cr_assert_eq(freed[0], &e.v[0]);
    cr_assert_eq(coro_key_delete(e.key), 0);
}

struct destroy_order {
    coro_key_t key;
    int value;
    coro_t *target;
    int rc, status;
    size_t freed_when_joined;
};

static int push_and_sleep(void *arg)
{
    struct destroy_order *d = arg;
    cr_assert_eq(coro_local_push(d->key, &d->value), 0);
    cr_assert_eq(coro_sleep(0.01), 0);
    return 3;
}

static int join_and_count(void *arg)
{
    struct destroy_order *d = arg;
    d->rc = coro_join(d->target, &d->status, NULL);
    d->freed_when_joined = nfreed;
    return 0;
}

Test(local, destructors_have_run_by_the_time_a_joiner_wakes)
{
    struct destroy_order d = {.key = new_key(record_dtor)};
    d.target = coro_spawn(push_and_sleep, &d, "target");
    cr_assert_not_null(d.target);
    cr_assert_not_null(coro_spawn(join_and_count, &d, "joiner"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert_eq(d.rc, 0);
    cr_assert_eq(d.status, 3);
    cr_assert_eq(d.freed_when_joined, 1);
    cr_assert_eq(coro_key_delete(d.key), 0);
}

/* ------------------------------------------------------------------ */
/* Deleting keys.                                                      */

struct deleted {
    coro_key_t key, later;
    int v[2];
    int delete_rc;
    int push_rc, push_err, pop_rc, pop_err, set_rc, set_err;
    void *get;
    int get_err;
    void *later_get;
    int later_get_err;
    size_t later_depth, deleted_depth;
};

static int push_delete_and_look(void *arg)
{
    struct deleted *d = arg;
    cr_assert_eq(coro_local_push(d->key, &d->v[0]), 0);
    cr_assert_eq(coro_local_push(d->key, &d->v[1]), 0);
    d->delete_rc = coro_key_delete(d->key);

    d->push_rc = coro_local_push(d->key, &d->v[0]);
    d->push_err = errno;
    d->pop_rc = coro_local_pop(d->key, NULL);
    d->pop_err = errno;
    d->set_rc = coro_local_set(d->key, &d->v[0], NULL);
    d->set_err = errno;
    errno = 0;
    d->get = coro_local_get(d->key);
    d->get_err = errno;

    /* A new key, perhaps in the deleted key's slot, starts empty. */
    cr_assert_eq(coro_key_create(&d->later, record_dtor), 0);
    errno = 0;
    d->later_get = coro_local_get(d->later);
    d->later_get_err = errno;
    d->later_depth = coro_local_depth(d->later);
    return 0;
}

Test(local_key, a_deleted_key_is_invalid_and_a_new_key_sees_no_old_values)
{
    struct deleted d = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(push_delete_and_look, &d), 0);
    cr_assert_eq(d.delete_rc, 0);
    cr_assert_eq(d.push_rc, -1);
    cr_assert_eq(d.push_err, EINVAL);
    cr_assert_eq(d.pop_rc, -1);
    cr_assert_eq(d.pop_err, EINVAL);
    cr_assert_eq(d.set_rc, -1);
    cr_assert_eq(d.set_err, EINVAL);
    cr_assert_null(d.get);
    cr_assert_eq(d.get_err, EINVAL);
    cr_assert_neq(d.later, d.key, "a new key never equals a deleted one");
    cr_assert_null(d.later_get);
    cr_assert_eq(d.later_get_err, ENOENT);
    cr_assert_eq(d.later_depth, 0);
    cr_assert_eq(nfreed, 0, "values of a deleted key get no destructor");
    cr_assert_eq(coro_key_delete(d.key), -1, "deleted twice");
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_key_delete(d.later), 0);
}

static int push_two_delete_count(void *arg)
{
    struct deleted *d = arg;
    cr_assert_eq(coro_local_push(d->key, &d->v[0]), 0);
    cr_assert_eq(coro_local_push(d->key, &d->v[1]), 0);
    d->delete_rc = coro_key_delete(d->key);
    d->deleted_depth = coro_local_depth(d->key);
    return 0;
}

/* coro.h: "Delete a key: values still pushed are dropped".  Dropped
 * values are no longer pushed, so the calling coroutine has none left. */
Test(local_key, a_deleted_keys_values_are_dropped_at_once)
{
    struct deleted d = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(push_two_delete_count, &d), 0);
    cr_assert_eq(d.delete_rc, 0);
    cr_assert_eq(d.deleted_depth, 0, "dropped, so none left: %zu",
                 d.deleted_depth);
    cr_assert_eq(nfreed, 0);
}

struct cross {
    coro_key_t key;
    int value;
    bool pushed;
};

static int push_and_wait(void *arg)
{
    struct cross *c = arg;
    cr_assert_eq(coro_local_push(c->key, &c->value), 0);
    c->pushed = true;
    cr_assert_eq(coro_yield(), 0); /* the key is deleted meanwhile */
    cr_assert_eq(coro_yield(), 0);
    return 0;
}

static int delete_when_pushed(void *arg)
{
    struct cross *c = arg;
    while (!c->pushed)
        cr_assert_eq(coro_yield(), 0);
    cr_assert_eq(coro_key_delete(c->key), 0);
    return 0;
}

Test(local_key, values_of_a_key_deleted_elsewhere_end_without_destructor)
{
    struct cross c = {.key = new_key(record_dtor)};
    cr_assert_not_null(coro_spawn(push_and_wait, &c, "holder"));
    cr_assert_not_null(coro_spawn(delete_when_pushed, &c, "deleter"));
    cr_assert_eq(coro_event_loop(), 0);
    cr_assert(c.pushed);
    cr_assert_eq(nfreed, 0);
}

Test(local_key, a_key_made_outside_any_coroutine_works_inside_one)
{
    /* Also the normal way: keys are made once, at start-up. */
    struct ending e = {.key = new_key(record_dtor)};
    cr_assert_null(coro_current());
    cr_assert_eq(run_in_coro(leave_three_pushed, &e), 0);
    cr_assert_eq(nfreed, 3);
    cr_assert_eq(coro_key_delete(e.key), 0);
}

/* ------------------------------------------------------------------ */
/* Errors.                                                             */

Test(local_key, create_with_a_null_key_pointer_fails_with_einval)
{
    cr_assert_eq(coro_key_create(NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_key_create(NULL, record_dtor), -1);
    cr_assert_eq(errno, EINVAL);
}

Test(local_key, deleting_key_zero_or_a_made_up_key_fails_with_einval)
{
    coro_key_t k = new_key(NULL);
    const coro_key_t bad[] = {
        0,           k + 1,       k ^ 0x80000000u,
        0xffffffffu, 0xdeadbeefu, (coro_key_t)CORO_KEYS_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i] == k)
            continue;
        errno = 0;
        cr_assert_eq(coro_key_delete(bad[i]), -1, "key %#x", bad[i]);
        cr_assert_eq(errno, EINVAL, "key %#x", bad[i]);
    }
    cr_assert_eq(coro_key_delete(k), 0, "the real key is untouched");
}

struct bad_keys {
    coro_key_t good;
    bool done;
};

static int use_bad_keys(void *arg)
{
    struct bad_keys *b = arg;
    const coro_key_t bad[] = {0, b->good + 1, b->good ^ 0x80000000u,
                              0xffffffffu, 0xdeadbeefu};
    int v = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        coro_key_t k = bad[i];
        if (k == b->good)
            continue;
        errno = 0;
        cr_assert_eq(coro_local_push(k, &v), -1, "push %#x", k);
        cr_assert_eq(errno, EINVAL, "push %#x", k);
        errno = 0;
        cr_assert_eq(coro_local_pop(k, NULL), -1, "pop %#x", k);
        cr_assert_eq(errno, EINVAL, "pop %#x", k);
        errno = 0;
        cr_assert_null(coro_local_get(k), "get %#x", k);
        cr_assert_eq(errno, EINVAL, "get %#x", k);
        errno = 0;
        cr_assert_eq(coro_local_set(k, &v, NULL), -1, "set %#x", k);
        cr_assert_eq(errno, EINVAL, "set %#x", k);
        cr_assert_eq(coro_local_depth(k), 0);
    }
    cr_assert_eq(coro_local_depth(b->good), 0, "nothing was pushed");
    b->done = true;
    return 0;
}

Test(local_key, push_pop_get_and_set_with_a_bad_key_fail_with_einval)
{
    struct bad_keys b = {.good = new_key(NULL)};
    cr_assert_eq(run_in_coro(use_bad_keys, &b), 0);
    cr_assert(b.done);
    cr_assert_eq(coro_key_delete(b.good), 0);
}

Test(local, every_call_outside_a_coroutine_fails_with_eperm)
{
    coro_key_t k = new_key(record_dtor);
    int v = 0;
    void *out = &out;
    cr_assert_eq(coro_local_push(k, &v), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_local_pop(k, &out), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(out, &out, "a failed pop writes nothing");
    errno = 0;
    cr_assert_null(coro_local_get(k));
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_local_set(k, &v, &out), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_local_depth(k), 0, "0 outside");
    cr_assert_eq(coro_key_delete(k), 0);
}

struct empty {
    coro_key_t key;
    int pop_rc, pop_err, get_err;
    void *get, *popped;
};

static int use_empty_stack(void *arg)
{
    struct empty *e = arg;
    e->popped = &e->popped;
    e->pop_rc = coro_local_pop(e->key, &e->popped);
    e->pop_err = errno;
    errno = 0;
    e->get = coro_local_get(e->key);
    e->get_err = errno;
    return 0;
}

Test(local, pop_and_get_on_an_empty_stack_fail_with_enoent)
{
    struct empty e = {.key = new_key(NULL)};
    cr_assert_eq(run_in_coro(use_empty_stack, &e), 0);
    cr_assert_eq(e.pop_rc, -1);
    cr_assert_eq(e.pop_err, ENOENT);
    cr_assert_eq(e.popped, &e.popped, "a failed pop writes nothing");
    cr_assert_null(e.get);
    cr_assert_eq(e.get_err, ENOENT);
    cr_assert_eq(coro_key_delete(e.key), 0);
}

static int pop_one_too_many(void *arg)
{
    struct empty *e = arg;
    int v = 0;
    cr_assert_eq(coro_local_push(e->key, &v), 0);
    cr_assert_eq(coro_local_pop(e->key, NULL), 0, "value may be NULL");
    e->pop_rc = coro_local_pop(e->key, NULL);
    e->pop_err = errno;
    return 0;
}

Test(local, popping_more_than_was_pushed_fails_with_enoent)
{
    struct empty e = {.key = new_key(NULL)};
    cr_assert_eq(run_in_coro(pop_one_too_many, &e), 0);
    cr_assert_eq(e.pop_rc, -1);
    cr_assert_eq(e.pop_err, ENOENT);
    cr_assert_eq(coro_key_delete(e.key), 0);
}

Test(local_key, keys_beyond_keys_max_fail_with_eagain_until_one_is_freed)
{
    static coro_key_t made[CORO_KEYS_MAX + 1];
    size_t n = 0;
    int rc;
    while ((rc = coro_key_create(&made[n], NULL)) == 0) {
        cr_assert_lt(n, CORO_KEYS_MAX, "more than CORO_KEYS_MAX keys");
        n++;
    }
    cr_assert_eq(rc, -1);
    cr_assert_eq(errno, EAGAIN);
    cr_assert_eq(n, CORO_KEYS_MAX, "a fresh process has every key free");
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n && j < i + 4; j++)
            cr_assert_neq(made[i], made[j]);

    /* Freeing one makes room for exactly one. */
    cr_assert_eq(coro_key_delete(made[17]), 0);
    cr_assert_eq(coro_key_create(&made[17], NULL), 0);
    coro_key_t extra;
    cr_assert_eq(coro_key_create(&extra, NULL), -1);
    cr_assert_eq(errno, EAGAIN);

    for (size_t i = 0; i < n; i++)
        cr_assert_eq(coro_key_delete(made[i]), 0, "key %zu", i);
    coro_key_t again = 0;
    cr_assert_eq(coro_key_create(&again, NULL), 0);
    cr_assert_eq(coro_key_delete(again), 0);
}

/* ------------------------------------------------------------------ */
/* Allocation failure, through the sys.c seam.                         */

struct nomem {
    coro_key_t key;
    int kept;
    int push_rc, push_err, set_rc, set_err;
    size_t depth_before, depth_after, depth_after_set;
    void *top_after;
    int retry_rc;
    size_t depth_retry;
    void *old; /* set's out-parameter */
};

static int push_without_memory(void *arg)
{
    struct nomem *m = arg;
    int other = 0;
    cr_assert_eq(coro_local_push(m->key, &m->kept), 0);
    m->depth_before = coro_local_depth(m->key);
    coro__sys_fail(CORO__SYS_MALLOC, 1, ENOMEM);
    m->push_rc = coro_local_push(m->key, &other);
    m->push_err = errno;
    m->depth_after = coro_local_depth(m->key);
    m->top_after = coro_local_get(m->key);
    m->retry_rc = coro_local_push(m->key, &other);
    m->depth_retry = coro_local_depth(m->key);
    cr_assert_eq(coro_local_pop(m->key, NULL), 0);
    cr_assert_eq(coro_local_pop(m->key, NULL), 0);
    return 0;
}

Test(local, a_push_that_cannot_allocate_fails_with_enomem_and_changes_nothing)
{
    struct nomem m = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(push_without_memory, &m), 0);
    cr_assert_eq(m.push_rc, -1);
    cr_assert_eq(m.push_err, ENOMEM);
    cr_assert_eq(m.depth_before, 1);
    cr_assert_eq(m.depth_after, 1, "depth unchanged");
    cr_assert_eq(m.top_after, &m.kept, "the top is unchanged");
    cr_assert_eq(m.retry_rc, 0, "the failure was one-off");
    cr_assert_eq(m.depth_retry, 2);
    cr_assert_eq(nfreed, 0);
    cr_assert_eq(coro_key_delete(m.key), 0);
}

static int set_without_memory(void *arg)
{
    struct nomem *m = arg;
    m->old = &m->old;
    coro__sys_fail(CORO__SYS_MALLOC, 1, ENOMEM);
    m->set_rc = coro_local_set(m->key, &m->kept, &m->old);
    m->set_err = errno;
    m->depth_after_set = coro_local_depth(m->key);
    return 0;
}

Test(local, a_set_on_an_empty_stack_that_cannot_allocate_fails_with_enomem)
{
    struct nomem m = {.key = new_key(record_dtor)};
    cr_assert_eq(run_in_coro(set_without_memory, &m), 0);
    cr_assert_eq(m.set_rc, -1);
    cr_assert_eq(m.set_err, ENOMEM);
    cr_assert_eq(m.depth_after_set, 0);
    cr_expect_eq(m.old, &m.old, "a failed set writes nothing to *old");
    cr_assert_eq(nfreed, 0);
    cr_assert_eq(coro_key_delete(m.key), 0);
}
