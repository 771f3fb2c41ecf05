/*
 * The backdoor's input parsing as pure functions (backdoor/parse.c):
 * telnet commands, line ends and editing bytes, the line limit, word
 * splitting with quotes, and the value parsers; then the fuzz harness's
 * seeds replayed through it.
 */
#include "parse_internal.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

TestSuite(bd_parse, .timeout = 30);

static struct coro__bd_lexer lx;

/* Feed s (n bytes) and collect the events, lines and replies as text:
 * "L<line>|", "T|" (too long), "C|" (cancel), "E|" (EOF), "R<3 bytes>|". */
static const char *lex_all(const void *s, size_t n)
{
    static char out[16384];
    size_t o = 0, pos = 0;
    coro__bd_lex_init(&lx);
    while (pos < n) {
        size_t used;
        enum coro__bd_event ev =
            coro__bd_lex(&lx, (const unsigned char *)s + pos, n - pos, &used);
        pos += used;
        switch (ev) {
        case CORO__BD_LINE:
            o += (size_t)snprintf(out + o, sizeof out - o, "L%s|", lx.line);
            break;
        case CORO__BD_TOOLONG:
            o += (size_t)snprintf(out + o, sizeof out - o, "T|");
            break;
        case CORO__BD_CANCEL:
            o += (size_t)snprintf(out + o, sizeof out - o, "C|");
            break;
        case CORO__BD_EOF:
            o += (size_t)snprintf(out + o, sizeof out - o, "E|");
            break;
        case CORO__BD_REPLY:
            o += (size_t)snprintf(out + o, sizeof out - o, "R%02x%02x%02x|",
                                  lx.reply[0], lx.reply[1], lx.reply[2]);
            break;
        case CORO__BD_MORE:
            break;
        }
    }
    out[o] = '\0';
    return out;
}

#define LEX(lit) lex_all((lit), sizeof(lit) - 1)

Test(bd_parse, cr_lf_cr_nul_lone_cr_and_lf_each_end_one_line)
{
    cr_assert_str_eq(LEX("a\r\nb\nc\r\0d\re\n"), "La|Lb|Lc|Ld|Le|");
    cr_assert_str_eq(LEX("\n\r\n"), "L|L|");
}

Test(bd_parse, telnet_requests_are_refused_and_other_commands_dropped)
{
    /* DO ECHO -> WONT ECHO; WILL NAWS -> DONT NAWS; WONT/DONT get no
     * answer (no negotiation loops); SB...SE, NOP and GA vanish. */
    cr_assert_str_eq(LEX("\xff\xfd\x01\xff\xfb\x1f\xff\xfc\x01\xff\xfe\x01"
                         "x\xff\xfa\x1f\x00\x50\xff\xff\xff\xf0y\xff\xf1"
                         "\xff\xf9z\n"),
                     "Rfffc01|Rfffe1f|Lxyz|");
    /* IAC IAC is a data byte 255. */
    cr_assert_str_eq(LEX("a\xff\xff"
                         "b\n"),
                     "La\xff"
                     "b|");
    /* A sequence split across reads is still understood. */
    coro__bd_lex_init(&lx);
    size_t used;
    cr_assert_eq(coro__bd_lex(&lx, (const unsigned char *)"\xff", 1, &used),
                 CORO__BD_MORE);
    cr_assert_eq(coro__bd_lex(&lx, (const unsigned char *)"\xfd", 1, &used),
                 CORO__BD_MORE);
    cr_assert_eq(coro__bd_lex(&lx, (const unsigned char *)"\x03", 1, &used),
                 CORO__BD_REPLY);
    cr_assert_eq(lx.reply[2], 3);
}

Test(bd_parse, control_bytes_edit_cancel_or_end_the_input)
{
    cr_assert_str_eq(LEX("pss\x08 \x7f\n"), "Lps|");
    cr_assert_str_eq(LEX("junk\x15ps\n"), "Lps|");         /* ^U */
    cr_assert_str_eq(LEX("half\x03ps\n"), "C|Lps|");       /* ^C */
    cr_assert_str_eq(LEX("x\xff\xf4y\n"), "C|Ly|");        /* IAC IP */
    cr_assert_str_eq(LEX("a\x04\n\x04"), "La|E|");         /* ^D when empty */
    cr_assert_str_eq(LEX("\xff\xec"), "E|");               /* IAC EOF */
    cr_assert_str_eq(LEX("a\x01\x1b[A\tb\n"), "La[A\tb|"); /* dropped */
}

Test(bd_parse, a_line_over_the_limit_is_reported_once_and_skipped)
{
    static char in[3 * CORO__BD_LINE_MAX];
    memset(in, 'a', CORO__BD_LINE_MAX);
    in[CORO__BD_LINE_MAX] = '\n';
    const char *out = lex_all(in, CORO__BD_LINE_MAX + 1);
    cr_assert_eq(strlen(out), CORO__BD_LINE_MAX + 2, "the limit fits");
    memset(in, 'a', 2 * CORO__BD_LINE_MAX);
    memcpy(in + 2 * CORO__BD_LINE_MAX, "\nok\n", 4);
    cr_assert_str_eq(lex_all(in, 2 * CORO__BD_LINE_MAX + 4), "T|Lok|");
}

