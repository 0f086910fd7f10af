/*
 * check.h - minimal assertion helpers for the C core tests.
 *
 * Each CHECK* prints file:line and the failing expression (plus the values
 * where useful), counts the failure and goes on. A test's main() ends with
 * `return check_done();`, which prints a summary and returns non-zero if
 * anything failed. Header-only; include it once per test program.
 */
#ifndef NB_TEST_CHECK_H
#define NB_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(expr)                                                          \
    do {                                                                     \
        check_count++;                                                       \
        if (!(expr)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #expr);                                                  \
            check_failures++;                                                \
        }                                                                    \
    } while (0)

/* integers (compared and printed as long long / unsigned long long) */
#define CHECK_EQ_I(a, b)                                                        \
    do {                                                                        \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);         \
        check_count++;                                                          \
        if (check_a_ != check_b_) {                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",   \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);            \
            check_failures++;                                                   \
        }                                                                       \
    } while (0)

#define CHECK_EQ_U(a, b)                                                        \
    do {                                                                        \
        unsigned long long check_a_ = (unsigned long long)(a),                  \
                           check_b_ = (unsigned long long)(b);                  \
        check_count++;                                                          \
        if (check_a_ != check_b_) {                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%llu != %llu)\n",   \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);            \
            check_failures++;                                                   \
        }                                                                       \
    } while (0)

/* NUL-terminated strings; NULL is printed as (null) and equals only NULL */
#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *check_a_ = (a), *check_b_ = (b);                            \
        check_count++;                                                          \
        if (!((check_a_ == NULL && check_b_ == NULL) ||                         \
              (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0))) {     \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
                    __FILE__, __LINE__, #a, #b,                                 \
                    check_a_ ? check_a_ : "(null)",                             \
                    check_b_ ? check_b_ : "(null)");                            \
            check_failures++;                                                   \
        }                                                                       \
    } while (0)

/* byte ranges: equal length and equal contents */
#define CHECK_MEM(a, alen, b, blen)                                            \
    do {                                                                       \
        const void *check_a_ = (a), *check_b_ = (b);                           \
        size_t check_al_ = (size_t)(alen), check_bl_ = (size_t)(blen);         \
        check_count++;                                                         \
        if (check_al_ != check_bl_ ||                                          \
            (check_al_ && memcmp(check_a_, check_b_, check_al_) != 0)) {       \
            fprintf(stderr, "%s:%d: CHECK failed: %s[%zu] == %s[%zu]\n",      \
                    __FILE__, __LINE__, #a, check_al_, #b, check_bl_);         \
            check_failures++;                                                  \
        }                                                                      \
    } while (0)

static int check_done(void)
{
    if (check_failures) {
        fprintf(stderr, "%d of %d checks FAILED\n", check_failures, check_count);
        return 1;
    }
    printf("all %d checks passed\n", check_count);
    return 0;
}

/* A small deterministic PRNG for the tests (xorshift64*). Each test file
 * defines CHECK_RNG_SEED before use to get its own sequence. */
#ifndef CHECK_RNG_SEED
#define CHECK_RNG_SEED 0x9E3779B97F4A7C15ull
#endif
static uint64_t rng_state = CHECK_RNG_SEED;

static uint32_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

#endif
