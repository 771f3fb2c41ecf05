/*
 * The sync primitives: mutex, semaphore, inverted semaphore, condition
 * variable, read-write lock, fifo, bounded channel, one-shot event.
 *
 * Each suite checks the primitive's own rules, its errors, FIFO order,
 * timeouts and interrupts, and Shrapnel's robustness contract in both
 * orders: two coroutines wait, one is interrupted and the object wakes
 * one waiter (interrupt then wake, and wake then interrupt).  The
 * interrupted call must fail with the interrupt's errno, the other waiter
 * must get what the wake gave, and the object must be left consistent.
 * Coroutines are ordered by yields and joins, never by sleeping.
 */
#include "helpers.h"
#include "coro_internal.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

TestSuite(mutex, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 10);
TestSuite(sem, .init = sched_setup, .fini = sched_expect_empty, .timeout = 10);
TestSuite(isem, .init = sched_setup, .fini = sched_expect_empty, .timeout = 10);
TestSuite(cond, .init = sched_setup, .fini = sched_expect_empty, .timeout = 10);
TestSuite(rwlock, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 10);
TestSuite(fifo, .init = sched_setup, .fini = sched_expect_empty, .timeout = 10);
TestSuite(chan, .init = sched_setup, .fini = sched_expect_empty, .timeout = 10);
TestSuite(event, .init = sched_setup, .fini = sched_expect_empty,
          .timeout = 10);
TestSuite(sync, .init = sched_setup, .fini = sched_expect_empty, .timeout = 10);

/* ------------------------------------------------------------------ */
/* Waiters: joinable coroutines that make one call and record it.     */

static int finished; /* waiters that have returned so far */

struct waiter {
    int (*op)(struct waiter *w);    /* the call under test */
    void *obj;                      /* the primitive */
    intptr_t arg;                   /* units, level, item to send... */
    int rc, err;                    /* what op returned, its errno if -1 */
    intptr_t got;                   /* what it received */
    int order;                      /* 1 for the first waiter to return */
    coro_t *co;                     /* its coroutine, until reaped */
    int (*inner)(struct waiter *w); /* for timed_op: the call it times */
};

static int waiter_run(void *p)
{
    struct waiter *w = p;
    w->rc = w->op(w);
    w->err = w->rc != 0 ? errno : 0;
    w->order = ++finished;
    return 0;
}

static void start(struct waiter *w)
{
    coro_opts_t opts = {.name = "waiter", .joinable = true};
    w->co = coro_spawn_opts(waiter_run, w, &opts);
}

static void reap(struct waiter *w)
{
    while (coro_join(w->co, NULL, NULL) != 0 && errno == EINTR)
        ; /* the driver is never interrupted; keep the fixture clean */
    w->co = NULL;
}

/* Whether every waiter in ws[0..n) is parked. */
static bool all_waiting(struct waiter *ws, int n)
{
    for (int i = 0; i < n; i++)
        if (coro_state(ws[i].co) != CORO_WAITING)
            return false;
    return true;
}

/* ------------------------------------------------------------------ */
/* The robustness contract, for any primitive.                        */

struct contract {
    int (*setup)(void *obj);     /* run by the driver first, or NULL */
    int (*op)(struct waiter *w); /* both waiters' blocking call */
    int (*wake)(void *obj);      /* lets exactly one waiter through */
    int (*final)(void *obj);     /* run by the driver last, or NULL */
    void *obj;
    bool wake_first;    /* wake then interrupt; else reverse */
    struct waiter a, b; /* out: a is interrupted, b is not */
    bool parked;        /* out: both waited before the wake */
    int final_rc;       /* out: what final() returned */
};

static int contract_run(void *p)
{
    struct contract *c = p;
    if (c->setup != NULL && c->setup(c->obj) != 0)
        return -1;
    c->a = (struct waiter){.op = c->op, .obj = c->obj, .arg = 1};
    c->b = (struct waiter){.op = c->op, .obj = c->obj, .arg = 2};
    start(&c->a);
    start(&c->b);
    coro_yield(); /* both run and block */
    c->parked = coro_state(c->a.co) == CORO_WAITING &&
                coro_state(c->b.co) == CORO_WAITING;
    if (c->wake_first) {
        c->wake(c->obj);
        coro_interrupt(c->a.co, EINTR);
    } else {
        coro_interrupt(c->a.co, EINTR);
        c->wake(c->obj);
    }
    reap(&c->a);
    reap(&c->b);
    c->final_rc = c->final != NULL ? c->final(c->obj) : 0;
    return 0;
}

/* Run c and check the contract: a fails with EINTR, b succeeds. */
static void contract_check(struct contract *c)
{
    cr_assert_eq(run_in_coro(contract_run, c), 0);
    cr_assert(c->parked, "both waiters must block first");
    cr_assert_eq(c->a.rc, -1, "the interrupted waiter must fail");
    cr_assert_eq(c->a.err, EINTR);
    cr_assert_eq(c->b.rc, 0, "the other waiter must get the wake-up: %s",
                 strerror(c->b.err));
    cr_assert_eq(c->final_rc, 0, "the object must be left consistent");
}

/* A waiter op that makes w->inner's call under a 20 ms deadline. */
static int timed_inner(void *p)
{
    struct waiter *w = p;
    return w->inner(w);
}

static int timed_op(struct waiter *w)
{
    return coro_with_timeout(0.02, timed_inner, w);
}

static int timeout_run(void *p)
{
    struct contract *c = p;
    if (c->setup != NULL && c->setup(c->obj) != 0)
        return -1;
    c->a = (struct waiter){
        .op = timed_op, .inner = c->op, .obj = c->obj, .arg = 1};
    start(&c->a);
    reap(&c->a); /* returns once its deadline has passed */
    c->final_rc = c->final != NULL ? c->final(c->obj) : 0;
    return 0;
}

/* Run c's op under a deadline while setup() keeps it waiting: it must
 * fail with ETIMEDOUT and leave the object as final() expects. */
static void timeout_check(struct contract *c)
{
    cr_assert_eq(run_in_coro(timeout_run, c), 0);
    cr_assert_eq(c->a.rc, -1, "the call must time out");
    cr_assert_eq(c->a.err, ETIMEDOUT);
    cr_assert_eq(c->final_rc, 0, "the object must be left consistent");
}

/* ------------------------------------------------------------------ */
/* mutex                                                              */

static int unlock_once(void *arg)
{
    return coro_mutex_unlock(arg);
}

Test(mutex, unlock_of_a_mutex_nobody_holds_fails_with_eperm)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    cr_assert_eq(run_in_coro(unlock_once, &m), -1);
    cr_assert_eq(test_errno, EPERM);
}

static int lock_op(struct waiter *w)
{
    if (coro_mutex_lock(w->obj) != 0)
        return -1;
    w->got = 1;
    coro_yield(); /* hold it a while: others must queue */
    return coro_mutex_unlock(w->obj);
}

static int hold_then_foreign_unlock(void *arg)
{
    coro_mutex_t *m = arg;
    struct waiter w = {.op = lock_op, .obj = m};
    start(&w); /* it locks, yields, unlocks */
    coro_yield();
    int rc = coro_mutex_unlock(m); /* held by w, not by us */
    int err = errno;
    reap(&w);
    errno = err;
    return rc;
}

Test(mutex, unlock_by_a_coroutine_that_does_not_hold_it_fails_with_eperm)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    cr_assert_eq(run_in_coro(hold_then_foreign_unlock, &m), -1);
    cr_assert_eq(test_errno, EPERM);
    cr_assert_not(coro_mutex_locked(&m));
}

