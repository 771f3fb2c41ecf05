/*
 * System seams: every system call and allocation the core makes goes
 * through here, so tests can make any of them fail (coro__sys_fail) and
 * drive the ENOMEM paths for real.  Platform #ifs of the core live here.
 */
#include "coro_internal.h"

#include <signal.h>
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#include <sys/sendfile.h>
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

/* ------------------------------------------------------------------ */
/* Sockets (socket.c)                                                  */

#if defined(MSG_NOSIGNAL)
const int coro__sys_msg_nosignal = MSG_NOSIGNAL;
#else
const int coro__sys_msg_nosignal = 0; /* macOS: SO_NOSIGPIPE per socket */
#endif

/* Make fd non-blocking and close-on-exec where the call could not, and
 * keep SIGPIPE off it where MSG_NOSIGNAL does not exist.  0 or -1. */
static int sock_setup(int fd, bool flags_done)
{
    if (!flags_done &&
        (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
         fcntl(fd, F_SETFD, FD_CLOEXEC) != 0))
        return -1;
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return 0;
}

/* Close fd after a failed setup, keeping the errno of the failure. */
static int sock_fail(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int coro__sys_socket(int domain, int type, int protocol)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    bool done = true;
#else
    int fd = socket(domain, type, protocol);
    bool done = false;
#endif
    if (fd >= 0 && sock_setup(fd, done) != 0)
        return sock_fail(fd);
    return fd;
}

int coro__sys_socketpair(int domain, int type, int protocol, int sv[2])
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    int rc = socketpair(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        protocol, sv);
    bool done = true;
#else
    int rc = socketpair(domain, type, protocol, sv);
    bool done = false;
#endif
    if (rc == 0 && (sock_setup(sv[0], done) != 0 ||
                    sock_setup(sv[1], done) != 0)) {
        int saved = errno;
        close(sv[0]);
        close(sv[1]);
        errno = saved;
        return -1;
    }
    return rc;
}

int coro__sys_accept(int lfd, struct sockaddr *addr, socklen_t *addrlen)
{
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    int fd = accept4(lfd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    bool done = true;
#else
    int fd = accept(lfd, addr, addrlen);
    bool done = false;
#endif
    if (fd >= 0 && sock_setup(fd, done) != 0)
        return sock_fail(fd);
    return fd;
}

ssize_t coro__sys_sendfile(int out_fd, int in_fd, off_t *offset,
                           size_t count)
{
#if defined(__linux__)
    return sendfile(out_fd, in_fd, offset, count);
#else
    /* A portable stand-in: one buffer's worth through pread/read. */
    char buf[16384];
    size_t want = count < sizeof buf ? count : sizeof buf;
    ssize_t got = offset != NULL ? pread(in_fd, buf, want, *offset)
                                 : read(in_fd, buf, want);
    if (got <= 0)
        return got;
    ssize_t put = write(out_fd, buf, (size_t)got);
    if (put < 0) {
        if (offset == NULL) { /* give the unsent bytes back to the file */
            int saved = errno;
            lseek(in_fd, -got, SEEK_CUR);
            errno = saved;
        }
        return -1;
    }
    if (offset != NULL)
        *offset += put;
    else if (put < got)
        lseek(in_fd, put - got, SEEK_CUR);
    return put;
#endif
}

/* Whether SIGPIPE is ignored because we set it so (not the program). */
static atomic_bool sigpipe_ours;

static void sigpipe_ignore(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
        old.sa_handler == SIG_DFL) {
        struct sigaction ign = {.sa_handler = SIG_IGN};
        sigemptyset(&ign.sa_mask);
        if (sigaction(SIGPIPE, &ign, NULL) == 0)
            atomic_store(&sigpipe_ours, true);
    }
}

bool coro__sys_sigpipe_ours(void)
{
    return atomic_load(&sigpipe_ours);
}

void coro__sys_sigpipe_off(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sigpipe_ignore);
}

bool coro__sys_uctx_regs(const void *uctx, uintptr_t *pc, uintptr_t *fp,
                         uintptr_t *sp)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    *sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    return true;
#elif defined(__aarch64__)
    *pc = (uintptr_t)uc->uc_mcontext.pc;
    *fp = (uintptr_t)uc->uc_mcontext.regs[29];
    *sp = (uintptr_t)uc->uc_mcontext.sp;
    return true;
#else
    (void)uc, (void)pc, (void)fp, (void)sp;
    return false;
#endif
}

void coro__sys_symbolize(const void *pc, struct coro__sym *out)
{
    *out = (struct coro__sym){0};
    Dl_info di;
#if defined(__GLIBC__)
    /* dladdr names the nearest exported symbol below pc even when pc lies
     * in a hidden or static function far past it: the symbol's size (from
     * dladdr1) tells whether the name is true. */
    const ElfW(Sym) *sym = NULL;
    if (dladdr1(pc, &di, (void **)&sym, RTLD_DL_SYMENT) == 0)
        return;
    uintptr_t at = (uintptr_t)di.dli_saddr;
    if (di.dli_sname != NULL && sym != NULL && (uintptr_t)pc >= at &&
        (uintptr_t)pc - at < sym->st_size) {
        out->name = di.dli_sname;
        out->name_off = (uintptr_t)pc - at;
    } else if (di.dli_fname != NULL) {
        /* A static (or, without -rdynamic, any) function of the module. */
        coro__symtab_find(di.dli_fname, (uintptr_t)di.dli_fbase, pc,
                          &out->name, &out->name_off);
    }
#else
    /* Without symbol sizes the name may belong to an earlier function;
     * the module offset below is always right. */
    if (dladdr(pc, &di) == 0)
        return;
    if (di.dli_sname != NULL && di.dli_saddr != NULL) {
        out->name = di.dli_sname;
        out->name_off = (uintptr_t)pc - (uintptr_t)di.dli_saddr;
    }
#endif
    if (di.dli_fname != NULL) {
        const char *slash = strrchr(di.dli_fname, '/');
        out->module = slash != NULL ? slash + 1 : di.dli_fname;
        out->module_off = (uintptr_t)pc - (uintptr_t)di.dli_fbase;
    }
}
