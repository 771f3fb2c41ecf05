/*
 * Names of static functions.  dladdr() sees only the dynamic symbol
 * table: a program's static functions, and all of its functions when it
 * is linked without -rdynamic, would be anonymous.  When dladdr finds no
 * name, the module's own symbol table (.symtab, present unless the file
 * was stripped) is read once and searched.  Normal context only: files
 * are opened and mapped.
 */
#include "coro_internal.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct fsym {
    uintptr_t lo, hi;  /* [lo, hi): file addresses of the function */
    const char *name;  /* in the mapped file */
};

struct symtab {
    char *path;        /* dli_fname it was loaded for; owned */
    void *map;         /* the whole file, or NULL when unreadable */
    size_t map_len;
    bool relative;     /* ET_DYN: addresses are relative to the base */
    struct fsym *syms; /* sorted by lo; owned */
    size_t n;
};

/* One per module met, kept for the life of the process (the names point
 * into the mapped files).  Under lock: any thread may symbolize. */
static struct symtab *tabs;
static size_t ntabs;
static pthread_mutex_t tabs_lock = PTHREAD_MUTEX_INITIALIZER;

static int cmp_sym(const void *a, const void *b)
{
    const struct fsym *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* Read path's function symbols into t (left empty on any failure). */
static void load(struct symtab *t, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && strchr(path, '/') == NULL)
        fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    void *map = MAP_FAILED;
    if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(ElfW(Ehdr)))
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return;
    t->map = map;
    t->map_len = (size_t)st.st_size;
    const unsigned char *base = map;
    const ElfW(Ehdr) *eh = map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_shentsize != sizeof(ElfW(Shdr)) ||
        eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > t->map_len)
        return;
    t->relative = eh->e_type == ET_DYN;
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
            continue;
        const ElfW(Shdr) *strs = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > t->map_len ||
            strs->sh_offset + strs->sh_size > t->map_len ||
            sh[i].sh_entsize != sizeof(ElfW(Sym)))
            return;
        const ElfW(Sym) *sym = (const ElfW(Sym) *)(base + sh[i].sh_offset);
        size_t n = sh[i].sh_size / sizeof *sym;
        t->syms = coro__sys_malloc((n ? n : 1) * sizeof *t->syms);
        if (t->syms == NULL)
            return;
        for (size_t k = 0; k < n; k++) {
            if ((sym[k].st_info & 0xf) != STT_FUNC ||
                sym[k].st_shndx == SHN_UNDEF || sym[k].st_size == 0 ||
                sym[k].st_name >= strs->sh_size)
                continue;
            t->syms[t->n++] = (struct fsym){
                sym[k].st_value, sym[k].st_value + sym[k].st_size,
                (const char *)base + strs->sh_offset + sym[k].st_name};
        }
        qsort(t->syms, t->n, sizeof *t->syms, cmp_sym);
        return;
    }
}

/* The table of module path, loaded on first use; NULL on ENOMEM. */
static struct symtab *table(const char *path)
{
    for (size_t i = 0; i < ntabs; i++)
        if (strcmp(tabs[i].path, path) == 0)
            return &tabs[i];
    struct symtab *t = coro__sys_realloc(tabs, (ntabs + 1) * sizeof *t);
    if (t == NULL)
        return NULL;
    tabs = t;
    t = &tabs[ntabs];
    size_t len = strlen(path) + 1;
    *t = (struct symtab){.path = coro__sys_malloc(len)};
    if (t->path == NULL)
        return NULL;
    memcpy(t->path, path, len);
    ntabs++;
    load(t, path);
    return t;
}

bool coro__symtab_find(const char *path, uintptr_t base, const void *pc,
                       const char **name, uintptr_t *off)
{
    pthread_mutex_lock(&tabs_lock);
    struct symtab *t = table(path);
    bool found = false;
    if (t != NULL && t->n != 0) {
        uintptr_t at = (uintptr_t)pc - (t->relative ? base : 0);
        size_t lo = 0, hi = t->n;
        while (lo < hi) { /* the last symbol starting at or below at */
            size_t mid = lo + (hi - lo) / 2;
            if (t->syms[mid].lo <= at)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0 && at < t->syms[lo - 1].hi) {
            *name = t->syms[lo - 1].name;
            *off = at - t->syms[lo - 1].lo;
            found = true;
        }
    }
    pthread_mutex_unlock(&tabs_lock);
    return found;
}