static int lock_twice(void *arg)
{
    coro_mutex_t *m = arg;
    struct waiter w = {.op = lock_op, .obj = m};
    if (coro_mutex_lock(m) != 0 || coro_mutex_lock(m) != 0)
        return -1;
    start(&w);
    coro_yield();
    bool waits = coro_state(w.co) == CORO_WAITING;
    coro_mutex_unlock(m);
    coro_yield();
    bool still = coro_state(w.co) == CORO_WAITING; /* one lock left */
    coro_mutex_unlock(m);
    reap(&w);
    return waits && still && w.got == 1 ? 0 : -1;
}

Test(mutex, is_recursive_and_released_by_the_last_unlock)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    cr_assert_eq(run_in_coro(lock_twice, &m), 0);
    cr_assert_not(coro_mutex_locked(&m));
}

static int lock_in_order(void *arg)
{
    coro_mutex_t *m = arg;
    struct waiter ws[3];
    coro_mutex_lock(m);
    for (int i = 0; i < 3; i++) {
        ws[i] = (struct waiter){.op = lock_op, .obj = m};
        start(&ws[i]);
    }
    coro_yield();
    bool parked = all_waiting(ws, 3);
    coro_mutex_unlock(m);
    /* Handed to the first waiter before it runs: no barging. */
    bool busy = coro_mutex_trylock(m) == -1 && errno == EBUSY;
    bool ordered = true;
    for (int i = 0; i < 3; i++) {
        reap(&ws[i]);
        ordered = ordered && ws[i].rc == 0 && ws[i].order == i + 1;
    }
    return parked && busy && ordered ? 0 : -1;
}

Test(mutex, waiters_get_it_in_arrival_order_and_newcomers_do_not_barge)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    finished = 0;
    cr_assert_eq(run_in_coro(lock_in_order, &m), 0);
    cr_assert_not(coro_mutex_locked(&m));
}

static int mutex_lock_obj(void *m)
{
    return coro_mutex_lock(m);
}

static int mutex_unlock_obj(void *m)
{
    return coro_mutex_unlock(m);
}

/* The driver still holds m: its unlock works and frees it. */
static int mutex_held_by_driver(void *m)
{
    return coro_mutex_unlock(m) == 0 && !coro_mutex_locked(m) ? 0 : -1;
}

static int mutex_free(void *m)
{
    return coro_mutex_locked(m) ? -1 : 0;
}

Test(mutex, lock_fails_with_etimedout_under_a_deadline_and_changes_nothing)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    struct contract c = {.setup = mutex_lock_obj,
                         .op = lock_op,
                         .final = mutex_held_by_driver,
                         .obj = &m};
    timeout_check(&c);
}

Test(mutex, interrupt_then_unlock_gives_it_to_the_other_waiter)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    struct contract c = {.setup = mutex_lock_obj,
                         .op = lock_op,
                         .wake = mutex_unlock_obj,
                         .final = mutex_free,
                         .obj = &m};
    contract_check(&c);
    cr_assert_eq(c.b.got, 1);
}

Test(mutex, unlock_then_interrupt_passes_it_on_to_the_other_waiter)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    struct contract c = {.setup = mutex_lock_obj,
                         .op = lock_op,
                         .wake = mutex_unlock_obj,
                         .final = mutex_free,
                         .obj = &m,
                         .wake_first = true};
    contract_check(&c);
    cr_assert_eq(c.b.got, 1);
}

static int trylock_busy(void *arg)
{
    coro_mutex_t *m = arg;
    struct waiter w = {.op = lock_op, .obj = m};
    start(&w); /* locks and yields holding it */
    coro_yield();
    int rc = coro_mutex_trylock(m);
    int err = errno;
    reap(&w);
    if (rc != -1 || err != EBUSY)
        return -1;
    if (coro_mutex_trylock(m) != 0) /* free now */
        return -1;
    return coro_mutex_unlock(m);
}

Test(mutex, trylock_of_a_mutex_another_holds_fails_with_ebusy)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    cr_assert_eq(run_in_coro(trylock_busy, &m), 0);
    cr_assert_not(coro_mutex_locked(&m));
}

