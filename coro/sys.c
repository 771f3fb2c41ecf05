/*
 * System seams: every system call and allocation the core makes goes
 * through here, so tests can make any of them fail (coro__sys_fail) and
 * drive the ENOMEM paths for real.  Platform #ifs of the core live here.
 */
#include "coro_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#include <sys/syscall.h>
#endif

/* Injected failures, per operation: fail the call when countdown hits 1. */
static __thread struct {
    int countdown; /* 0: no failure planned */
    int err;       /* errno to fail with */
} faults[CORO__SYS_OPS];

void coro__sys_fail(enum coro__sys_op op, int nth, int err)
{
    faults[op].countdown = nth;
    faults[op].err = err;
}

/* True (errno set) when this call of op must fail. */
static bool fault(enum coro__sys_op op)
{
    if (CORO__LIKELY(faults[op].countdown == 0))
        return false;
    if (--faults[op].countdown != 0)
        return false;
    errno = faults[op].err;
    return true;
}

void *coro__sys_mmap(size_t len)
{
    if (fault(CORO__SYS_MMAP))
        return NULL;
    /* NORESERVE: a million 64 KiB stacks reserve 64 GiB of address space
     * but only the pages they touch cost memory. */
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *coro__sys_mmap_untested(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int coro__sys_munmap(void *p, size_t len)
{
    return munmap(p, len);
}

int coro__sys_mprotect_none(void *p, size_t len)
{
    if (fault(CORO__SYS_MPROTECT))
        return -1;
    return mprotect(p, len, PROT_NONE);
}

int coro__sys_madvise_free(void *p, size_t len)
{
    /* DONTNEED, not FREE: the pages must read back as zeros, so a stale
     * coroutine pointer into a released stack sees no valid record. */
    return madvise(p, len, MADV_DONTNEED);
}

void *coro__sys_malloc(size_t n)
{
    if (fault(CORO__SYS_MALLOC))
        return NULL;
    return malloc(n);
}

void *coro__sys_calloc(size_t n, size_t size)
{
    if (fault(CORO__SYS_MALLOC))
        return NULL;
    return calloc(n, size);
}

void *coro__sys_realloc(void *p, size_t n)
{
    if (fault(CORO__SYS_MALLOC))
        return NULL;
    return realloc(p, n);
}

void coro__sys_free(void *p)
{
    free(p);
}

long coro__sys_max_map_count(void)
{
    long n = 65530; /* Linux's default, when the file cannot be read */
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f != NULL) {
        if (fscanf(f, "%ld", &n) != 1 || n <= 0)
            n = 65530;
        fclose(f);
    }
    return n;
}

/* The wake-up fd: an eventfd on Linux (one fd, a counter), a pipe
 * elsewhere.  Both ends are non-blocking and close-on-exec. */
int coro__sys_wakeup_open(int *rfd, int *wfd)
{
#if defined(__linux__)
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    *rfd = *wfd = fd;
    return 0;
#else
    int p[2];
    if (pipe(p) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    *rfd = p[0];
    *wfd = p[1];
    return 0;
#endif
}

void coro__sys_wakeup_signal(int wfd)
{
    /* EAGAIN means the counter or pipe is full: a wake-up is pending
     * anyway.  Any thread may call this. */
#if defined(__linux__)
    uint64_t one = 1;
    ssize_t n = write(wfd, &one, sizeof one);
#else
    char one = 1;
    ssize_t n = write(wfd, &one, 1);
#endif
    (void)n;
}

void coro__sys_wakeup_drain(int rfd)
{
    char buf[64];
    while (read(rfd, buf, sizeof buf) > 0)
        ;
}

void coro__sys_wakeup_close(int rfd, int wfd)
{
    close(rfd);
    if (wfd != rfd)
        close(wfd);
}

int coro__sys_pipe_cloexec(int p[2])
{
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) ||      \
    defined(__OpenBSD__) || defined(__DragonFly__)
    return pipe2(p, O_CLOEXEC);
#else
    /* No pipe2 (macOS): a fork() in another thread between the two calls
     * could leak the pipe into a child; coro's own spawns do not fork. */
    if (pipe(p) != 0)
        return -1;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

int coro__sys_pidfd_open(pid_t pid)
{
#if defined(__linux__) && defined(SYS_pidfd_open)
    /* The raw system call: glibc has a wrapper only since 2.36. */
    return (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

const char *coro__sys_fault_sp(const void *uctx)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (const char *)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (const char *)uc->uc_mcontext.sp;
#else
    (void)uc;
    return NULL;
#endif
}
