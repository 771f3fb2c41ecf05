/*
 * Names of code addresses for reports.  coro_symbolize() (dladdr) sees
 * only exported symbols: a program's static functions, and all of them
 * in a program linked without -rdynamic, would be anonymous.  When it
 * finds no name, the module's own symbol table (.symtab, present unless
 * the file was stripped) is read once and searched, so that static
 * functions are named too.
 *
 * Only in normal context (reports): files are opened and mapped.
 */
#include "engine_internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
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

static struct symtab *tabs; /* one per module met */
static size_t ntabs;

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
        t->syms = malloc((n ? n : 1) * sizeof *t->syms);
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
    struct symtab *t = realloc(tabs, (ntabs + 1) * sizeof *t);
    if (t == NULL)
        return NULL;
    tabs = t;
    t = &tabs[ntabs];
    *t = (struct symtab){.path = strdup(path)};
    if (t->path == NULL)
        return NULL;
    ntabs++;
    load(t, path);
    return t;
}

/* The static function at pc from its module's symbol table, or NULL. */
static const char *static_name(const void *pc)
{
    Dl_info di;
    if (dladdr(pc, &di) == 0 || di.dli_fname == NULL)
        return NULL;
    struct symtab *t = table(di.dli_fname);
    if (t == NULL || t->n == 0)
        return NULL;
    uintptr_t at = (uintptr_t)pc - (t->relative ? (uintptr_t)di.dli_fbase
                                                : 0);
    size_t lo = 0, hi = t->n;
    while (lo < hi) { /* the last symbol starting at or below at */
        size_t mid = lo + (hi - lo) / 2;
        if (t->syms[mid].lo <= at)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || at >= t->syms[lo - 1].hi)
        return NULL;
    return t->syms[lo - 1].name;
}

void prof__name_pc(const void *pc, bool is_return, bool bracket,
                   char *buf, size_t len)
{
    if (coro_symbolize(pc, is_return, buf, len) < 0 || len < 4) {
        snprintf(buf, len, "%p", pc);
        return;
    }
    /* "name+0x1a (module)": the name. */
    char *paren = strstr(buf, " (");
    if (paren != NULL) {
        *paren = '\0';
        char *plus = strrchr(buf, '+');
        if (plus != NULL)
            *plus = '\0';
        return;
    }
    const char *name = static_name((const char *)pc - (is_return ? 1 : 0));
    if (name != NULL) {
        snprintf(buf, len, "%s", name);
        return;
    }
    /* "module+0x1f3c": the address stays for a function's entry (one
     * name per function); for code inside an unknown function, "[module]"
     * merges the module's frames instead of splitting them by address. */
    char *plus = strrchr(buf, '+');
    if (bracket && plus != NULL && buf[0] != '0') {
        *plus = '\0';
        size_t l = strlen(buf);
        if (l + 3 > len)
            l = len - 3;
        memmove(buf + 1, buf, l);
        buf[0] = '[';
        buf[l + 1] = ']';
        buf[l + 2] = '\0';
    }
}

void prof__names_free(void)
{
    for (size_t i = 0; i < ntabs; i++) {
        free(tabs[i].path);
        free(tabs[i].syms);
        if (tabs[i].map != NULL)
            munmap(tabs[i].map, tabs[i].map_len);
    }
    free(tabs);
    tabs = NULL;
    ntabs = 0;
}