Test(mutex, calls_outside_a_coroutine_fail_with_eperm_and_null_with_einval)
{
    coro_mutex_t m;
    cr_assert_eq(coro_mutex_init(&m), 0);
    cr_assert_eq(coro_mutex_lock(&m), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_mutex_trylock(&m), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_mutex_unlock(&m), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_mutex_lock(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_mutex_init(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_not(coro_mutex_locked(&m));
}

static int where_lock(void *arg)
{
    coro_mutex_t *m = arg;
    struct waiter w = {.op = lock_op, .obj = m};
    char buf[128];
    coro_mutex_lock(m);
    start(&w);
    coro_yield();
    coro_where(w.co, buf, sizeof buf);
    coro_mutex_unlock(m);
    reap(&w);
    return strncmp(buf, "mutex at ", 9) == 0 && strstr(buf, "lock_op") ? 0 : -1;
}

Test(mutex, a_waiter_shows_where_it_waits)
{
    coro_mutex_t m = CORO_MUTEX_INIT;
    cr_assert_eq(run_in_coro(where_lock, &m), 0);
}

/* ------------------------------------------------------------------ */
/* sem                                                                */

static int acquire_op(struct waiter *w)
{
    if (coro_sem_acquire(w->obj, (size_t)w->arg) != 0)
        return -1;
    w->got = w->arg;
    return 0;
}

static int release_one(void *s)
{
    return coro_sem_release(s, 1);
}

/* Nothing left over, nothing lost: the count is back to 0. */
static int sem_empty(void *s)
{
    return coro_sem_value(s) == 0 && coro_sem_try_acquire(s, 1) == -1 ? 0 : -1;
}

static int acquire_one_op(struct waiter *w)
{
    w->arg = 1;
    return acquire_op(w);
}

Test(sem, interrupt_then_release_gives_the_unit_to_the_other_waiter)
{
    coro_sem_t s = CORO_SEM_INIT(0);
    struct contract c = {.op = acquire_one_op,
                         .wake = release_one,
                         .final = sem_empty,
                         .obj = &s};
    contract_check(&c);
    cr_assert_eq(c.b.got, 1);
}

Test(sem, release_then_interrupt_passes_the_unit_on_to_the_other_waiter)
{
    coro_sem_t s = CORO_SEM_INIT(0);
    struct contract c = {.op = acquire_one_op,
                         .wake = release_one,
                         .final = sem_empty,
                         .obj = &s,
                         .wake_first = true};
    contract_check(&c);
    cr_assert_eq(c.b.got, 1);
}

Test(sem, acquire_fails_with_etimedout_under_a_deadline_and_changes_nothing)
{
    coro_sem_t s = CORO_SEM_INIT(0);
    struct contract c = {.op = acquire_one_op, .final = sem_empty, .obj = &s};
    timeout_check(&c);
}

/* A wants 3, then B wants 1: strictly first come, first served. */
static int head_of_line(void *arg)
{
    coro_sem_t *s = arg;
    struct waiter a = {.op = acquire_op, .obj = s, .arg = 3};
    struct waiter b = {.op = acquire_op, .obj = s, .arg = 1};
    start(&a);
    start(&b);
    coro_yield();
    coro_sem_release(s, 1);
    coro_yield();
    bool held_back = coro_state(b.co) == CORO_WAITING && coro_sem_value(s) == 1;
    bool no_barging = coro_sem_try_acquire(s, 1) == -1 && errno == EBUSY;
    coro_sem_release(s, 3); /* A takes 3, B takes 1 */
    reap(&a);
    reap(&b);
    return held_back && no_barging && a.order == 1 && b.order == 2 &&
                   coro_sem_value(s) == 0
               ? 0
               : -1;
}

Test(sem, a_large_request_at_the_head_holds_back_smaller_ones)
{
    coro_sem_t s = CORO_SEM_INIT(0);
    finished = 0;
    cr_assert_eq(run_in_coro(head_of_line, &s), 0);
}

/* The interrupted head waiter lets the ones behind it through. */
static int head_leaves(void *arg)
{
    coro_sem_t *s = arg;
    struct waiter a = {.op = acquire_op, .obj = s, .arg = 5};
    struct waiter b = {.op = acquire_op, .obj = s, .arg = 2};
    coro_sem_release(s, 2);
    start(&a);
    start(&b);
    coro_yield();
    bool parked = coro_state(b.co) == CORO_WAITING;
    coro_interrupt(a.co, ECANCELED);
    reap(&a);
    reap(&b);
    return parked && a.err == ECANCELED && b.rc == 0 && coro_sem_value(s) == 0
               ? 0
               : -1;
}

Test(sem, an_interrupted_head_waiter_lets_the_next_ones_through)
{
    coro_sem_t s = CORO_SEM_INIT(0);
    cr_assert_eq(run_in_coro(head_leaves, &s), 0);
}

Test(sem, counts_and_argument_errors)
{
    coro_sem_t s;
    cr_assert_eq(coro_sem_init(&s, 2), 0);
    cr_assert_eq(coro_sem_try_acquire(&s, 2), 0);
    cr_assert_eq(coro_sem_try_acquire(&s, 1), -1);
    cr_assert_eq(errno, EBUSY);
    cr_assert_eq(coro_sem_try_acquire(&s, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_sem_release(&s, SIZE_MAX), 0);
    cr_assert_eq(coro_sem_release(&s, 1), -1);
    cr_assert_eq(errno, EOVERFLOW);
    cr_assert_eq(coro_sem_value(&s), SIZE_MAX, "a failed call changes nothing");
    cr_assert_eq(coro_sem_acquire(&s, 1), -1);
    cr_assert_eq(errno, EPERM, "blocking calls need a coroutine");
    cr_assert_eq(coro_sem_acquire(NULL, 1), -1);
    cr_assert_eq(errno, EINVAL);
}

/* ------------------------------------------------------------------ */
/* isem                                                               */

static int isem_wait_op(struct waiter *w)
{
    return coro_isem_wait(w->obj, 0);
}

static int isem_release_one(void *s)
{
    return coro_isem_release(s, 1);
}

static int isem_acquire_one(void *s)
{
    return coro_isem_acquire(s, 1);
}

static int isem_zero(void *s)
{
    return coro_isem_value(s) == 0 ? 0 : -1;
}

Test(isem, interrupt_then_release_still_wakes_the_other_waiter)
{
    coro_isem_t s = CORO_ISEM_INIT(1);
    struct contract c = {.op = isem_wait_op,
                         .wake = isem_release_one,
                         .final = isem_zero,
                         .obj = &s};
    contract_check(&c);
}

Test(isem, release_then_interrupt_still_wakes_the_other_waiter)
{
    coro_isem_t s = CORO_ISEM_INIT(1);
    struct contract c = {.op = isem_wait_op,
                         .wake = isem_release_one,
                         .final = isem_zero,
                         .obj = &s,
                         .wake_first = true};
    contract_check(&c);
}

/* The driver's own count releases at the end. */
static int isem_release_back(void *s)
{
    return coro_isem_release(s, 1) == 0 && coro_isem_value(s) == 0 ? 0 : -1;
}

Test(isem, wait_fails_with_etimedout_under_a_deadline)
{
    coro_isem_t s = CORO_ISEM_INIT(0);
    struct contract c = {.setup = isem_acquire_one,
                         .op = isem_wait_op,
                         .final = isem_release_back,
                         .obj = &s};
    timeout_check(&c);
}

static int level_op(struct waiter *w)
{
    return coro_isem_wait(w->obj, (size_t)w->arg);
}

/* Waiters for levels 2 and 0 on a count of 3. */
static int levels(void *arg)
{
    coro_isem_t *s = arg;
    struct waiter two = {.op = level_op, .obj = s, .arg = 2};
    struct waiter zero = {.op = level_op, .obj = s, .arg = 0};
    struct waiter now = {.op = level_op, .obj = s, .arg = 3};
    start(&two);
    start(&zero);
    start(&now);
    coro_yield();
    bool at_once = now.order == 1; /* already at its level */
    coro_isem_release(s, 1);
    coro_yield();
    bool two_woke = two.order == 2 && coro_state(zero.co) == CORO_WAITING;
    coro_isem_release(s, 2);
    reap(&two);
    reap(&zero);
    reap(&now);
    return at_once && two_woke && zero.rc == 0 ? 0 : -1;
}

Test(isem, each_waiter_wakes_when_the_count_reaches_its_level)
{
    coro_isem_t s = CORO_ISEM_INIT(3);
    finished = 0;
    cr_assert_eq(run_in_coro(levels, &s), 0);
}

Test(isem, release_beyond_the_count_fails_with_einval_and_changes_nothing)
{
    coro_isem_t s;
    cr_assert_eq(coro_isem_init(&s, 1), 0);
    cr_assert_eq(coro_isem_release(&s, 2), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_isem_value(&s), 1);
    cr_assert_eq(coro_isem_acquire(&s, SIZE_MAX), -1);
    cr_assert_eq(errno, EOVERFLOW);
    cr_assert_eq(coro_isem_value(&s), 1);
    cr_assert_eq(coro_isem_wait(&s, 5), -1);
    cr_assert_eq(errno, EPERM);
}

/* ------------------------------------------------------------------ */
/* cond                                                               */

static int cond_op(struct waiter *w)
{
    return coro_cond_wait(w->obj, &w->got);
}

static int cond_wake_42(void *c)
{
    return coro_cond_wake_one(c, 42) == 1 ? 0 : -1;
}

/* Nobody is left waiting. */
static int cond_idle(void *c)
{
    return coro_cond_wake_all(c, 0) == 0 ? 0 : -1;
}

Test(cond, interrupt_then_wake_one_wakes_the_other_waiter_with_the_value)
{
    coro_cond_t c = CORO_COND_INIT;
    struct contract k = {
        .op = cond_op, .wake = cond_wake_42, .final = cond_idle, .obj = &c};
    contract_check(&k);
    cr_assert_eq(k.b.got, 42);
}

Test(cond, wake_one_then_interrupt_passes_the_value_to_the_other_waiter)
{
    coro_cond_t c = CORO_COND_INIT;
    struct contract k = {.op = cond_op,
                         .wake = cond_wake_42,
                         .final = cond_idle,
                         .obj = &c,
                         .wake_first = true};
    contract_check(&k);
    cr_assert_eq(k.b.got, 42);
}

Test(cond, wait_fails_with_etimedout_under_a_deadline)
{
    coro_cond_t c = CORO_COND_INIT;
    struct contract k = {.op = cond_op, .final = cond_idle, .obj = &c};
    timeout_check(&k);
}

/* Four waiters: wake_n(2), wake_one, then interrupt_all. */
static int wakes(void *arg)
{
    coro_cond_t *c = arg;
    struct waiter ws[4];
    for (int i = 0; i < 4; i++) {
        ws[i] = (struct waiter){.op = cond_op, .obj = c};
        start(&ws[i]);
    }
    coro_yield();
    int none = coro_cond_wake_n(c, 0, 1);
    int two = coro_cond_wake_n(c, 2, 7);
    int one = coro_cond_wake_one(c, 8);
    int all = coro_cond_interrupt_all(c, ECONNRESET);
    int after = coro_cond_wake_one(c, 9);
    for (int i = 0; i < 4; i++)
        reap(&ws[i]);
    bool ok = none == 0 && two == 2 && one == 1 && all == 1 && after == 0;
    ok = ok && ws[0].got == 7 && ws[1].got == 7 && ws[2].got == 8;
    ok = ok && ws[0].order == 1 && ws[1].order == 2 && ws[2].order == 3;
    ok = ok && ws[3].rc == -1 && ws[3].err == ECONNRESET;
    return ok ? 0 : -1;
}

Test(cond, wakes_go_to_waiters_in_arrival_order_with_their_values)
{
    coro_cond_t c = CORO_COND_INIT;
    finished = 0;
    cr_assert_eq(run_in_coro(wakes, &c), 0);
}

/* A waiter woken by wake_all and then interrupted passes nothing on. */
static int broadcast_not_passed(void *arg)
{
    coro_cond_t *c = arg;
    struct waiter a = {.op = cond_op, .obj = c};
    struct waiter late = {.op = cond_op, .obj = c};
    start(&a);
    coro_yield();
    int all = coro_cond_wake_all(c, 5);
    coro_interrupt(a.co, EINTR);
    start(&late); /* arrives after the broadcast */
    reap(&a);
    coro_yield();
    bool still = coro_state(late.co) == CORO_WAITING;
    coro_cond_wake_one(c, 6);
    reap(&late);
    return all == 1 && a.err == EINTR && still && late.got == 6 ? 0 : -1;
}

Test(cond, a_broadcast_wake_is_not_passed_on_by_an_interrupted_waiter)
{
    coro_cond_t c = CORO_COND_INIT;
    cr_assert_eq(run_in_coro(broadcast_not_passed, &c), 0);
}

Test(cond, argument_errors)
{
    coro_cond_t c;
    cr_assert_eq(coro_cond_init(&c), 0);
    cr_assert_eq(coro_cond_wake_one(&c, 1), 0, "nobody waits");
    cr_assert_eq(coro_cond_wake_n(&c, -1, 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cond_interrupt_all(&c, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cond_wake_all(NULL, 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_cond_wait(&c, NULL), -1);
    cr_assert_eq(errno, EPERM);
}

/* ------------------------------------------------------------------ */
/* rwlock                                                             */

static int wrlock_op(struct waiter *w)
{
    if (coro_rwlock_wrlock(w->obj) != 0)
        return -1;
    w->got = 1;
    coro_yield();
    return coro_rwlock_wrunlock(w->obj);
}

static int rdlock_op(struct waiter *w)
{
    if (coro_rwlock_rdlock(w->obj) != 0)
        return -1;
    w->got = 1;
    coro_yield();
    return coro_rwlock_rdunlock(w->obj);
}

static int rw_wrlock_obj(void *rw)
{
    return coro_rwlock_wrlock(rw);
}

static int rw_wrunlock_obj(void *rw)
{
    return coro_rwlock_wrunlock(rw);
}

/* Free: a writer can take it at once. */
static int rw_free(void *rw)
{
    if (coro_rwlock_try_wrlock(rw) != 0)
        return -1;
    return coro_rwlock_wrunlock(rw);
}

/* Still held for writing by the driver. */
static int rw_held_by_driver(void *rw)
{
    if (coro_rwlock_try_rdlock(rw) != -1 || errno != EDEADLK)
        return -1;
    return coro_rwlock_wrunlock(rw) == 0 ? rw_free(rw) : -1;
}

Test(rwlock, interrupt_then_write_unlock_gives_it_to_the_other_writer)
{
    coro_rwlock_t rw = CORO_RWLOCK_INIT;
    struct contract c = {.setup = rw_wrlock_obj,
                         .op = wrlock_op,
                         .wake = rw_wrunlock_obj,
                         .final = rw_free,
                         .obj = &rw};
    contract_check(&c);
    cr_assert_eq(c.b.got, 1);
}

Test(rwlock, write_unlock_then_interrupt_passes_it_on_to_the_other_writer)
{
    coro_rwlock_t rw = CORO_RWLOCK_INIT;
    struct contract c = {.setup = rw_wrlock_obj,
                         .op = wrlock_op,
                         .wake = rw_wrunlock_obj,
                         .final = rw_free,
                         .obj = &rw,
                         .wake_first = true};
    contract_check(&c);
    cr_assert_eq(c.b.got, 1);
}

Test(rwlock, interrupt_then_write_unlock_gives_it_to_the_other_reader)
{
    coro_rwlock_t rw = CORO_RWLOCK_INIT;
    struct contract c = {.setup = rw_wrlock_obj,
                         .op = rdlock_op,
                         .wake = rw_wrunlock_obj,
                         .final = rw_free,
                         .obj = &rw};
    contract_check(&c);
    cr_assert_eq(c.b.got, 1);
}

Test(rwlock, write_unlock_then_interrupt_leaves_it_to_the_other_reader)
{
    coro_rwlock_t rw = CORO_RWLOCK_INIT;
    struct contract c = {.setup = rw_wrlock_obj,
                         .op = rdlock_op,
                         .wake = rw_wrunlock_obj,
                         .final = rw_free,
                         .obj = &rw,
                         .wake_first = true};
    contract_check(&c);
    cr_assert_eq(c.b.got, 1);
}

Test(rwlock, locks_fail_with_etimedout_under_a_deadline)
{
    coro_rwlock_t rw = CORO_RWLOCK_INIT;
    struct contract c = {.setup = rw_wrlock_obj,
                         .op = rdlock_op,
                         .final = rw_held_by_driver,
                         .obj = &rw};
    timeout_check(&c);
    struct contract d = {.setup = rw_wrlock_obj,
                         .op = wrlock_op,
                         .final = rw_held_by_driver,
                         .obj = &rw};
    timeout_check(&d);
}

/* R1 reads; W waits; R2 must queue behind W; R1's unlock hands to W,
 * W's unlock hands to R2. */
static int writer_preferred(void *arg)
{
    coro_rwlock_t *rw = arg;
    struct waiter w = {.op = wrlock_op, .obj = rw};
    struct waiter r2 = {.op = rdlock_op, .obj = rw};
    if (coro_rwlock_rdlock(rw) != 0)
        return -1;
    bool shared =
        coro_rwlock_try_rdlock(rw) == 0 && coro_rwlock_rdunlock(rw) == 0;
    start(&w);
    coro_yield();
    bool reader_busy = coro_rwlock_try_rdlock(rw) == -1 && errno == EBUSY;
    start(&r2);
    coro_yield();
    bool parked = all_waiting(&w, 1) && all_waiting(&r2, 1);
    coro_rwlock_rdunlock(rw); /* hands to w */
    reap(&w);
    reap(&r2);
    return shared && reader_busy && parked && w.order == 1 && r2.order == 2 &&
                   rw_free(rw) == 0
               ? 0
               : -1;
}

Test(rwlock, readers_share_but_queue_behind_a_waiting_writer)
{
    coro_rwlock_t rw = CORO_RWLOCK_INIT;
    finished = 0;
    cr_assert_eq(run_in_coro(writer_preferred, &rw), 0);
}

/* Writer unlock: the next writer before the readers, then all readers. */
static int writers_first(void *arg)
{
    coro_rwlock_t *rw = arg;
    struct waiter r1 = {.op = rdlock_op, .obj = rw};
    struct waiter w = {.op = wrlock_op, .obj = rw};
    struct waiter r2 = {.op = rdlock_op, .obj = rw};
    coro_rwlock_wrlock(rw);
    start(&r1);
    start(&w);
    start(&r2);
    coro_yield();
    coro_rwlock_wrunlock(rw);
    reap(&r1);
    reap(&w);
    reap(&r2);
    return w.order == 1 && r1.order + r2.order == 5 ? 0 : -1;
}

Test(rwlock, a_write_unlock_prefers_the_next_writer_then_wakes_all_readers)
{
    coro_rwlock_t rw = CORO_RWLOCK_INIT;
    finished = 0;
    cr_assert_eq(run_in_coro(writers_first, &rw), 0);
}

static int rw_misuse(void *arg)
{
    coro_rwlock_t *rw = arg;
    if (coro_rwlock_wrunlock(rw) != -1 || errno != EPERM)
        return -1;
    if (coro_rwlock_rdunlock(rw) != -1 || errno != EPERM)
        return -1;
    coro_rwlock_wrlock(rw);
    if (coro_rwlock_wrlock(rw) != -1 || errno != EDEADLK)
        return -1;
    if (coro_rwlock_rdlock(rw) != -1 || errno != EDEADLK)
        return -1;
    if (coro_rwlock_rdunlock(rw) != -1 || errno != EPERM)
        return -1;
    return coro_rwlock_wrunlock(rw);
}

Test(rwlock, misuse_fails_with_eperm_or_edeadlk_and_changes_nothing)
{
    coro_rwlock_t rw = CORO_RWLOCK_INIT;
    cr_assert_eq(run_in_coro(rw_misuse, &rw), 0);
    cr_assert_eq(coro_rwlock_rdlock(&rw), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_rwlock_init(NULL), -1);
    cr_assert_eq(errno, EINVAL);
}

/* ------------------------------------------------------------------ */
/* fifo                                                               */

static int pop_op(struct waiter *w)
{
    void *item;
    if (coro_fifo_pop(w->obj, &item) != 0)
        return -1;
    w->got = (intptr_t)item;
    return 0;
}

static int push_7(void *f)
{
    return coro_fifo_push(f, (void *)7);
}

static int fifo_empty(void *f)
{
    return coro_fifo_len(f) == 0 ? 0 : -1;
}

Test(fifo, interrupt_then_push_gives_the_item_to_the_other_waiter)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    struct contract c = {
        .op = pop_op, .wake = push_7, .final = fifo_empty, .obj = &f};
    contract_check(&c);
    cr_assert_eq(c.b.got, 7);
}

Test(fifo, push_then_interrupt_passes_the_item_to_the_other_waiter)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    struct contract c = {.op = pop_op,
                         .wake = push_7,
                         .final = fifo_empty,
                         .obj = &f,
                         .wake_first = true};
    contract_check(&c);
    cr_assert_eq(c.b.got, 7);
}

Test(fifo, pop_fails_with_etimedout_under_a_deadline)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    struct contract c = {.op = pop_op, .final = fifo_empty, .obj = &f};
    timeout_check(&c);
}

/* The only waiter is handed item 1, then interrupted: the item goes back
 * to the head, ahead of item 2. */
static int handed_back(void *arg)
{
    coro_fifo_t *f = arg;
    struct waiter a = {.op = pop_op, .obj = f};
    start(&a);
    coro_yield();
    coro_fifo_push(f, (void *)1);
    coro_fifo_push(f, (void *)2);
    coro_interrupt(a.co, EINTR);
    reap(&a);
    void *x = NULL, *y = NULL;
    coro_fifo_pop(f, &x);
    coro_fifo_pop(f, &y);
    return a.err == EINTR && x == (void *)1 && y == (void *)2 ? 0 : -1;
}

Test(fifo, an_item_handed_to_an_interrupted_waiter_goes_back_to_the_head)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    cr_assert_eq(run_in_coro(handed_back, &f), 0);
    cr_assert_eq(coro_fifo_len(&f), 0);
}

static int fifo_order(void *arg)
{
    coro_fifo_t *f = arg;
    struct waiter ws[2];
    for (int i = 0; i < 2; i++) {
        ws[i] = (struct waiter){.op = pop_op, .obj = f};
        start(&ws[i]);
    }
    coro_yield();
    coro_fifo_push(f, (void *)10);
    coro_fifo_push(f, (void *)11);
    coro_fifo_push(f, (void *)12);
    coro_fifo_push_front(f, (void *)9);
    reap(&ws[0]);
    reap(&ws[1]);
    void *items[8];
    int n = coro_fifo_pop_all(f, items, 8);
    return ws[0].got == 10 && ws[1].got == 11 && n == 2 &&
                   items[0] == (void *)9 && items[1] == (void *)12
               ? 0
               : -1;
}

Test(fifo, items_and_waiters_are_served_in_order_and_push_front_jumps_ahead)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    cr_assert_eq(run_in_coro(fifo_order, &f), 0);
}

static int pop_all_op(struct waiter *w)
{
    void *items[2];
    int n = coro_fifo_pop_all(w->obj, items, 2);
    w->got = n;
    return n > 0 ? 0 : -1;
}

static int pop_all_waits(void *arg)
{
    coro_fifo_t *f = arg;
    struct waiter a = {.op = pop_all_op, .obj = f};
    start(&a);
    coro_yield();
    bool parked = all_waiting(&a, 1);
    for (intptr_t i = 1; i <= 3; i++)
        coro_fifo_push(f, (void *)i);
    reap(&a);
    void *last;
    return parked && a.got == 2 && coro_fifo_try_pop(f, &last) == 0 &&
                   last == (void *)3
               ? 0
               : -1;
}

Test(fifo, pop_all_waits_for_one_item_then_takes_up_to_max)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    cr_assert_eq(run_in_coro(pop_all_waits, &f), 0);
}

Test(fifo, push_fails_with_enomem_and_changes_nothing)
{
    coro_fifo_t f;
    cr_assert_eq(coro_fifo_init(&f), 0);
    cr_assert_eq(coro_fifo_push(&f, (void *)1), 0);
    coro__sys_fail(CORO__SYS_MALLOC, 1, ENOMEM);
    cr_assert_eq(coro_fifo_push(&f, (void *)2), -1);
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(coro_fifo_len(&f), 1);
    void *x;
    cr_assert_eq(coro_fifo_try_pop(&f, &x), 0);
    cr_assert_eq(x, (void *)1);
    cr_assert_eq(coro_fifo_try_pop(&f, &x), -1);
    cr_assert_eq(errno, EBUSY);
}

Test(fifo, destroy_frees_what_is_left)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    cr_assert_eq(coro_fifo_push(&f, (void *)1), 0);
    cr_assert_eq(coro_fifo_push(&f, (void *)2), 0);
    cr_assert_eq(coro_fifo_destroy(&f), 0);
    cr_assert_eq(coro_fifo_len(&f), 0);
    cr_assert_eq(coro_fifo_push(&f, (void *)3), 0, "usable again");
    cr_assert_eq(coro_fifo_destroy(&f), 0);
    cr_assert_eq(coro_fifo_pop(&f, NULL), -1);
    cr_assert_eq(errno, EPERM);
    void *items[1];
    cr_assert_eq(coro_fifo_pop_all(&f, items, 0), -1);
    cr_assert_eq(errno, EINVAL);
}

