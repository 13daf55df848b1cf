/*
 * bot.market._bookcore: CRC-32, zlib's (reflected, polynomial 0xEDB88320), which Kraken's
 * book checksum is.
 *
 * Owns the slicing-by-8 tables (built at import), the carry-less multiplication fold
 * (PCLMULQDQ) used for the bulk of a buffer on x86-64 when the CPU has it (asked at
 * import: crc_start), crc_of_fragments (the CRC of a side's fragment list, which
 * _bookcore_apply.c verifies an update with) and the module function crc32(), the tests'
 * way in to both implementations.
 */

#include "_bookcore.h"

static uint32_t crc_table[8][256];

static void
crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[k][n] = c;
        }
    }
}

/* zlib.crc32(data, crc): continue the CRC `crc` over `len` bytes. Slicing-by-8; the
 * bytes are assembled one by one, so it is endian-neutral. */
static uint32_t
crc_table_update(uint32_t crc, const unsigned char *p, size_t len)
{
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t one = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                            (uint32_t)p[3] << 24);
        c = crc_table[7][one & 0xff] ^ crc_table[6][(one >> 8) & 0xff] ^
            crc_table[5][(one >> 16) & 0xff] ^ crc_table[4][one >> 24] ^
            crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
            crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--) {
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    }
    return ~c;
}

/* On x86-64, the bulk of a buffer is folded with carry-less multiplication (PCLMULQDQ),
 * about ten times faster than the tables; the CPU is asked at import. This is the
 * algorithm and these are the constants of Intel's "Fast CRC Computation for Generic
 * Polynomials Using PCLMULQDQ Instruction" (Gopal et al., 2009) for the reflected
 * polynomial 0xEDB88320, as zlib's x86 SIMD code (Chromium) has them. The tests check it
 * against zlib.crc32 at every length up to a few hundred bytes. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BOOKCORE_CLMUL 1
#include <immintrin.h>

static int crc_use_clmul; /* the CPU has PCLMULQDQ and SSE4.1 */

/* The raw CRC register `crc` (not inverted) continued over `len` bytes, len >= 64 and a
 * multiple of 16. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t
crc_fold(const unsigned char *buf, size_t len, uint32_t crc)
{
    /* x^(4*128+32), x^(4*128-32), x^(128+32), x^(128-32), x^64 and the Barrett constants,
     * all mod P, bit-reflected. */
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
    const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124LL);
    const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
    const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
    __m128i x0, x1, x2, x3, x4, x5, x6, x7, x8;

    /* Four lanes of 16 bytes, folded 64 bytes at a time. */
    x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
    x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
    x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
    x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
    buf += 64;
    len -= 64;
    while (len >= 64) {
        x5 = _mm_clmulepi64_si128(x1, k1k2, 0x00);
        x6 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
        x7 = _mm_clmulepi64_si128(x3, k1k2, 0x00);
        x8 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
        x1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
        x2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
        x3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
        x4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x5),
                           _mm_loadu_si128((const __m128i *)(buf + 0x00)));
        x2 = _mm_xor_si128(_mm_xor_si128(x2, x6),
                           _mm_loadu_si128((const __m128i *)(buf + 0x10)));
        x3 = _mm_xor_si128(_mm_xor_si128(x3, x7),
                           _mm_loadu_si128((const __m128i *)(buf + 0x20)));
        x4 = _mm_xor_si128(_mm_xor_si128(x4, x8),
                           _mm_loadu_si128((const __m128i *)(buf + 0x30)));
        buf += 64;
        len -= 64;
    }
    /* The four lanes into one. */
    x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
    x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x3), x5);
    x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
    x1 = _mm_xor_si128(_mm_xor_si128(x1, x4), x5);
    /* The remaining blocks of 16. */
    while (len >= 16) {
        x2 = _mm_loadu_si128((const __m128i *)buf);
        x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, x2), x5);
        buf += 16;
        len -= 16;
    }
    /* 128 bits to 64. */
    x2 = _mm_clmulepi64_si128(x1, k3k4, 0x10);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
    x2 = _mm_srli_si128(x1, 4);
    x1 = _mm_and_si128(x1, low32);
    x1 = _mm_clmulepi64_si128(x1, k5k0, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    /* Barrett reduction to 32 bits. */
    x2 = _mm_and_si128(x1, low32);
    x2 = _mm_clmulepi64_si128(x2, poly, 0x10);
    x2 = _mm_and_si128(x2, low32);
    x2 = _mm_clmulepi64_si128(x2, poly, 0x00);
    x1 = _mm_xor_si128(x1, x2);
    x0 = x1;
    return (uint32_t)_mm_extract_epi32(x0, 1);
}

static void
crc_detect(void)
{
    __builtin_cpu_init();
    crc_use_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}
#else
static const int crc_use_clmul = 0;
static void
crc_detect(void)
{
}
#endif

