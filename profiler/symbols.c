/*
 * Names of code addresses for reports: coro_symbolize() (which reads a
 * module's own symbol table when dladdr knows no name, so static
 * functions are named too), cut down to the function's name.
 */
#include "engine_internal.h"

#include <stdio.h>
#include <string.h>

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