static int destroy_busy(void *arg)
{
    coro_fifo_t *f = arg;
    struct waiter a = {.op = pop_op, .obj = f};
    start(&a);
    coro_yield();
    int rc = coro_fifo_destroy(f);
    int err = errno;
    coro_fifo_push(f, NULL);
    reap(&a);
    return rc == -1 && err == EBUSY ? 0 : -1;
}

Test(fifo, destroy_with_waiters_fails_with_ebusy)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    cr_assert_eq(run_in_coro(destroy_busy, &f), 0);
}

/*
 * A popper handed an item is off the wait queue but still inside its
 * call until it runs (pop_all then takes more items; an interrupt makes
 * it pass the item on): destroy must fail with EBUSY until then.
 */
struct fifo_handed {
    coro_fifo_t *f;
    bool interrupt;  /* interrupt the popper before it runs */
    bool parked;     /* out: it waited */
    int destroy_rc;  /* out: destroy while it had not run */
    int destroy_err; /* out: its errno */
    struct waiter w; /* out: the popper (pop_all, max 2) */
};

static int fifo_handed_run(void *arg)
{
    struct fifo_handed *t = arg;
    t->w = (struct waiter){.op = pop_all_op, .obj = t->f};
    start(&t->w);
    coro_yield();
    t->parked = all_waiting(&t->w, 1);
    coro_fifo_push(t->f, (void *)1); /* handed to the popper */
    if (t->interrupt)
        coro_interrupt(t->w.co, EINTR);
    t->destroy_rc = coro_fifo_destroy(t->f);
    t->destroy_err = errno;
    coro_fifo_push(t->f, (void *)2); /* pop_all takes it too, if it runs */
    reap(&t->w);
    return 0;
}