/* zlib.crc32(data, crc): the folding for the bulk when the CPU has it, the tables for the
 * rest. */
static uint32_t
crc_update(uint32_t crc, const unsigned char *p, size_t len)
{
#ifdef BOOKCORE_CLMUL
    if (crc_use_clmul && len >= 64) {
        size_t bulk = len & ~(size_t)15;
        crc = ~crc_fold(p, bulk, ~crc);
        p += bulk;
        len -= bulk;
    }
#endif
    return crc_table_update(crc, p, len);
}

/* memcpy for the short runs a fragment is (a price's and a qty's digits, 2 to 40
 * bytes): fixed-size moves, overlapping for the lengths in between, instead of a call or
 * a `rep movs` whose start-up costs more than the copy. Reads and writes only [0, len).
 * No loops: a compiler turns a copy loop back into a memcpy call. */
static inline void
copy_short(unsigned char *to, const unsigned char *from, size_t len)
{
    uint64_t a, b, c, d;
    uint32_t e, f;
    if (len > 32) {
        memcpy(to, from, len);
    }
    else if (len > 16) { /* the first 16 bytes, then the last 16 */
        memcpy(&a, from, 8);
        memcpy(&b, from + 8, 8);
        memcpy(&c, from + len - 16, 8);
        memcpy(&d, from + len - 8, 8);
        memcpy(to, &a, 8);
        memcpy(to + 8, &b, 8);
        memcpy(to + len - 16, &c, 8);
        memcpy(to + len - 8, &d, 8);
    }
    else if (len >= 8) {
        memcpy(&a, from, 8);
        memcpy(&b, from + len - 8, 8);
        memcpy(to, &a, 8);
        memcpy(to + len - 8, &b, 8);
    }
    else if (len >= 4) {
        memcpy(&e, from, 4);
        memcpy(&f, from + len - 4, 4);
        memcpy(to, &e, 4);
        memcpy(to + len - 4, &f, 4);
    }
    else if (len > 0) {
        to[0] = from[0];
        to[len / 2] = from[len / 2];
        to[len - 1] = from[len - 1];
    }
}

/* The CRC of a list of bytes joined, continued from `crc`. The fragments are copied
 * into one buffer first: the CRC runs faster over one run than over twenty short ones.
 * Returns 0 and sets *out, or -1 with TypeError (an item that is not bytes, which is
 * what b"".join would raise). */
int
crc_of_fragments(PyObject *frags, uint32_t crc, uint32_t *out)
{
    unsigned char buf[1024];
    size_t used = 0;
    Py_ssize_t n = PyList_GET_SIZE(frags);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(frags, i);
        if (!PyBytes_CheckExact(item)) {
            PyErr_Format(PyExc_TypeError,
                         "book checksum fragment %zd: expected bytes, got %.100s", i,
                         Py_TYPE(item)->tp_name);
            return -1;
        }
        size_t len = (size_t)PyBytes_GET_SIZE(item);
        const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(item);
        if (used + len > sizeof(buf)) {
            crc = crc_update(crc, buf, used);
            used = 0;
        }
        if (len > sizeof(buf)) {
            crc = crc_update(crc, data, len);
            continue;
        }
        copy_short(buf + used, data, len);
        used += len;
    }
    *out = crc_update(crc, buf, used);
    return 0;
}

/* At import: the tables built and the CPU asked. Returns 1 if the fold is used (the
 * module's CRC32_CLMUL), else 0. */
int
crc_start(void)
{
    crc_init();
    crc_detect();
    return crc_use_clmul;
}

PyDoc_STRVAR(crc32_doc,
"crc32(data, value=0, portable=False, /)\n--\n\n"
"zlib.crc32 as this module computes it, for the tests: with the CPU's carry-less\n"
"multiplication when it has it (CRC32_CLMUL), or with the tables alone if portable.");

static PyObject *
crc32(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "crc32() takes 1 to 3 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "crc32() needs bytes");
        return NULL;
    }
    uint32_t value = 0;
    if (nargs >= 2) {
        unsigned long v = PyLong_AsUnsignedLongMask(args[1]);
        if (v == (unsigned long)-1 && PyErr_Occurred()) return NULL;
        value = (uint32_t)v;
    }
    int portable = 0;
    if (nargs == 3 && (portable = PyObject_IsTrue(args[2])) < 0) return NULL;
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    size_t len = (size_t)PyBytes_GET_SIZE(args[0]);
    uint32_t crc = portable ? crc_table_update(value, data, len) : crc_update(value, data, len);
    return PyLong_FromUnsignedLong(crc);
}

PyMethodDef crc32_methods[] = {
    {"crc32", (PyCFunction)(void (*)(void))crc32, METH_FASTCALL, crc32_doc},
    {NULL, NULL, 0, NULL},
};