static int split(const char *line, char **argv, char *buf, const char **err)
{
    snprintf(buf, 256, "%s", line);
    return coro__bd_split(buf, argv, 4, err);
}

Test(bd_parse, words_split_on_blanks_with_quotes_and_backslashes)
{
    char buf[256], *argv[5];
    const char *err;
    cr_assert_eq(split("  set  name\t\"a \\\"b\\\" \\\\\" ", argv, buf, &err),
                 3);
    cr_assert_str_eq(argv[0], "set");
    cr_assert_str_eq(argv[1], "name");
    cr_assert_str_eq(argv[2], "a \"b\" \\");
    cr_assert_null(argv[3]);
    cr_assert_eq(split("'it''s' x\\ y '' \"\"", argv, buf, &err), 4);
    cr_assert_str_eq(argv[0], "its");
    cr_assert_str_eq(argv[1], "x y");
    cr_assert_str_eq(argv[2], "");
    cr_assert_str_eq(argv[3], "");
    cr_assert_eq(split("   ", argv, buf, &err), 0);
    cr_assert_eq(split("# ps", argv, buf, &err), 0);
    cr_assert_eq(split("a 'b", argv, buf, &err), -1);
    cr_assert_str_eq(err, "unterminated '");
    cr_assert_eq(split("a \"b", argv, buf, &err), -1);
    cr_assert_str_eq(err, "unterminated \"");
    cr_assert_eq(split("a\\", argv, buf, &err), -1);
    cr_assert_str_eq(err, "trailing backslash");
    cr_assert_eq(split("1 2 3 4 5", argv, buf, &err), -1);
    cr_assert_str_eq(err, "too many words");
}

Test(bd_parse, values_parse_whole_and_in_range_only)
{
    int64_t v;
    double d;
    bool b;
    cr_assert_eq(coro__bd_parse_i64("-42", &v), 0);
    cr_assert_eq(v, -42);
    cr_assert_eq(coro__bd_parse_i64("0x1F", &v), 0);
    cr_assert_eq(v, 31);
    cr_assert_eq(coro__bd_parse_i64("010", &v), 0);
    cr_assert_eq(v, 10, "decimal, not octal");
    static const char *const bad_i[] = {
        "", " 1", "1 ", "1x", "0x", "--1", "0x-1", "9223372036854775808"};
    for (size_t i = 0; i < sizeof bad_i / sizeof bad_i[0]; i++)
        cr_assert_eq(coro__bd_parse_i64(bad_i[i], &v), -1, "'%s'", bad_i[i]);
    cr_assert_eq(coro__bd_parse_double("2.5e-3", &d), 0);
    cr_assert_eq(d, 2.5e-3);
    static const char *const bad_d[] = {"",    " 1",  "1.0.0",
                                        "nan", "inf", "1e999"};
    for (size_t i = 0; i < sizeof bad_d / sizeof bad_d[0]; i++)
        cr_assert_eq(coro__bd_parse_double(bad_d[i], &d), -1, "'%s'", bad_d[i]);
    cr_assert_eq(coro__bd_parse_bool("ON", &b), 0);
    cr_assert(b);
    cr_assert_eq(coro__bd_parse_bool("no", &b), 0);
    cr_assert(!b);
    cr_assert_eq(coro__bd_parse_bool("2", &b), -1);
    cr_assert_eq(coro__bd_errno_of("etimedout"), ETIMEDOUT);
    cr_assert_eq(coro__bd_errno_of("5"), 5);
    cr_assert_eq(coro__bd_errno_of("0"), -1);
    cr_assert_eq(coro__bd_errno_of("4096"), -1);
    cr_assert_str_eq(coro__bd_errno_name(ECANCELED), "ECANCELED");
    cr_assert(coro__bd_name_ok("max_conns.v2-x"));
    cr_assert(!coro__bd_name_ok("Max"));
    cr_assert(!coro__bd_name_ok("_x"));
    cr_assert(coro__bd_file_name_ok("flame-1.svg"));
    cr_assert(!coro__bd_file_name_ok("..x"));
    cr_assert(!coro__bd_file_name_ok("a/b"));
}

Test(bd_parse, the_fuzz_harness_accepts_every_seed)
{
    DIR *d = opendir(FUZZ_SEEDS);
    cr_assert_not_null(d, "%s: %s", FUZZ_SEEDS, strerror(errno));
    int n = 0;
    static unsigned char buf[1 << 16];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", FUZZ_SEEDS, e->d_name);
        FILE *f = fopen(p, "rb");
        cr_assert_not_null(f, "%s", p);
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        /* Every chunk size: the first byte chooses it. */
        for (int first = 0; first < 64 && len > 0; first++) {
            unsigned char keep = buf[0];
            buf[0] = (unsigned char)first;
            cr_assert_eq(LLVMFuzzerTestOneInput(buf, len), 0);
            buf[0] = keep;
        }
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 5, "the seeds are there");
}