static void fifo_handed_check(struct fifo_handed *t)
{
    coro_fifo_t f = CORO_FIFO_INIT;
    t->f = &f;
    cr_assert_eq(run_in_coro(fifo_handed_run, t), 0);
    cr_assert(t->parked, "the popper must block first");
    cr_assert_eq(t->destroy_rc, -1,
                 "destroy must fail while a handed popper has not run");
    cr_assert_eq(t->destroy_err, EBUSY);
    void *x = NULL, *y = NULL;
    if (t->interrupt) {
        cr_assert_eq(t->w.rc, -1);
        cr_assert_eq(t->w.err, EINTR);
        cr_assert_eq(coro_fifo_len(&f), 2, "item 1 went back to the head");
        cr_assert_eq(coro_fifo_try_pop(&f, &x), 0);
        cr_assert_eq(coro_fifo_try_pop(&f, &y), 0);
        cr_assert_eq(x, (void *)1);
        cr_assert_eq(y, (void *)2);
    } else {
        cr_assert_eq(t->w.rc, 0);
        cr_assert_eq(t->w.got, 2, "pop_all took items 1 and 2");
        cr_assert_eq(coro_fifo_len(&f), 0);
    }
    cr_assert_eq(coro_fifo_destroy(&f), 0, "free once it has returned");
}

