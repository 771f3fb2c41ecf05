/*
 * Fuzz harness for the backdoor's input parsing (backdoor/parse.c): the
 * bytes are fed to the lexer in chunks whose size the first byte chooses,
 * every line is split into words and every word goes through each value
 * parser.  Invariants are checked with abort(), so a fuzzer reports a
 * violation like a crash.
 *
 * libFuzzer: sh scripts/run.sh fuzz [SECONDS] builds it with clang
 * -fsanitize=fuzzer,address,undefined and runs it from tests/fuzz/seeds.
 * The Criterion test test_backdoor_parse links it too and replays the
 * seeds, so it builds with every compiler and variant.
 */
#include "parse_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

static void check_words(const char *line)
{
    static char copy[CORO__BD_LINE_MAX + 1];
    size_t len = strlen(line);
    CHECK(len <= CORO__BD_LINE_MAX);
    memcpy(copy, line, len + 1);
    char *argv[CORO__BD_ARGS_MAX + 1];
    const char *err = NULL;
    int argc = coro__bd_split(copy, argv, CORO__BD_ARGS_MAX, &err);
    if (argc < 0) {
        CHECK(err != NULL);
        return;
    }
    CHECK(argc <= CORO__BD_ARGS_MAX && argv[argc] == NULL);
    for (int i = 0; i < argc; i++) {
        /* Words live inside the line, in order, and end there. */
        CHECK(argv[i] >= copy && argv[i] + strlen(argv[i]) <= copy + len);
        CHECK(i == 0 || argv[i] > argv[i - 1]);
        int64_t v;
        double d;
        bool b;
        if (coro__bd_parse_double(argv[i], &d) == 0)
            CHECK(d == d && d - d == 0); /* finite */
        (void)coro__bd_parse_i64(argv[i], &v);
        (void)coro__bd_parse_bool(argv[i], &b);
        int e = coro__bd_errno_of(argv[i]);
        CHECK(e == -1 || (e >= 1 && e <= 4095));
        if (coro__bd_name_ok(argv[i]))
            CHECK(strlen(argv[i]) <= 31 && strchr(argv[i], ' ') == NULL);
        if (coro__bd_file_name_ok(argv[i]))
            CHECK(strchr(argv[i], '/') == NULL && argv[i][0] != '.');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct coro__bd_lexer lx;
    coro__bd_lex_init(&lx);
    size_t chunk = size > 0 ? data[0] % 64 + 1 : 1;
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t pos = 0;
        while (pos < n) {
            size_t used = 0;
            enum coro__bd_event ev =
                coro__bd_lex(&lx, data + off + pos, n - pos, &used);
            CHECK(used >= 1 && used <= n - pos); /* progress, in bounds */
            pos += used;
            CHECK(lx.len <= CORO__BD_LINE_MAX);
            if (ev == CORO__BD_LINE) {
                for (const char *p = lx.line; *p; p++)
                    CHECK((unsigned char)*p >= ' ' || *p == '\t');
                check_words(lx.line);
            } else if (ev == CORO__BD_REPLY) {
                CHECK(lx.reply[0] == 255);
                CHECK(lx.reply[1] == 252 || lx.reply[1] == 254);
            } else {
                CHECK(ev == CORO__BD_MORE || ev == CORO__BD_TOOLONG ||
                      ev == CORO__BD_CANCEL || ev == CORO__BD_EOF);
            }
        }
    }
    return 0;
}