Test(fifo, destroy_is_ebusy_until_a_handed_popper_has_run)
{
    struct fifo_handed t = {.interrupt = false};
    fifo_handed_check(&t);
}

Test(fifo, destroy_is_ebusy_until_a_handed_then_cut_popper_has_run)
{
    struct fifo_handed t = {.interrupt = true};
    fifo_handed_check(&t);
}

/* The list keeps its order through every way in and out. */
Test(fifo, push_push_front_and_pops_keep_the_order_without_waiters)
{
    coro_fifo_t f;
    cr_assert_eq(coro_fifo_init(&f), 0);
    cr_assert_eq(coro_fifo_push_front(&f, (void *)3), 0); /* 3 */
    cr_assert_eq(coro_fifo_push(&f, (void *)4), 0);       /* 3 4 */
    cr_assert_eq(coro_fifo_push_front(&f, (void *)2), 0); /* 2 3 4 */
    cr_assert_eq(coro_fifo_push(&f, (void *)5), 0);       /* 2 3 4 5 */
    cr_assert_eq(coro_fifo_push_front(&f, (void *)1), 0); /* 1 2 3 4 5 */
    cr_assert_eq(coro_fifo_len(&f), 5);
    for (intptr_t i = 1; i <= 5; i++) {
        void *x = NULL;
        cr_assert_eq(coro_fifo_try_pop(&f, &x), 0);
        cr_assert_eq(x, (void *)i);
    }
    cr_assert_eq(coro_fifo_len(&f), 0);
    cr_assert_eq(coro_fifo_push(&f, (void *)6), 0, "usable once emptied");
    cr_assert_eq(coro_fifo_push(&f, (void *)7), 0);
    cr_assert_eq(coro_fifo_destroy(&f), 0);
}

/* ------------------------------------------------------------------ */
/* chan                                                               */

static int recv_op(struct waiter *w)
{
    void *item;
    if (coro_chan_recv(w->obj, &item) != 0)
        return -1;
    w->got = (intptr_t)item;
    return 0;
}

static int send_op(struct waiter *w)
{
    if (coro_chan_send(w->obj, (void *)(w->arg * 10)) != 0)
        return -1;
    w->got = 1;
    return 0;
}

static int send_7(void *ch)
{
    return coro_chan_send(ch, (void *)7);
}

static int fill_with_100(void *ch)
{
    return coro_chan_send(ch, (void *)100);
}

static int recv_100(void *ch)
{
    void *x;
    return coro_chan_recv(ch, &x) == 0 && x == (void *)100 ? 0 : -1;
}

static int chan_empty(void *ch)
{
    return coro_chan_len(ch) == 0 && coro_chan_try_recv(ch, NULL) == -1 &&
                   errno == EBUSY
               ? 0
               : -1;
}

/* Holds exactly b's item (20), and a free slot after it is taken. */
static int chan_holds_b(void *ch)
{
    void *x;
    if (coro_chan_len(ch) != 1 || coro_chan_try_recv(ch, &x) != 0)
        return -1;
    return x == (void *)20 ? chan_empty(ch) : -1;
}

static void chan_contract(struct contract *c)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 1), 0);
    c->obj = &ch;
    contract_check(c);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
}

Test(chan, interrupt_then_send_gives_the_item_to_the_other_receiver)
{
    struct contract c = {.op = recv_op, .wake = send_7, .final = chan_empty};
    chan_contract(&c);
    cr_assert_eq(c.b.got, 7);
}

Test(chan, send_then_interrupt_passes_the_item_to_the_other_receiver)
{
    struct contract c = {
        .op = recv_op, .wake = send_7, .final = chan_empty, .wake_first = true};
    chan_contract(&c);
    cr_assert_eq(c.b.got, 7);
}

Test(chan, interrupt_then_recv_gives_the_slot_to_the_other_sender)
{
    struct contract c = {.setup = fill_with_100,
                         .op = send_op,
                         .wake = recv_100,
                         .final = chan_holds_b};
    chan_contract(&c);
}

Test(chan, recv_then_interrupt_passes_the_slot_to_the_other_sender)
{
    struct contract c = {.setup = fill_with_100,
                         .op = send_op,
                         .wake = recv_100,
                         .final = chan_holds_b,
                         .wake_first = true};
    chan_contract(&c);
}

Test(chan, send_and_recv_fail_with_etimedout_under_a_deadline)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 1), 0);
    struct contract c = {.op = recv_op, .final = chan_empty, .obj = &ch};
    timeout_check(&c);
    struct contract d = {
        .setup = fill_with_100, .op = send_op, .final = recv_100, .obj = &ch};
    timeout_check(&d);
    cr_assert_eq(coro_chan_len(&ch), 0);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
}

/* Two senders of 10 and 20 on a full channel of 2; a receiver drains. */
static int chan_order(void *arg)
{
    coro_chan_t *ch = arg;
    coro_chan_send(ch, (void *)1);
    coro_chan_send(ch, (void *)2);
    bool full = coro_chan_try_send(ch, (void *)3) == -1 && errno == EBUSY;
    struct waiter s1 = {.op = send_op, .obj = ch, .arg = 1};
    struct waiter s2 = {.op = send_op, .obj = ch, .arg = 2};
    start(&s1);
    start(&s2);
    coro_yield();
    bool parked = all_waiting(&s1, 1) && all_waiting(&s2, 1);
    void *got[4];
    for (int i = 0; i < 4; i++)
        coro_chan_recv(ch, &got[i]);
    reap(&s1);
    reap(&s2);
    return full && parked && got[0] == (void *)1 && got[1] == (void *)2 &&
                   got[2] == (void *)10 && got[3] == (void *)20
               ? 0
               : -1;
}

Test(chan, send_waits_while_full_and_items_keep_their_order)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 2), 0);
    cr_assert_eq(run_in_coro(chan_order, &ch), 0);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
}

/* A receiver is served the item sent to it: a newcomer cannot take it. */
static int chan_no_barging(void *arg)
{
    coro_chan_t *ch = arg;
    struct waiter r = {.op = recv_op, .obj = ch};
    start(&r);
    coro_yield();
    coro_chan_send(ch, (void *)5);
    bool claimed = coro_chan_try_recv(ch, NULL) == -1 && errno == EBUSY;
    reap(&r);
    return claimed && r.got == 5 ? 0 : -1;
}

Test(chan, an_item_handed_to_a_waiting_receiver_is_not_taken_by_a_newcomer)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 1), 0);
    cr_assert_eq(run_in_coro(chan_no_barging, &ch), 0);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
}

/* Close with a waiting sender, then with a waiting receiver. */
static int chan_closing(void *arg)
{
    coro_chan_t *ch = arg;
    coro_chan_send(ch, (void *)1);
    struct waiter s = {.op = send_op, .obj = ch, .arg = 2};
    start(&s);
    coro_yield();
    coro_chan_close(ch);
    reap(&s);
    bool sender_failed = s.rc == -1 && s.err == EPIPE;
    void *x = NULL;
    bool drained = coro_chan_recv(ch, &x) == 0 && x == (void *)1;
    bool ended = coro_chan_recv(ch, &x) == -1 && errno == EPIPE;
    bool closed = coro_chan_send(ch, NULL) == -1 && errno == EPIPE &&
                  coro_chan_close(ch) == -1 && errno == EALREADY;
    return sender_failed && drained && ended && closed ? 0 : -1;
}

Test(chan, close_fails_senders_with_epipe_and_lets_receivers_drain)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 1), 0);
    cr_assert_eq(run_in_coro(chan_closing, &ch), 0);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
}

static int chan_close_wakes_receivers(void *arg)
{
    coro_chan_t *ch = arg;
    struct waiter r = {.op = recv_op, .obj = ch};
    start(&r);
    coro_yield();
    int busy = coro_chan_destroy(ch) == -1 && errno == EBUSY;
    coro_chan_close(ch);
    reap(&r);
    return busy && r.rc == -1 && r.err == EPIPE ? 0 : -1;
}

Test(chan, close_wakes_a_waiting_receiver_with_epipe)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 1), 0);
    cr_assert_eq(run_in_coro(chan_close_wakes_receivers, &ch), 0);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
}

/*
 * A waiter the channel has served (a sender given a slot, a receiver
 * given an item or told by close that the stream ended) is off the wait
 * queue but still inside its call until it runs: destroy must fail with
 * EBUSY until then, or the waiter would run on a freed buffer.
 */
struct chan_served {
    coro_chan_t *ch;
    bool receiver;   /* serve a receiver (else a sender) */
    bool by_close;   /* serve it by closing the channel */
    bool interrupt;  /* then interrupt it before it runs */
    bool parked;     /* out: it waited */
    int destroy_rc;  /* out: destroy while it had not run */
    int destroy_err; /* out: its errno */
    struct waiter w; /* out: the waiter */
};

static int chan_served_run(void *arg)
{
    struct chan_served *t = arg;
    if (!t->receiver && coro_chan_send(t->ch, (void *)100) != 0)
        return -1; /* full: the sender must wait */
    t->w = (struct waiter){
        .op = t->receiver ? recv_op : send_op, .obj = t->ch, .arg = 2};
    start(&t->w);
    coro_yield();
    t->parked = all_waiting(&t->w, 1);
    void *x;
    if (t->by_close)
        coro_chan_close(t->ch);
    else if (t->receiver)
        coro_chan_send(t->ch, (void *)7); /* claimed for the receiver */
    else
        coro_chan_recv(t->ch, &x); /* a slot reserved for the sender */
    if (t->interrupt)
        coro_interrupt(t->w.co, EINTR);
    t->destroy_rc = coro_chan_destroy(t->ch);
    t->destroy_err = errno;
    reap(&t->w);
    return 0;
}

/* Run t on a fresh channel of capacity 1 and check that destroy failed
 * with EBUSY while the served waiter had not run. */
static void chan_served_check(struct chan_served *t)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 1), 0);
    t->ch = &ch;
    cr_assert_eq(run_in_coro(chan_served_run, t), 0);
    cr_assert(t->parked, "the waiter must block first");
    cr_assert_eq(t->destroy_rc, -1,
                 "destroy must fail while a served waiter has not run");
    cr_assert_eq(t->destroy_err, EBUSY);
    if (t->interrupt) {
        cr_assert_eq(t->w.rc, -1);
        cr_assert_eq(t->w.err, EINTR);
    } else if (t->by_close) {
        cr_assert_eq(t->w.rc, -1);
        cr_assert_eq(t->w.err, EPIPE);
    } else {
        cr_assert_eq(t->w.rc, 0, "the served waiter must succeed: %s",
                     strerror(t->w.err));
    }
    if (!t->by_close) {
        /* What the waiter was given went where it should: the item sent
         * to the receiver, or the sender's item, is in the buffer unless
         * the waiter took it. */
        void *x = NULL;
        bool has = coro_chan_try_recv(&ch, &x) == 0;
        if (t->receiver) {
            cr_assert_eq(has, t->interrupt, "the item is back iff cut");
            cr_assert_eq(t->w.got, t->interrupt ? 0 : 7);
            if (has)
                cr_assert_eq(x, (void *)7);
        } else {
            cr_assert_eq(has, !t->interrupt, "sent iff not cut");
            if (has)
                cr_assert_eq(x, (void *)20);
        }
    }
    cr_assert_eq(coro_chan_destroy(&ch), 0, "free once it has returned");
}

Test(chan, destroy_is_ebusy_until_a_served_sender_has_run)
{
    struct chan_served t = {.receiver = false};
    chan_served_check(&t);
}

Test(chan, destroy_is_ebusy_until_a_served_receiver_has_run)
{
    struct chan_served t = {.receiver = true};
    chan_served_check(&t);
}

Test(chan, destroy_is_ebusy_until_a_sender_failed_by_close_has_run)
{
    struct chan_served t = {.receiver = false, .by_close = true};
    chan_served_check(&t);
}

Test(chan, destroy_is_ebusy_until_a_receiver_ended_by_close_has_run)
{
    struct chan_served t = {.receiver = true, .by_close = true};
    chan_served_check(&t);
}

Test(chan, destroy_is_ebusy_until_a_served_then_cut_sender_has_run)
{
    struct chan_served t = {.receiver = false, .interrupt = true};
    chan_served_check(&t);
}

Test(chan, destroy_is_ebusy_until_a_served_then_cut_receiver_has_run)
{
    struct chan_served t = {.receiver = true, .interrupt = true};
    chan_served_check(&t);
}

/* Every call on a channel that is not initialised (zero-filled, or
 * destroyed) fails at once with EINVAL; none waits on it. */
struct chan_uninit {
    coro_chan_t *ch;
    int send_rc, send_err, recv_rc, recv_err;
    int try_send_rc, try_send_err, try_recv_rc, try_recv_err;
    int close_rc, close_err;
};

static int chan_send_null(void *ch)
{
    return coro_chan_send(ch, NULL);
}

static int chan_recv_any(void *ch)
{
    void *x;
    return coro_chan_recv(ch, &x);
}

static int chan_uninit_run(void *arg)
{
    struct chan_uninit *t = arg;
    /* Under a deadline, so that a call that waits fails the test with
     * ETIMEDOUT instead of hanging it. */
    t->send_rc = coro_with_timeout(0.5, chan_send_null, t->ch);
    t->send_err = errno;
    t->recv_rc = coro_with_timeout(0.5, chan_recv_any, t->ch);
    t->recv_err = errno;
    t->try_send_rc = coro_chan_try_send(t->ch, NULL);
    t->try_send_err = errno;
    t->try_recv_rc = coro_chan_try_recv(t->ch, NULL);
    t->try_recv_err = errno;
    t->close_rc = coro_chan_close(t->ch);
    t->close_err = errno;
    return 0;
}

static void chan_uninit_check(coro_chan_t *ch)
{
    struct chan_uninit t = {.ch = ch};
    cr_assert_eq(run_in_coro(chan_uninit_run, &t), 0);
    cr_assert_eq(t.send_rc, -1);
    cr_assert_eq(t.send_err, EINVAL, "send: %s", strerror(t.send_err));
    cr_assert_eq(t.recv_rc, -1);
    cr_assert_eq(t.recv_err, EINVAL, "recv: %s", strerror(t.recv_err));
    cr_assert_eq(t.try_send_rc, -1);
    cr_assert_eq(t.try_send_err, EINVAL, "try_send: %s",
                 strerror(t.try_send_err));
    cr_assert_eq(t.try_recv_rc, -1);
    cr_assert_eq(t.try_recv_err, EINVAL, "try_recv: %s",
                 strerror(t.try_recv_err));
    cr_assert_eq(t.close_rc, -1);
    cr_assert_eq(t.close_err, EINVAL, "close: %s", strerror(t.close_err));
    cr_assert_eq(coro_chan_len(ch), 0);
    cr_assert_eq(coro_chan_send(ch, NULL), -1, "outside a coroutine too");
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(coro_chan_destroy(ch), 0, "nothing to free: succeeds");
}

Test(chan, calls_on_a_zero_filled_channel_fail_with_einval)
{
    coro_chan_t ch = {{0}};
    chan_uninit_check(&ch);
}

Test(chan, calls_on_a_destroyed_channel_fail_with_einval)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 2), 0);
    cr_assert_eq(coro_chan_try_send(&ch, (void *)1), 0);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
    chan_uninit_check(&ch);
    cr_assert_eq(coro_chan_init(&ch, 1), 0, "usable after a new init");
    cr_assert_eq(coro_chan_try_send(&ch, (void *)2), 0);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
}

Test(chan, init_errors_change_nothing)
{
    coro_chan_t ch;
    cr_assert_eq(coro_chan_init(&ch, 0), -1);
    cr_assert_eq(errno, EINVAL);
    coro__sys_fail(CORO__SYS_MALLOC, 1, ENOMEM);
    cr_assert_eq(coro_chan_init(&ch, 4), -1);
    cr_assert_eq(errno, ENOMEM);
    cr_assert_eq(coro_chan_init(&ch, 4), 0);
    cr_assert_eq(coro_chan_recv(&ch, NULL), -1);
    cr_assert_eq(errno, EPERM);
    cr_assert_eq(coro_chan_destroy(&ch), 0);
}

/* ------------------------------------------------------------------ */
/* event                                                              */

static int event_op(struct waiter *w)
{
    void *v;
    if (coro_event_wait(w->obj, &v) != 0)
        return -1;
    w->got = (intptr_t)v;
    return 0;
}

static int set_7(void *ev)
{
    return coro_event_set(ev, (void *)7);
}

static int event_is_7(void *ev)
{
    void *v = NULL;
    return coro_event_is_set(ev, &v) && v == (void *)7 ? 0 : -1;
}

Test(event, interrupt_then_set_wakes_the_other_waiter_with_the_value)
{
    coro_event_t ev = CORO_EVENT_INIT;
    struct contract c = {
        .op = event_op, .wake = set_7, .final = event_is_7, .obj = &ev};
    contract_check(&c);
    cr_assert_eq(c.b.got, 7);
}

Test(event, set_then_interrupt_still_wakes_the_other_waiter_with_the_value)
{
    coro_event_t ev = CORO_EVENT_INIT;
    struct contract c = {.op = event_op,
                         .wake = set_7,
                         .final = event_is_7,
                         .obj = &ev,
                         .wake_first = true};
    contract_check(&c);
    cr_assert_eq(c.b.got, 7);
}

static int event_unset(void *ev)
{
    return coro_event_is_set(ev, NULL) ? -1 : 0;
}

Test(event, wait_fails_with_etimedout_under_a_deadline)
{
    coro_event_t ev = CORO_EVENT_INIT;
    struct contract c = {.op = event_op, .final = event_unset, .obj = &ev};
    timeout_check(&c);
}

static int event_late(void *arg)
{
    coro_event_t *ev = arg;
    if (coro_event_set(ev, (void *)1) != 0)
        return -1;
    if (coro_event_set(ev, (void *)2) != -1 || errno != EALREADY)
        return -1;
    void *v;
    return coro_event_wait(ev, &v) == 0 && v == (void *)1 ? 0 : -1;
}

Test(event, waiting_after_set_returns_the_first_value_at_once)
{
    coro_event_t ev;
    cr_assert_eq(coro_event_init(&ev), 0);
    cr_assert_eq(run_in_coro(event_late, &ev), 0);
    cr_assert_eq(coro_event_wait(NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
}

/*
 * Once coro_event_set() has returned, none of the event's waiters touch
 * it again, neither one set woke nor one an interrupt woke before and
 * that has not run yet: the event may be reused at once.  The storage is
 * overwritten right after set and must come out unchanged.
 */
struct event_reuse {
    unsigned char store[sizeof(coro_event_t)]; /* the event's storage */
    struct waiter a, b;                        /* out: a woken, b cut */
    bool parked;                               /* out: both waited */
};

static int event_reuse_run(void *arg)
{
    struct event_reuse *t = arg;
    coro_event_t *ev = (coro_event_t *)(void *)t->store;
    coro_event_init(ev);
    t->a = (struct waiter){.op = event_op, .obj = ev};
    t->b = (struct waiter){.op = event_op, .obj = ev};
    start(&t->a);
    start(&t->b);
    coro_yield();
    t->parked = all_waiting(&t->a, 1) && all_waiting(&t->b, 1);
    coro_interrupt(t->b.co, EINTR); /* b is woken, still queued */
    coro_event_set(ev, (void *)7);
    memset(t->store, 0xa5, sizeof t->store); /* reused */
    reap(&t->a);
    reap(&t->b);
    return 0;
}

Test(event, waiters_do_not_touch_the_event_once_set_has_returned)
{
    _Alignas(coro_event_t) struct event_reuse t;
    cr_assert_eq(run_in_coro(event_reuse_run, &t), 0);
    cr_assert(t.parked, "both waiters must block first");
    cr_assert_eq(t.a.rc, 0);
    cr_assert_eq(t.a.got, 7, "the value set, not what the storage holds");
    cr_assert_eq(t.b.rc, -1);
    cr_assert_eq(t.b.err, EINTR);
    for (size_t i = 0; i < sizeof t.store; i++)
        cr_assert_eq(t.store[i], 0xa5, "byte %zu of the storage changed", i);
}

/* ------------------------------------------------------------------ */
/* Across the primitives.                                             */

static int pending_first(void *arg)
{
    coro_sem_t *s = arg;
    coro_interrupt(coro_current(), ECANCELED);
    int rc = coro_sem_acquire(s, 1); /* units are there: still fails */
    return rc == -1 && errno == ECANCELED && coro_sem_value(s) == 1 ? 0 : -1;
}

Test(sync, a_pending_interrupt_fails_a_call_that_would_not_wait)
{
    coro_sem_t s = CORO_SEM_INIT(1);
    cr_assert_eq(run_in_coro(pending_first, &s), 0);
}

/*
 * The tornado question: a GET blocks until a POST hands it
 * data; the POST then blocks until a PUT hands it the reply.
 */
static coro_fifo_t to_server = CORO_FIFO_INIT, to_client = CORO_FIFO_INIT;

static int get(void *out) /* the server device long-polls */
{
    return coro_fifo_pop(&to_server, out);
}

static int post(void *out) /* the client device sends, awaits the reply */
{
    if (coro_fifo_push(&to_server, "ping") != 0)
        return -1;
    return coro_fifo_pop(&to_client, out);
}

static int put(void *arg) /* the server device answers */
{
    (void)arg;
    return coro_fifo_push(&to_client, "pong");
}

static int trampoline(void *tasks)
{
    return coro_in_parallel(tasks, 3);
}

Test(sync, tornado_get_blocks_until_a_post_hands_it_data)
{
    char *got = NULL, *reply = NULL;
    coro_task_t t[] = {
        {.fn = get, .arg = &got}, {.fn = post, .arg = &reply}, {.fn = put}};
    cr_assert_eq(run_in_coro(trampoline, t), 0);
    cr_assert_str_eq(got, "ping");
    cr_assert_str_eq(reply, "pong");
}
