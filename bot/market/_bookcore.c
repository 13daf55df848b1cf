/*
 * bot.market._bookcore: the C core of the order book's hot path.
 *
 * What it owns
 * ------------
 * - BookCore, the type that holds a Book's mutable state. bot.market.book.Book
 *   subclasses it; every field is a member (PyMemberDef) under the name the Python code
 *   uses (_ap, _aq, _at, _bp, _bq, _bt, _a_crc, _crc, _valid, _scales, _updated, depth,
 *   ignored, mismatches, timestamp), so the Python methods of Book (snapshots, BookFrame
 *   updates, views) and this C code read and write one and the same state. When the
 *   extension is not built or KRAKENBOT_PURE_BOOK=1, Book subclasses a __slots__ class
 *   with the same member names instead (bot/market/book.py, _PureState).
 * - apply_update(book, bids, asks, checksum, timestamp): Book.apply_wire_update in C.
 * - fused_update(msg, books): the common shape of frames.parse_into, from the decoded
 *   message to the book ([BookApplied]), or None for any other shape.
 * - raw_update(raw, books): the same from the received text, with no JSON decoder, for
 *   a strict form of it (see "raw frames" below); None, the book untouched, otherwise.
 * - parse_into(parser, raw, books): frames.parse_into, raw_update first, then the
 *   decoding path in Python (bound by bind_parse).
 * - levels(book, n, prev) and BookCore.view(n): the best levels as tuples, and
 *   Book.view made with no Python frame (bind_view tells it the Python classes' slots).
 * - slot_maker(cls, fields): a C constructor of a frozen, slotted dataclass (the
 *   strategies' BookSnapshot).
 * - crc32(data, value=0, portable=False): this module's CRC-32, for the tests.
 * It does no I/O and keeps no state of its own beyond caches (the key objects below).
 *
 * The state (the same as the Python code's)
 * -----------------------------------------
 *   _ap  list of ask prices (scaled ints), ascending: best first
 *   _aq  dict ask price -> qty; its keys are the very int objects of _ap
 *   _at  list of the checksum fragments b"%d%d" % (price, qty) of the top 10 asks
 *   _bp, _bq, _bt  the same for bids, keyed by the NEGATED price (so _bp ascends from
 *        the best bid too); a bid's fragment is written with the positive price
 *   _a_crc  CRC-32 of the ask fragments joined (where the bids' CRC continues from)
 *   _crc    CRC-32 of the asks' then the bids' fragments: the book's checksum
 *   _valid, ignored, mismatches, timestamp, depth  as documented on Book
 *   _scales (10.0**price_p, 10.0**qty_p, 10**price_p, 10**qty_p, 2.0**49 / 10.0**price_p,
 *            2.0**49 / 10.0**qty_p)
 *   _updated  the BookApplied(book, False, None) returned for every update that verified
 *
 * The rules (exactly those of Book._apply_wire_update_py; the tests compare the two on
 * real captures, synthetic streams, random streams and every edge listed here)
 * -----------------------------------------------------------------------------------
 * - An invalid book ignores the update: ignored += 1, return _updated. Nothing else is
 *   looked at.
 * - Asks, then bids, each level in wire order. For a level {"price": p, "qty": q}
 *   (both looked up before either is converted):
 *     p float: accepted when 0 < p < 2**49 / 10**pp and n = round(p * 10**pp) (Python's
 *              round, half to even) satisfies n / 10**pp == p in double arithmetic;
 *     p int (exactly int, so never a bool): accepted when p > 0, scaled exactly;
 *     q likewise with 0 <= q. Anything else raises PrecisionLost, and the caller decodes
 *     the frame exactly (bot.kraken.protocol proves why the test is exact). The build
 *     turns off floating-point contraction (-ffp-contract=off): these must be plain
 *     IEEE double operations, as Python's are.
 *   qty 0 deletes the level, anything else sets it; a change inside the top 10 rewrites
 *   that level's fragment, an insert or delete inside it shifts the fragment list (a
 *   delete pulls the 11th level's fragment in). After each side's levels the side is cut
 *   to `depth` (Kraken sends no delete for a level pushed out of scope).
 *   A level is found by bisecting the price list (the Python code asks the dict: the
 *   two hold the same prices); the list's item is then also the key the dict is updated
 *   with, which the dict finds by identity.
 * - The CRC is recomputed only for a side whose top 10 changed: asks changed -> the ask
 *   fragments, then the bid fragments from there; only bids changed -> the bid fragments
 *   from _a_crc. CRC-32 is zlib's (reflected, poly 0xEDB88320): folded with carry-less
 *   multiplication where the CPU has it, slicing-by-8 tables otherwise.
 * - timestamp is stored; checksum == crc returns _updated, else book._mismatch(checksum)
 *   (Python) marks the book invalid, counts it and builds the BookApplied.
 * - A level that is not an object raises what subscripting it raises in Python
 *   (TypeError), a missing key KeyError, a side that is falsy and not a list TypeError;
 *   any other iterable side is iterated. Any error after levels were applied first
 *   brings _a_crc and _crc in line with the fragment lists (as the Python code does),
 *   then propagates: the book holds the levels applied so far, exactly as the Python
 *   path leaves it (frames.parse_into then applies the exactly decoded frame, or
 *   invalidates the book).
 * - fused_update takes exactly the messages frames._parse_into_py takes: a dict with
 *   channel "book", type "update", data a one-item list holding a dict with an int
 *   checksum in 0..2**32-1, a str timestamp, bids, asks and a symbol whose entry in
 *   `books` is a BookCore. Anything else returns None, and a lookup in `books` that
 *   raises one of parse_into's "shape" errors (KeyError, TypeError, ...) too.
 *
 * Memory ownership
 * ----------------
 * BookCore owns one strong reference to each object member (NULL until Book.__init__
 * sets it; a NULL or wrongly typed member makes a call raise RuntimeError instead of
 * crashing). It takes part in the cyclic GC: _updated refers back to the book.
 * An update holds strong references to the state's containers and to what it reads from
 * the message for its whole length, since Python code may run in between (a level's
 * __getitem__, a side's __bool__, a comparison of non-ints, the _mismatch method); what
 * it borrows (a dict lookup, a list item) it uses before any such code can run. Every
 * function releases what it created on every path: the "error" labels decref the locals
 * they own (Py_XDECREF on NULL-initialised pointers), and the tests check refcounts and
 * traced memory over hundreds of thousands of frames, errors included.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define TOP 10 /* levels per side in Kraken's checksum */

/* ------------------------------------------------------------------ CRC-32 (zlib's) */

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
static int
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

/* ------------------------------------------------------------------ module state */

/* Set once at import, then read-only (the module is single-phase and not reloaded). */
static PyObject *PrecisionLost;  /* bot.kraken.instruments.PrecisionLost */
static PyObject *fragment_format; /* b"%d%d", for ints beyond 64 bits */
static PyObject *s_mismatch;      /* "_mismatch", the method name */

/* The keys the hot path reads from decoded JSON objects, in three sets: a message's,
 * its data item's and a level's.
 *
 * orjson hands out one str object per key name, frame after frame (its key cache), and a
 * dict lookup with that very object ends at a pointer comparison, while an equal but
 * distinct str costs a string comparison. So each Key holds the str object last seen in
 * a message: a set learns them with one pass over a dict's entries on its first use and
 * again every LEARN_EVERY uses (in case orjson's cache makes new ones). A lookup with an
 * object that is no longer orjson's is slower, never wrong. */
typedef struct {
    const char *text;
    PyObject *obj; /* strong reference to a str equal to text */
} Key;

#define LEARN_EVERY 1024

typedef struct {
    Key *keys;
    int n;
    unsigned int countdown; /* uses until the next learning pass */
} KeySet;

enum { K_CHANNEL, K_TYPE, K_DATA };
enum { K_CHECKSUM, K_TIMESTAMP, K_BIDS, K_ASKS, K_SYMBOL };
enum { K_PRICE, K_QTY };
static Key envelope_keys[] = {{"channel", NULL}, {"type", NULL}, {"data", NULL}};
static Key item_keys[] = {
    {"checksum", NULL}, {"timestamp", NULL}, {"bids", NULL}, {"asks", NULL}, {"symbol", NULL}};
static Key level_keys[] = {{"price", NULL}, {"qty", NULL}};
static KeySet envelope_set = {envelope_keys, 3, 0};
static KeySet item_set = {item_keys, 5, 0};
static KeySet level_set = {level_keys, 2, 0};

/* Remember the dict's own key objects for the set's names. No Python code runs. */
static void
learn_keys(KeySet *set, PyObject *dict)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) continue;
        for (int i = 0; i < set->n; i++) {
            Key *k = &set->keys[i];
            if (key != k->obj && PyUnicode_CompareWithASCIIString(key, k->text) == 0) {
                PyObject *old = k->obj;
                Py_INCREF(key);
                k->obj = key;
                Py_DECREF(old);
                break;
            }
        }
    }
}

/* dict[key] for each key of the set, as borrowed references in out (NULL if absent).
 * -1 if a lookup raised (a key whose comparison fails: never in orjson's output). */
static int
read_keys(KeySet *set, PyObject *dict, PyObject **out)
{
    if (set->countdown-- == 0) {
        learn_keys(set, dict);
        set->countdown = LEARN_EVERY - 1;
    }
    for (int i = 0; i < set->n; i++) {
        out[i] = PyDict_GetItemWithError(dict, set->keys[i].obj);
        if (out[i] == NULL && PyErr_Occurred()) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the state type */

typedef struct {
    PyObject_HEAD
    PyObject *ap, *aq, *at; /* asks: prices (list), qtys (dict), top-10 fragments */
    PyObject *bp, *bq, *bt; /* bids, keyed by negated price */
    PyObject *scales;       /* see the header */
    PyObject *updated;      /* BookApplied(book, False, None) */
    PyObject *timestamp;    /* str */
    Py_ssize_t depth, ignored, mismatches;
    unsigned int a_crc, crc;
    char valid;
} BookCore;

static PyTypeObject BookCoreType;

static int
core_traverse(BookCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->ap);
    Py_VISIT(self->aq);
    Py_VISIT(self->at);
    Py_VISIT(self->bp);
    Py_VISIT(self->bq);
    Py_VISIT(self->bt);
    Py_VISIT(self->scales);
    Py_VISIT(self->updated);
    Py_VISIT(self->timestamp);
    return 0;
}

static int
core_clear(BookCore *self)
{
    Py_CLEAR(self->ap);
    Py_CLEAR(self->aq);
    Py_CLEAR(self->at);
    Py_CLEAR(self->bp);
    Py_CLEAR(self->bq);
    Py_CLEAR(self->bt);
    Py_CLEAR(self->scales);
    Py_CLEAR(self->updated);
    Py_CLEAR(self->timestamp);
    return 0;
}

static void
core_dealloc(BookCore *self)
{
    PyObject_GC_UnTrack(self);
    core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef core_members[] = {
    {"_ap", T_OBJECT_EX, offsetof(BookCore, ap), 0, "ask prices, ascending"},
    {"_aq", T_OBJECT_EX, offsetof(BookCore, aq), 0, "ask price -> qty"},
    {"_at", T_OBJECT_EX, offsetof(BookCore, at), 0, "fragments of the top 10 asks"},
    {"_bp", T_OBJECT_EX, offsetof(BookCore, bp), 0, "negated bid prices, ascending"},
    {"_bq", T_OBJECT_EX, offsetof(BookCore, bq), 0, "negated bid price -> qty"},
    {"_bt", T_OBJECT_EX, offsetof(BookCore, bt), 0, "fragments of the top 10 bids"},
    {"_scales", T_OBJECT_EX, offsetof(BookCore, scales), 0, "the wire scales"},
    {"_updated", T_OBJECT_EX, offsetof(BookCore, updated), 0, "the verified result"},
    {"timestamp", T_OBJECT_EX, offsetof(BookCore, timestamp), 0,
     "Kraken's timestamp of the last message applied"},
    {"depth", T_PYSSIZET, offsetof(BookCore, depth), 0, "the subscribed depth"},
    {"ignored", T_PYSSIZET, offsetof(BookCore, ignored), 0,
     "updates dropped because the book was invalid"},
    {"mismatches", T_PYSSIZET, offsetof(BookCore, mismatches), 0,
     "messages whose checksum did not verify"},
    {"_a_crc", T_UINT, offsetof(BookCore, a_crc), 0, "CRC-32 of the ask fragments"},
    {"_crc", T_UINT, offsetof(BookCore, crc), 0, "CRC-32 of the top 10 levels"},
    {"_valid", T_BOOL, offsetof(BookCore, valid), 0, "the book is checksum-valid"},
    {NULL, 0, 0, 0, NULL},
};

static PyObject *core_view(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames);

PyDoc_STRVAR(core_view_doc,
"view(n=10)\n--\n\n"
"Book.view in C (bot.market.book binds it with bind_view): a BookView of the best n\n"
"levels a side, made with no Python frame, the unchanged levels of the last copy\n"
"reused as levels() does. A negative n goes to the Python implementation.");

static PyMethodDef core_methods[] = {
    {"view", (PyCFunction)(void (*)(void))core_view, METH_FASTCALL | METH_KEYWORDS,
     core_view_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BookCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bot.market._bookcore.BookCore",
    .tp_doc = PyDoc_STR("The mutable state of a Book, shared by the C and Python code."),
    .tp_basicsize = sizeof(BookCore),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_members = core_members,
    .tp_methods = core_methods,
};

/* The per-call view of the wire scales, read from the _scales tuple. */
typedef struct {
    double price_scale, qty_scale, price_limit, qty_limit;
    PyObject *price_int, *qty_int; /* borrowed from the tuple: 10**pp, 10**qp */
    long long price_ll, qty_ll;    /* the same, or 0 if beyond 64 bits */
} Scales;

static int
state_error(const char *what)
{
    PyErr_Format(PyExc_RuntimeError, "book state: %s is not what the C core expects", what);
    return -1;
}

/* Check every member the hot path reads, so that a state broken from Python raises
 * instead of crashing; fill *sc from _scales. */
static int
check_state(BookCore *b, Scales *sc)
{
    if (b->ap == NULL || !PyList_CheckExact(b->ap)) return state_error("_ap");
    if (b->bp == NULL || !PyList_CheckExact(b->bp)) return state_error("_bp");
    if (b->at == NULL || !PyList_CheckExact(b->at)) return state_error("_at");
    if (b->bt == NULL || !PyList_CheckExact(b->bt)) return state_error("_bt");
    if (b->aq == NULL || !PyDict_CheckExact(b->aq)) return state_error("_aq");
    if (b->bq == NULL || !PyDict_CheckExact(b->bq)) return state_error("_bq");
    if (b->updated == NULL) return state_error("_updated");
    if (b->depth < 0) return state_error("depth");
    PyObject *t = b->scales;
    if (t == NULL || !PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) != 6 ||
        !PyFloat_CheckExact(PyTuple_GET_ITEM(t, 0)) ||
        !PyFloat_CheckExact(PyTuple_GET_ITEM(t, 1)) ||
        !PyLong_CheckExact(PyTuple_GET_ITEM(t, 2)) ||
        !PyLong_CheckExact(PyTuple_GET_ITEM(t, 3)) ||
        !PyFloat_CheckExact(PyTuple_GET_ITEM(t, 4)) ||
        !PyFloat_CheckExact(PyTuple_GET_ITEM(t, 5))) {
        return state_error("_scales");
    }
    sc->price_scale = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(t, 0));
    sc->qty_scale = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(t, 1));
    sc->price_int = PyTuple_GET_ITEM(t, 2);
    sc->qty_int = PyTuple_GET_ITEM(t, 3);
    sc->price_limit = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(t, 4));
    sc->qty_limit = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(t, 5));
    int overflow;
    sc->price_ll = PyLong_AsLongLongAndOverflow(sc->price_int, &overflow);
    if (overflow || sc->price_ll <= 0) sc->price_ll = 0;
    sc->qty_ll = PyLong_AsLongLongAndOverflow(sc->qty_int, &overflow);
    if (overflow || sc->qty_ll <= 0) sc->qty_ll = 0;
    return 0;
}

/* ------------------------------------------------------------------ numbers */

/* A scaled number: its value when it fits in 64 bits, and the Python int, made only
 * when something needs it (a new reference, or NULL). */
typedef struct {
    PyObject *obj;
    long long v;
    int fits; /* v holds the value; obj may be NULL. Else obj holds it. */
} Scaled;

/* The number as a Python int (borrowed from *n, which owns it). */
static PyObject *
scaled_obj(Scaled *n)
{
    if (n->obj == NULL) n->obj = PyLong_FromLongLong(n->v);
    return n->obj;
}

/* round(x) as Python's float.__round__ does it: to nearest, ties to even. */
static double
round_half_even(double x)
{
    double r = round(x);
    if (fabs(x - r) == 0.5) {
        r = 2.0 * round(x / 2.0);
    }
    return r;
}

/* `value` (a price if is_qty is 0, else a qty) as its scaled int, by the exactness rule
 * in the header; PrecisionLost for anything it cannot accept. */
static int
scale_number(PyObject *value, double scale, double limit, PyObject *scale_int,
             long long scale_ll, int is_qty, Scaled *out)
{
    if (PyFloat_CheckExact(value)) {
        double f = PyFloat_AS_DOUBLE(value);
        if (is_qty ? (0.0 <= f && f < limit) : (0.0 < f && f < limit)) {
            double r = round_half_even(f * scale);
            if (r / scale == f) {
                out->v = (long long)r; /* 0 <= r <= 2**49: exact */
                out->fits = 1;
                out->obj = NULL;
                return 0;
            }
        }
    }
    else if (PyLong_CheckExact(value)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && !overflow && PyErr_Occurred()) return -1;
        int sign = overflow ? overflow : (v > 0) - (v < 0);
        if (is_qty ? sign >= 0 : sign > 0) {
            long long r;
            if (!overflow && scale_ll && !__builtin_mul_overflow(v, scale_ll, &r)) {
                out->v = r;
                out->fits = 1;
                out->obj = NULL;
                return 0;
            }
            out->v = 0;
            out->fits = 0;
            out->obj = PyNumber_Multiply(value, scale_int);
            return out->obj == NULL ? -1 : 0;
        }
    }
    PyErr_Format(PrecisionLost, "book %s %R: not provably exact here, decode exactly",
                 is_qty ? "qty" : "price", value);
    return -1;
}

/* Decimal digits of v at buf (room for 20); returns how many. Two digits per step. */
static Py_ssize_t
put_digits(char *buf, long long v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char tmp[24];
    char *end = tmp + sizeof(tmp), *at = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        unsigned int two = (unsigned int)(u % 100);
        u /= 100;
        at -= 2;
        memcpy(at, pairs + 2 * two, 2);
    }
    if (u >= 10) {
        at -= 2;
        memcpy(at, pairs + 2 * u, 2);
    }
    else {
        *--at = (char)('0' + (int)u);
    }
    Py_ssize_t len = 0;
    if (v < 0) buf[len++] = '-';
    memcpy(buf + len, at, (size_t)(end - at));
    return len + (end - at);
}

/* b"%d%d" % (price, qty) for 64-bit values. */
static PyObject *
fragment_ll(long long price, long long qty)
{
    char buf[48];
    Py_ssize_t len = put_digits(buf, price);
    len += put_digits(buf + len, qty);
    return PyBytes_FromStringAndSize(buf, len);
}

/* b"%d%d" % (price, qty) for any ints; `negate` writes -price (a bid's key). */
static PyObject *
fragment_obj(PyObject *price, PyObject *qty, int negate)
{
    if (PyLong_CheckExact(price) && PyLong_CheckExact(qty)) {
        int o1, o2;
        long long p = PyLong_AsLongLongAndOverflow(price, &o1);
        long long q = PyLong_AsLongLongAndOverflow(qty, &o2);
        if (!o1 && !o2 && p != LLONG_MIN) {
            return fragment_ll(negate ? -p : p, q);
        }
    }
    PyObject *p = negate ? PyNumber_Negative(price) : (Py_INCREF(price), price);
    if (p == NULL) return NULL;
    PyObject *args = PyTuple_Pack(2, p, qty);
    Py_DECREF(p);
    if (args == NULL) return NULL;
    PyObject *frag = PyNumber_Remainder(fragment_format, args);
    Py_DECREF(args);
    return frag;
}

/* The fragment of a level just converted. */
static PyObject *
fragment_scaled(Scaled *price, Scaled *qty)
{
    if (price->fits && qty->fits) return fragment_ll(price->v, qty->v);
    if (scaled_obj(price) == NULL || scaled_obj(qty) == NULL) return NULL;
    return fragment_obj(price->obj, qty->obj, 0);
}

/* ------------------------------------------------------------------ one side */

/* Compare a side's list item with a level's sort key: 1 if item `op` key, 0 if not,
 * -1 on error. Ints that fit in 64 bits are compared in C; anything else (a key beyond
 * 64 bits, a state Python code filled with something else) through Python. */
static int
compare(PyObject *item, Scaled *key, int op)
{
    if (key->fits && PyLong_CheckExact(item)) {
        int overflow;
        long long iv = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (overflow) return op == Py_LT ? overflow < 0 : 0;
        return op == Py_LT ? iv < key->v : iv == key->v;
    }
    if (scaled_obj(key) == NULL) return -1;
    Py_INCREF(item); /* a comparison of non-ints may run Python code */
    int r = PyObject_RichCompareBool(item, key->obj, op);
    Py_DECREF(item);
    return r;
}

/* bisect.bisect_left(list, key): the index of the first item not below key; -1 on
 * error. */
static Py_ssize_t
bisect_left(PyObject *list, Scaled *key)
{
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(list);
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (mid >= PyList_GET_SIZE(list)) { /* a comparison through Python shrank it */
            hi = mid;
            continue;
        }
        int r = compare(PyList_GET_ITEM(list, mid), key, Py_LT);
        if (r < 0) return -1;
        if (r) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* list.insert(i, item) for 0 <= i <= len(list), with one memmove (CPython's own insert
 * moves the items one by one, which shows in a 1000-level book). */
static int
list_insert(PyObject *list, Py_ssize_t i, PyObject *item)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (PyList_Append(list, item) < 0) return -1; /* grows the list; item lands at n */
    if (i < n) {
        PyObject **items = ((PyListObject *)list)->ob_item;
        memmove(&items[i + 1], &items[i], (size_t)(n - i) * sizeof(PyObject *));
        items[i] = item; /* the reference the append took, moved to its place */
    }
    return 0;
}

/* del list[i], IndexError as Python's when out of range. */
static int
list_del(PyObject *list, Py_ssize_t i)
{
    if (i < 0 || i >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_IndexError, "list assignment index out of range");
        return -1;
    }
    return PyList_SetSlice(list, i, i + 1, NULL);
}

/* level["price"] and level["qty"] as new references, with the errors Python's
 * subscripts raise, in the same order (a missing price is reported before the qty). */
static int
level_read(PyObject *level, PyObject **p, PyObject **q)
{
    if (PyDict_CheckExact(level)) {
        PyObject *got[2];
        if (read_keys(&level_set, level, got) < 0) return -1;
        for (int i = 0; i < 2; i++) {
            if (got[i] == NULL) {
                PyErr_SetObject(PyExc_KeyError, level_keys[i].obj);
                return -1;
            }
        }
        Py_INCREF(got[0]);
        Py_INCREF(got[1]);
        *p = got[0];
        *q = got[1];
        return 0;
    }
    *p = PyObject_GetItem(level, level_keys[K_PRICE].obj);
    if (*p == NULL) return -1;
    *q = PyObject_GetItem(level, level_keys[K_QTY].obj);
    if (*q == NULL) {
        Py_CLEAR(*p);
        return -1;
    }
    return 0;
}

typedef struct {
    PyObject *prices, *qtys, *frags; /* borrowed from the BookCore */
    int is_bid;
    const char *name; /* "asks" or "bids" */
} Side;

/* The 11th level's fragment, appended when a delete in the top 10 lets it rise. */
static int
pull_level_in(Side *s)
{
    PyObject *n = PyList_GET_ITEM(s->prices, TOP - 1);
    Py_INCREF(n);
    PyObject *q = PyDict_GetItemWithError(s->qtys, n);
    if (q == NULL) {
        if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, n);
        Py_DECREF(n);
        return -1;
    }
    PyObject *frag = fragment_obj(n, q, s->is_bid);
    Py_DECREF(n);
    if (frag == NULL) return -1;
    int r = PyList_Append(s->frags, frag);
    Py_DECREF(frag);
    return r;
}

/* Apply one converted level to a side: 1 if its top 10 changed, 0 if not, -1 on error.
 * `key` is the level's sort key (the price, or its negation for bids).
 *
 * The level is found by bisecting the price list, not by a dict lookup: the list and
 * the dict hold the same prices (the invariant every path keeps), so "in the list" is
 * "in the dict", and the list's item is the dict's own key object, which the dict then
 * finds by identity. */
static int
apply_level(Side *s, Scaled *price, Scaled *key, Scaled *qty)
{
    PyObject *prices = s->prices, *qtys = s->qtys, *frags = s->frags, *frag;
    int nonzero = qty->fits ? qty->v != 0 : PyObject_IsTrue(qty->obj);
    if (nonzero < 0) return -1;
    Py_ssize_t i = bisect_left(prices, key);
    if (i < 0) return -1;
    int held = 0;
    if (i < PyList_GET_SIZE(prices)) {
        held = compare(PyList_GET_ITEM(prices, i), key, Py_EQ);
        if (held < 0) return -1;
    }
    if (held && i >= PyList_GET_SIZE(prices)) { /* a comparison through Python shrank it */
        PyErr_SetString(PyExc_RuntimeError, "book state changed during an update");
        return -1;
    }
    if (held) {
        PyObject *known = PyList_GET_ITEM(prices, i);
        if (nonzero) { /* a new quantity for a level we hold */
            if (scaled_obj(qty) == NULL) return -1;
            Py_INCREF(known);
            int r = PyDict_SetItem(qtys, known, qty->obj);
            Py_DECREF(known);
            if (r < 0) return -1;
            if (i >= PyList_GET_SIZE(frags)) return 0;
            frag = fragment_scaled(price, qty);
            if (frag == NULL) return -1;
            return PyList_SetItem(frags, i, frag) < 0 ? -1 : 1; /* steals frag */
        }
        /* a delete */
        Py_INCREF(known);
        int r = PyDict_DelItem(qtys, known);
        Py_DECREF(known);
        if (r < 0 || list_del(prices, i) < 0) return -1;
        if (i >= TOP) return 0;
        if (list_del(frags, i) < 0) return -1;
        if (PyList_GET_SIZE(prices) >= TOP && pull_level_in(s) < 0) return -1;
        return 1;
    }
    if (!nonzero) return 0; /* the delete of a level we do not hold */
    /* an insert */
    if (scaled_obj(key) == NULL || scaled_obj(qty) == NULL) return -1;
    if (PyDict_SetItem(qtys, key->obj, qty->obj) < 0) return -1;
    if (list_insert(prices, i, key->obj) < 0) return -1;
    if (i >= TOP) return 0;
    frag = fragment_scaled(price, qty);
    if (frag == NULL) return -1;
    int r = list_insert(frags, i, frag);
    Py_DECREF(frag);
    if (r < 0) return -1;
    if (PyList_GET_SIZE(frags) > TOP && list_del(frags, TOP) < 0) return -1;
    return 1;
}

/* Kraken sends no delete for a level pushed out of scope: cut the side to `depth`. */
static int
cut_side(BookCore *b, Side *s)
{
    while (PyList_GET_SIZE(s->prices) > b->depth) {
        Py_ssize_t last = PyList_GET_SIZE(s->prices) - 1;
        PyObject *worst = PyList_GET_ITEM(s->prices, last);
        Py_INCREF(worst);
        int r = PyList_SetSlice(s->prices, last, last + 1, NULL);
        if (r == 0) r = PyDict_DelItem(s->qtys, worst);
        Py_DECREF(worst);
        if (r < 0) return -1;
    }
    return 0;
}

/* Apply one side's levels in wire order, then cut the side to `depth`. Returns 1 if its
 * top 10 changed, 0 if not, -1 on error (levels before the failing one stay applied). */
static int
apply_side(BookCore *b, Side *s, PyObject *levels, const Scales *sc)
{
    PyObject *seq;
    if (PyList_CheckExact(levels)) {
        if (PyList_GET_SIZE(levels) == 0) return 0;
        Py_INCREF(levels);
        seq = levels;
    }
    else {
        /* Python: `if levels:` then iterate, else TypeError unless it is a list. */
        int truth = PyObject_IsTrue(levels);
        if (truth < 0) return -1;
        if (!truth) {
            PyErr_Format(PyExc_TypeError, "book %s must be a list, got %R", s->name, levels);
            return -1;
        }
        seq = PySequence_List(levels); /* Python's own error if it is not iterable */
        if (seq == NULL) return -1;
    }
    int changed = 0;
    PyObject *level = NULL, *p = NULL, *q = NULL;
    Scaled price = {NULL, 0, 0}, qty = {NULL, 0, 0}, negated = {NULL, 0, 0};
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(seq); j++) {
        level = PyList_GET_ITEM(seq, j);
        Py_INCREF(level);
        if (level_read(level, &p, &q) < 0) goto error;
        if (scale_number(p, sc->price_scale, sc->price_limit, sc->price_int, sc->price_ll,
                         0, &price) < 0) {
            goto error;
        }
        if (scale_number(q, sc->qty_scale, sc->qty_limit, sc->qty_int, sc->qty_ll, 1,
                         &qty) < 0) {
            goto error;
        }
        Scaled *key = &price;
        if (s->is_bid) { /* bids are keyed by the negated price (0 < price: it fits) */
            negated.v = -price.v;
            negated.fits = price.fits;
            if (!price.fits && (negated.obj = PyNumber_Negative(price.obj)) == NULL) {
                goto error;
            }
            key = &negated;
        }
        int r = apply_level(s, &price, key, &qty);
        if (r < 0) goto error;
        changed |= r;
        Py_CLEAR(negated.obj);
        Py_CLEAR(price.obj);
        Py_CLEAR(qty.obj);
        Py_CLEAR(p);
        Py_CLEAR(q);
        Py_CLEAR(level);
    }
    Py_DECREF(seq);
    return cut_side(b, s) < 0 ? -1 : changed;

error:
    Py_XDECREF(negated.obj);
    Py_XDECREF(price.obj);
    Py_XDECREF(qty.obj);
    Py_XDECREF(p);
    Py_XDECREF(q);
    Py_XDECREF(level);
    Py_DECREF(seq);
    return -1;
}

/* ------------------------------------------------------------------ one update */

/* _a_crc and _crc from the fragment lists (Book._recompute). */
static int
recompute(BookCore *b, PyObject *at, PyObject *bt)
{
    uint32_t a_crc, crc;
    if (crc_of_fragments(at, 0, &a_crc) < 0) return -1;
    if (crc_of_fragments(bt, a_crc, &crc) < 0) return -1;
    b->a_crc = a_crc;
    b->crc = crc;
    return 0;
}

/* The end of an update whose levels are applied (both paths): the CRC of the sides whose
 * top 10 changed, the timestamp stored, the result (a new reference to the BookApplied:
 * _updated if `expected` verified, else book._mismatch(checksum), with `checksum` made
 * from `expected` when NULL), or NULL. */
static PyObject *
finish_update(BookCore *b, int a_changed, int b_changed, PyObject *at, PyObject *bt,
              PyObject *checksum, uint32_t expected, PyObject *timestamp)
{
    uint32_t crc = b->crc;
    if (a_changed) {
        uint32_t a_crc;
        if (crc_of_fragments(at, 0, &a_crc) < 0) return NULL;
        if (crc_of_fragments(bt, a_crc, &crc) < 0) return NULL;
        b->a_crc = a_crc;
    }
    else if (b_changed) {
        if (crc_of_fragments(bt, b->a_crc, &crc) < 0) return NULL;
    }
    b->crc = crc;
    PyObject *old = b->timestamp;
    Py_INCREF(timestamp);
    b->timestamp = timestamp;
    Py_XDECREF(old);
    if (crc == expected) {
        if (b->updated == NULL) {
            state_error("_updated");
            return NULL;
        }
        return Py_NewRef(b->updated);
    }
    if (checksum != NULL) return PyObject_CallMethodOneArg((PyObject *)b, s_mismatch, checksum);
    PyObject *made = PyLong_FromUnsignedLong(expected);
    if (made == NULL) return NULL;
    PyObject *result = PyObject_CallMethodOneArg((PyObject *)b, s_mismatch, made);
    Py_DECREF(made);
    return result;
}

/* The update applied and verified: a new reference to the BookApplied, or NULL. The
 * arguments are checked by the callers (checksum a u32 int whose value is `expected`,
 * timestamp a str). */
static PyObject *
apply_update_impl(BookCore *b, PyObject *bids, PyObject *asks, PyObject *checksum,
                  uint32_t expected, PyObject *timestamp)
{
    Scales sc;
    if (check_state(b, &sc) < 0) return NULL;
    if (!b->valid) {
        b->ignored++;
        Py_INCREF(b->updated);
        return b->updated;
    }
    /* The state's containers, held for the call: Python code that runs meanwhile (a
     * level's __getitem__, a side's __bool__) could replace the members. */
    PyObject *held[7] = {b->ap, b->aq, b->at, b->bp, b->bq, b->bt, b->scales};
    for (int i = 0; i < 7; i++) Py_INCREF(held[i]);
    PyObject *result = NULL;
    Side a = {held[0], held[1], held[2], 0, "asks"};
    Side d = {held[3], held[4], held[5], 1, "bids"};
    int a_changed = apply_side(b, &a, asks, &sc);
    int b_changed = a_changed < 0 ? -1 : apply_side(b, &d, bids, &sc);
    if (b_changed < 0) {
        /* Bring the CRC caches in line with the levels applied so far, keep the error. */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (recompute(b, a.frags, d.frags) < 0) PyErr_Clear();
        PyErr_Restore(type, value, tb);
        goto done;
    }
    result = finish_update(b, a_changed, b_changed, a.frags, d.frags, checksum, expected,
                           timestamp);
done:
    for (int i = 0; i < 7; i++) Py_DECREF(held[i]);
    return result;
}

/* A u32 checksum from an exact int: 0 and *out, 1 if it is not one, -1 on error. */
static int
u32_checksum(PyObject *checksum, uint32_t *out)
{
    if (!PyLong_CheckExact(checksum)) return 1;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(checksum, &overflow);
    if (v == -1 && !overflow && PyErr_Occurred()) return -1;
    if (overflow || v < 0 || v > 0xFFFFFFFFLL) return 1;
    *out = (uint32_t)v;
    return 0;
}

PyDoc_STRVAR(apply_update_doc,
"apply_update(book, bids, asks, checksum, timestamp, /)\n--\n\n"
"Book.apply_wire_update in C: apply one decoded WS v2 book update to `book` (a\n"
"BookCore) and verify `checksum` (an int in 0..2**32-1); `timestamp` is a str.\n"
"Returns the book's BookApplied; raises PrecisionLost, KeyError or TypeError as the\n"
"Python implementation does.");

static PyObject *
apply_update(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "apply_update() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyObject_TypeCheck(args[0], &BookCoreType)) {
        PyErr_Format(PyExc_TypeError, "apply_update() needs a BookCore, got %.100s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    uint32_t expected = 0;
    int r = u32_checksum(args[3], &expected);
    if (r < 0) return NULL;
    if (r > 0) {
        PyErr_Format(PyExc_TypeError, "book checksum must be an int in 0..2**32-1, got %R",
                     args[3]);
        return NULL;
    }
    if (!PyUnicode_CheckExact(args[4])) {
        PyErr_Format(PyExc_TypeError, "book timestamp must be a str, got %R", args[4]);
        return NULL;
    }
    return apply_update_impl((BookCore *)args[0], args[1], args[2], args[3], expected,
                             args[4]);
}

/* ------------------------------------------------------------------ the envelope */

/* The exceptions frames.parse_into treats as "another shape" (protocol.SHAPE_FAULTS). */
static int
is_shape_fault(void)
{
    return PyErr_ExceptionMatches(PyExc_KeyError) || PyErr_ExceptionMatches(PyExc_TypeError) ||
           PyErr_ExceptionMatches(PyExc_ValueError) ||
           PyErr_ExceptionMatches(PyExc_IndexError) ||
           PyErr_ExceptionMatches(PyExc_AttributeError) ||
           PyErr_ExceptionMatches(PyExc_ArithmeticError) ||
           PyErr_ExceptionMatches(PyExc_RecursionError);
}

PyDoc_STRVAR(fused_update_doc,
"fused_update(msg, books, /)\n--\n\n"
"The common shape of frames.parse_into: if `msg` (as orjson decoded it) is a one-item\n"
"book update, checksum an int in 0..2**32-1 and timestamp a str, for a symbol whose\n"
"book in `books` has the C core, apply it and return [BookApplied]. Any other shape\n"
"returns None (the caller takes the ordinary path). Errors from the levels propagate\n"
"as from apply_update.");

static PyObject *
fused_update(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "fused_update() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *msg = args[0], *books = args[1], *got[5];
    if (!PyDict_CheckExact(msg)) Py_RETURN_NONE;
    if (read_keys(&envelope_set, msg, got) < 0) goto not_mine;
    PyObject *channel = got[K_CHANNEL], *type = got[K_TYPE], *data = got[K_DATA];
    if (channel == NULL || !PyUnicode_CheckExact(channel) ||
        PyUnicode_CompareWithASCIIString(channel, "book") != 0) {
        Py_RETURN_NONE;
    }
    if (type == NULL || !PyUnicode_CheckExact(type) ||
        PyUnicode_CompareWithASCIIString(type, "update") != 0) {
        Py_RETURN_NONE;
    }
    if (data == NULL || !PyList_CheckExact(data) || PyList_GET_SIZE(data) != 1) Py_RETURN_NONE;
    PyObject *item = PyList_GET_ITEM(data, 0);
    if (!PyDict_CheckExact(item)) Py_RETURN_NONE;
    if (read_keys(&item_set, item, got) < 0) goto not_mine;
    PyObject *checksum = got[K_CHECKSUM], *timestamp = got[K_TIMESTAMP], *bids = got[K_BIDS],
             *asks = got[K_ASKS], *symbol = got[K_SYMBOL];
    if (checksum == NULL || timestamp == NULL || bids == NULL || asks == NULL ||
        symbol == NULL || !PyUnicode_CheckExact(timestamp)) {
        Py_RETURN_NONE;
    }
    uint32_t expected = 0;
    int r = u32_checksum(checksum, &expected);
    if (r < 0) return NULL;
    if (r > 0) Py_RETURN_NONE;
    PyObject *book;
    if (PyDict_CheckExact(books)) {
        book = PyDict_GetItemWithError(books, symbol); /* TypeError if unhashable */
        if (book == NULL) goto not_mine;
        Py_INCREF(book);
    }
    else {
        book = PyObject_GetItem(books, symbol);
        if (book == NULL) goto not_mine;
    }
    if (!PyObject_TypeCheck(book, &BookCoreType)) {
        Py_DECREF(book);
        Py_RETURN_NONE;
    }
    /* Hold what the update reads: _mismatch runs Python code. */
    PyObject *held[4] = {bids, asks, checksum, timestamp};
    for (int i = 0; i < 4; i++) Py_INCREF(held[i]);
    PyObject *applied =
        apply_update_impl((BookCore *)book, bids, asks, checksum, expected, timestamp);
    for (int i = 0; i < 4; i++) Py_DECREF(held[i]);
    Py_DECREF(book);
    if (applied == NULL) return NULL;
    PyObject *out = PyList_New(1);
    if (out == NULL) {
        Py_DECREF(applied);
        return NULL;
    }
    PyList_SET_ITEM(out, 0, applied); /* steals */
    return out;

not_mine:
    /* A books lookup that raised (an unhashable symbol, a mapping's KeyError) is another
     * shape, as in parse_into; anything else is a real error. */
    if (PyErr_Occurred()) {
        if (!is_shape_fault()) return NULL;
        PyErr_Clear();
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ raw frames */

/* raw_update(raw, books): frames.parse_into's common case from the received text itself,
 * with no JSON decoder and no Python object per key, level or number: a one-item book
 * update, read by a scanner that accepts only a strict subset of JSON, for a symbol whose
 * book in `books` (a dict) has the C core. Anything it does not accept returns None
 * before the book is touched, and the caller takes the decoding path (orjson, then
 * fused_update or the parser): this path decides nothing the other would decide
 * differently, it only declines.
 *
 * Accepted: a str of ASCII characters (or bytes); JSON whitespace between tokens; one
 * object with exactly the keys channel ("book"), type ("update") and data (an array of
 * exactly one object with exactly the keys symbol, bids, asks, checksum and timestamp),
 * in any order, none repeated; strings of printable ASCII with no escape; bids and asks
 * arrays of at most RAW_LEVELS objects with exactly the keys price and qty; a checksum of
 * at most 10 digits, no leading zero, at most 2**32-1. A number is digits with an
 * optional fraction (no sign, no exponent, no leading zero), whose digits past the
 * book's precision are all 0; scaled by 10**precision it has at most 18 digits, and one
 * with a fraction (a float to orjson) is below 2**48. Such a float f is the double
 * nearest m / 10**p for the scaled value m, and the fused path's exactness test accepts
 * it with round(f * 10**p) == m (the header's rule; below 2**48 neither rounding can
 * move it); an int is m / 10**p exactly. So the levels are the very scaled ints the
 * fused path computes. A price must be positive (the fused path refuses 0 too, and the
 * caller's path then names the fault). */

#define RAW_LEVELS 64
#define RAW_LIMIT (1LL << 48)

typedef struct {
    const char *p, *end;
} Cursor;

typedef struct {
    const char *price, *qty; /* the numbers' text, as found by the first pass */
} RawLevel;

typedef struct {
    RawLevel levels[RAW_LEVELS];
    Py_ssize_t n;
} RawSide;

static inline void
skip_ws(Cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

/* The next token is `ch`: consume it, 1; else 0. */
static inline int
take(Cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII with no escape: its text and length, 1; else 0. */
static int
take_str(Cursor *c, const char **s, Py_ssize_t *n)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"') return 0;
    const char *q = c->p + 1;
    while (q < c->end && *q != '"') {
        unsigned char ch = (unsigned char)*q;
        if (ch < 0x20 || ch > 0x7e || ch == '\\') return 0;
        q++;
    }
    if (q >= c->end) return 0;
    *s = c->p + 1;
    *n = q - (c->p + 1);
    c->p = q + 1;
    return 1;
}

static inline int
is_text(const char *s, Py_ssize_t n, const char *text)
{
    return (size_t)n == strlen(text) && memcmp(s, text, (size_t)n) == 0;
}

/* The start of a number token (checked later by raw_scaled), skipped here. */
static int
take_number(Cursor *c, const char **start)
{
    skip_ws(c);
    const char *q = c->p;
    while (q < c->end && ((*q >= '0' && *q <= '9') || *q == '.')) q++;
    if (q == c->p) return 0;
    *start = c->p;
    c->p = q;
    return 1;
}

/* The number at `s` (digits, an optional fraction, then no digit, dot or exponent) scaled
 * by 10**prec, by the rule above: 1 and *out, or 0. */
static int
raw_scaled(const char *s, const char *end, int prec, long long *out)
{
    const char *q = s;
    unsigned long long v = 0;
    int digits = 0, frac = 0, fraction = 0;
    if (q >= end || *q < '0' || *q > '9') return 0;
    if (*q == '0') {
        q++;
        if (q < end && *q >= '0' && *q <= '9') return 0; /* a leading zero: not JSON */
    }
    else {
        while (q < end && *q >= '0' && *q <= '9') {
            if (++digits > 18) return 0;
            v = v * 10 + (unsigned long long)(*q++ - '0');
        }
    }
    if (q < end && *q == '.') {
        fraction = 1;
        q++;
        if (q >= end || *q < '0' || *q > '9') return 0;
        while (q < end && *q >= '0' && *q <= '9') {
            if (frac < prec) {
                if (++digits > 18) return 0;
                v = v * 10 + (unsigned long long)(*q - '0');
                frac++;
            }
            else if (*q != '0') {
                return 0; /* more decimals than the precision: the exact decoder's case */
            }
            q++;
        }
    }
    if (q < end && (*q == '.' || *q == 'e' || *q == 'E' || (*q >= '0' && *q <= '9'))) return 0;
    for (; frac < prec; frac++) {
        if (++digits > 18) return 0;
        v *= 10;
    }
    if (fraction && v >= (unsigned long long)RAW_LIMIT) return 0;
    *out = (long long)v; /* at most 18 digits: below 2**63 */
    return 1;
}

/* [{"price": n, "qty": n}, ...] into side (the numbers' text only). 1, or 0. */
static int
take_levels(Cursor *c, RawSide *side)
{
    side->n = 0;
    if (!take(c, '[')) return 0;
    if (take(c, ']')) return 1;
    do {
        if (side->n >= RAW_LEVELS || !take(c, '{')) return 0;
        RawLevel *lv = &side->levels[side->n++];
        lv->price = lv->qty = NULL;
        do {
            const char *key;
            Py_ssize_t n;
            if (!take_str(c, &key, &n) || !take(c, ':')) return 0;
            const char **slot = is_text(key, n, "price") ? &lv->price
                                : is_text(key, n, "qty") ? &lv->qty
                                                         : NULL;
            if (slot == NULL || *slot != NULL || !take_number(c, slot)) return 0;
        } while (take(c, ','));
        if (!take(c, '}') || lv->price == NULL || lv->qty == NULL) return 0;
    } while (take(c, ','));
    return take(c, ']');
}

typedef struct {
    const char *symbol, *timestamp, *checksum;
    Py_ssize_t symbol_n, timestamp_n;
    RawSide bids, asks;
} RawItem;

enum { R_SYMBOL = 1, R_BIDS = 2, R_ASKS = 4, R_CHECKSUM = 8, R_TIMESTAMP = 16, R_ALL = 31 };

static int
take_item(Cursor *c, RawItem *item)
{
    int seen = 0;
    if (!take(c, '{')) return 0;
    do {
        const char *key;
        Py_ssize_t n;
        int bit, ok;
        if (!take_str(c, &key, &n) || !take(c, ':')) return 0;
        if (is_text(key, n, "symbol")) {
            bit = R_SYMBOL;
            ok = take_str(c, &item->symbol, &item->symbol_n);
        }
        else if (is_text(key, n, "bids")) {
            bit = R_BIDS;
            ok = take_levels(c, &item->bids);
        }
        else if (is_text(key, n, "asks")) {
            bit = R_ASKS;
            ok = take_levels(c, &item->asks);
        }
        else if (is_text(key, n, "checksum")) {
            bit = R_CHECKSUM;
            ok = take_number(c, &item->checksum);
        }
        else if (is_text(key, n, "timestamp")) {
            bit = R_TIMESTAMP;
            ok = take_str(c, &item->timestamp, &item->timestamp_n);
        }
        else {
            return 0;
        }
        if (!ok || (seen & bit)) return 0;
        seen |= bit;
    } while (take(c, ','));
    return take(c, '}') && seen == R_ALL;
}

/* The whole message: 1 with *item filled, or 0. */
static int
take_message(Cursor *c, RawItem *item)
{
    enum { E_CHANNEL = 1, E_TYPE = 2, E_DATA = 4 };
    int seen = 0;
    if (!take(c, '{')) return 0;
    do {
        const char *key, *value;
        Py_ssize_t n, m;
        int bit, ok;
        if (!take_str(c, &key, &n) || !take(c, ':')) return 0;
        if (is_text(key, n, "channel")) {
            bit = E_CHANNEL;
            ok = take_str(c, &value, &m) && is_text(value, m, "book");
        }
        else if (is_text(key, n, "type")) {
            bit = E_TYPE;
            ok = take_str(c, &value, &m) && is_text(value, m, "update");
        }
        else if (is_text(key, n, "data")) {
            bit = E_DATA;
            ok = take(c, '[') && take_item(c, item) && take(c, ']');
        }
        else {
            return 0;
        }
        if (!ok || (seen & bit)) return 0;
        seen |= bit;
    } while (take(c, ','));
    if (!take(c, '}') || seen != (E_CHANNEL | E_TYPE | E_DATA)) return 0;
    skip_ws(c);
    return c->p == c->end;
}

/* The checksum's text as a u32: 1 and *out, or 0. */
static int
raw_checksum(const char *s, const char *end, uint32_t *out)
{
    long long v = 0;
    if (!raw_scaled(s, end, 0, &v) || v > 0xFFFFFFFFLL) return 0;
    const char *q = s;
    while (q < end && *q >= '0' && *q <= '9') q++;
    if (q < end && *q == '.') return 0; /* "1.0" is a float to orjson: not a checksum */
    *out = (uint32_t)v;
    return 1;
}

/* 10**p == scale for 0 <= p <= 18: p, else -1. */
static int
precision_of(long long scale)
{
    long long ten = 1;
    for (int p = 0; p <= 18; p++, ten *= 10) {
        if (ten == scale) return p;
    }
    return -1;
}

/* A side's levels scaled: 1, or 0 if one is not accepted. */
static int
scale_side(const RawSide *side, const char *end, int pp, int qp, long long *prices,
           long long *qtys)
{
    for (Py_ssize_t i = 0; i < side->n; i++) {
        if (!raw_scaled(side->levels[i].price, end, pp, &prices[i]) || prices[i] <= 0) return 0;
        if (!raw_scaled(side->levels[i].qty, end, qp, &qtys[i])) return 0;
    }
    return 1;
}

/* Apply n scaled levels to a side in wire order, then cut it to depth (only if n > 0, as
 * apply_side): 1 if its top 10 changed, 0 if not, -1 on error. */
static int
apply_scaled_side(BookCore *b, Side *s, const long long *prices, const long long *qtys,
                  Py_ssize_t n)
{
    int changed = 0;
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Scaled price = {NULL, prices[i], 1}, qty = {NULL, qtys[i], 1};
        Scaled negated = {NULL, -prices[i], 1};
        int r = apply_level(s, &price, s->is_bid ? &negated : &price, &qty);
        Py_XDECREF(price.obj);
        Py_XDECREF(qty.obj);
        Py_XDECREF(negated.obj);
        if (r < 0) return -1;
        changed |= r;
    }
    return cut_side(b, s) < 0 ? -1 : changed;
}

/* The last symbol's str, reused while frames name the same symbol (no str per frame). */
static PyObject *raw_symbol;

static PyObject *
symbol_str(const char *s, Py_ssize_t n)
{
    if (raw_symbol != NULL && PyUnicode_GET_LENGTH(raw_symbol) == n &&
        memcmp(PyUnicode_1BYTE_DATA(raw_symbol), s, (size_t)n) == 0) {
        return Py_NewRef(raw_symbol);
    }
    PyObject *made = PyUnicode_FromStringAndSize(s, n); /* ASCII: a compact ASCII str */
    if (made == NULL) return NULL;
    Py_XSETREF(raw_symbol, Py_NewRef(made));
    return made;
}

PyDoc_STRVAR(raw_update_doc,
"raw_update(raw, books, /)\n--\n\n"
"frames.parse_into's common case from the received text (a str or bytes): a one-item\n"
"book update in the strict form the C source documents, for a symbol whose book in\n"
"`books` (a dict) has the C core, applied with no JSON decoder: [BookApplied]. Anything\n"
"else returns None with the book untouched (the caller decodes it).");

static PyObject *
raw_update_impl(PyObject *raw, PyObject *books)
{
    Cursor c;
    if (PyUnicode_CheckExact(raw) && PyUnicode_IS_ASCII(raw)) {
        c.p = (const char *)PyUnicode_1BYTE_DATA(raw);
        c.end = c.p + PyUnicode_GET_LENGTH(raw);
    }
    else if (PyBytes_CheckExact(raw)) {
        c.p = PyBytes_AS_STRING(raw);
        c.end = c.p + PyBytes_GET_SIZE(raw);
    }
    else {
        Py_RETURN_NONE;
    }
    if (!PyDict_CheckExact(books)) Py_RETURN_NONE;
    const char *end = c.end;
    RawItem item;
    if (!take_message(&c, &item)) Py_RETURN_NONE;
    uint32_t expected;
    if (!raw_checksum(item.checksum, end, &expected)) Py_RETURN_NONE;
    PyObject *symbol = symbol_str(item.symbol, item.symbol_n);
    if (symbol == NULL) return NULL;
    PyObject *book = PyDict_GetItemWithError(books, symbol); /* borrowed */
    Py_DECREF(symbol);
    if (book == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    if (!PyObject_TypeCheck(book, &BookCoreType)) Py_RETURN_NONE;
    BookCore *b = (BookCore *)book;
    Scales sc;
    if (check_state(b, &sc) < 0) return NULL;
    int pp = precision_of(sc.price_ll), qp = precision_of(sc.qty_ll);
    if (pp < 0 || qp < 0) Py_RETURN_NONE;
    long long ap[RAW_LEVELS], aq[RAW_LEVELS], bp[RAW_LEVELS], bq[RAW_LEVELS];
    if (!scale_side(&item.asks, end, pp, qp, ap, aq) ||
        !scale_side(&item.bids, end, pp, qp, bp, bq)) {
        Py_RETURN_NONE;
    }
    /* Accepted: from here on this is the fused path's update (apply_update_impl). */
    PyObject *applied = NULL;
    Py_INCREF(book);
    if (!b->valid) {
        b->ignored++;
        applied = Py_NewRef(b->updated);
        goto done;
    }
    PyObject *timestamp = PyUnicode_FromStringAndSize(item.timestamp, item.timestamp_n);
    if (timestamp == NULL) goto done;
    Side a = {b->ap, b->aq, b->at, 0, "asks"};
    Side d = {b->bp, b->bq, b->bt, 1, "bids"};
    PyObject *held[6] = {a.prices, a.qtys, a.frags, d.prices, d.qtys, d.frags};
    for (int i = 0; i < 6; i++) Py_INCREF(held[i]);
    int a_changed = apply_scaled_side(b, &a, ap, aq, item.asks.n);
    int b_changed = a_changed < 0 ? -1 : apply_scaled_side(b, &d, bp, bq, item.bids.n);
    if (b_changed < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (recompute(b, a.frags, d.frags) < 0) PyErr_Clear();
        PyErr_Restore(type, value, tb);
    }
    else {
        applied = finish_update(b, a_changed, b_changed, a.frags, d.frags, NULL, expected,
                                timestamp);
    }
    for (int i = 0; i < 6; i++) Py_DECREF(held[i]);
    Py_DECREF(timestamp);
done:
    Py_DECREF(book);
    if (applied == NULL) return NULL;
    PyObject *out = PyList_New(1);
    if (out == NULL) {
        Py_DECREF(applied);
        return NULL;
    }
    PyList_SET_ITEM(out, 0, applied); /* steals */
    return out;
}

static PyObject *
raw_update(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "raw_update() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return raw_update_impl(args[0], args[1]);
}

/* frames.parse_into with the C core: raw_update, else the decoding path in Python
 * (frames._decode_into, bound once at import by bind_parse). */
static PyObject *parse_fallback;

PyDoc_STRVAR(bind_parse_doc,
"bind_parse(decode_into, /)\n--\n\n"
"The function parse_into calls when raw_update declines: decode_into(parser, raw, books).");

static PyObject *
bind_parse(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !PyCallable_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "bind_parse() takes a callable");
        return NULL;
    }
    Py_XSETREF(parse_fallback, Py_NewRef(args[0]));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(parse_into_doc,
"parse_into(parser, raw, books, /)\n--\n\n"
"frames.parse_into with the C core: raw_update(raw, books) if it takes the frame, else\n"
"the decoding path bound by bind_parse, with no Python frame for the common case.");

static PyObject *
parse_into(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "parse_into() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (parse_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "parse_into(): bind_parse was not called");
        return NULL;
    }
    PyObject *applied = raw_update_impl(args[1], args[2]);
    if (applied != Py_None) return applied; /* [BookApplied], or NULL: an error */
    Py_DECREF(applied);
    return PyObject_Vectorcall(parse_fallback, args, 3, NULL);
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

/* ------------------------------------------------------------------ levels */

/* Whether `prev` (a level of an earlier copy) is the level (-key if negate, else key,
 * qty) now: its quantity is the same object (unchanged since that copy: an update puts
 * a new one) and its price the same value, as an exact int. Never an error. */
static int
same_level(PyObject *prev, PyObject *key, PyObject *qty, int negate)
{
    if (!PyTuple_CheckExact(prev) || PyTuple_GET_SIZE(prev) != 2) return 0;
    if (PyTuple_GET_ITEM(prev, 1) != qty) return 0;
    PyObject *price = PyTuple_GET_ITEM(prev, 0);
    if (!negate) return price == key;
    if (!PyLong_CheckExact(price) || !PyLong_CheckExact(key)) return 0;
    int o1 = 0, o2 = 0;
    long long p = PyLong_AsLongLongAndOverflow(price, &o1);
    long long k = PyLong_AsLongLongAndOverflow(key, &o2);
    if ((p == -1 || k == -1) && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return !o1 && !o2 && k != LLONG_MIN && p == -k;
}

/* The best n levels of one side as a tuple of (price, qty) tuples: prices from `keys`
 * (a list, ascending; negated for bids), quantities from `qtys` (a dict keyed alike).
 * A level equal to `prev`'s at the same rank (a tuple from an earlier call, or NULL) is
 * `prev`'s own tuple, and a side equal to `prev` is `prev`: a message changes a level or
 * two, and the others are not made again. */
static PyObject *
side_levels(PyObject *keys, PyObject *qtys, Py_ssize_t n, int negate, PyObject *prev)
{
    if (!PyList_Check(keys) || !PyDict_Check(qtys)) {
        PyErr_SetString(PyExc_TypeError, "levels: the book's sides are not a list and a dict");
        return NULL;
    }
    Py_ssize_t len = PyList_GET_SIZE(keys);
    if (n > len) n = len;
    Py_ssize_t n_prev = (prev != NULL && PyTuple_CheckExact(prev)) ? PyTuple_GET_SIZE(prev) : 0;
    PyObject *out = PyTuple_New(n);
    if (out == NULL) return NULL;
    Py_ssize_t reused = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);                /* borrowed */
        PyObject *qty = PyDict_GetItemWithError(qtys, key);      /* borrowed */
        if (qty == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, key);
            Py_DECREF(out);
            return NULL;
        }
        if (i < n_prev && same_level(PyTuple_GET_ITEM(prev, i), key, qty, negate)) {
            PyTuple_SET_ITEM(out, i, Py_NewRef(PyTuple_GET_ITEM(prev, i)));
            reused++;
            continue;
        }
        PyObject *price = negate ? PyNumber_Negative(key) : Py_NewRef(key);
        if (price == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *level = PyTuple_Pack(2, price, qty);
        Py_DECREF(price);
        if (level == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, level);                         /* steals */
    }
    if (reused == n && n == n_prev && n > 0) {
        Py_DECREF(out);
        return Py_NewRef(prev);
    }
    return out;
}

PyDoc_STRVAR(levels_doc,
"levels(book, n, prev=None, /) -> (bids, asks)\n\n"
"The best n levels of each side, best first, as tuples of (price, qty) scaled ints:\n"
"what Book.bids(n) and Book.asks(n) list, as tuples (n >= 0). prev, an earlier\n"
"(bids, asks): a level equal to its level at the same rank (the same quantity object,\n"
"the same price) is that level's tuple, and a side equal to its side is that tuple.");

static PyObject *
levels(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "levels() takes a book, a count and an earlier copy");
        return NULL;
    }
    if (!PyObject_TypeCheck(args[0], &BookCoreType)) {
        PyErr_SetString(PyExc_TypeError, "levels() needs a BookCore");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "levels() needs a count >= 0");
        return NULL;
    }
    PyObject *prev_bids = NULL, *prev_asks = NULL;
    if (nargs == 3 && args[2] != Py_None) {
        PyObject *prev = args[2];
        if (!PyTuple_CheckExact(prev) || PyTuple_GET_SIZE(prev) != 2) {
            PyErr_SetString(PyExc_TypeError, "levels(): prev must be a (bids, asks) tuple");
            return NULL;
        }
        prev_bids = PyTuple_GET_ITEM(prev, 0);
        prev_asks = PyTuple_GET_ITEM(prev, 1);
    }
    BookCore *book = (BookCore *)args[0];
    if (book->bp == NULL || book->bq == NULL || book->ap == NULL || book->aq == NULL) {
        PyErr_SetString(PyExc_AttributeError, "levels(): the book has no sides yet");
        return NULL;
    }
    PyObject *bids = side_levels(book->bp, book->bq, n, 1, prev_bids);
    if (bids == NULL) return NULL;
    PyObject *asks = side_levels(book->ap, book->aq, n, 0, prev_asks);
    if (asks == NULL) {
        Py_DECREF(bids);
        return NULL;
    }
    PyObject *both = PyTuple_Pack(2, bids, asks);
    Py_DECREF(bids);
    Py_DECREF(asks);
    return both;
}


/* ------------------------------------------------------------------ views */

/* Book.view with no Python frame. bind_view(Book, BookView, fallback) tells it, once at
 * import, where Book keeps `symbol`, `instrument` and `_levels` (slots of the Python
 * subclass) and where BookView keeps its six fields (a frozen dataclass with slots: the
 * object is made as its maker makes it, every slot set, with no __init__), and the
 * Python implementation to call for a negative n or a book of another class. */
static PyTypeObject *view_book_type;    /* Book */
static PyTypeObject *view_type;         /* BookView */
static PyObject *view_fallback;         /* Book._view_py */
static PyObject *s_price_precision;     /* "price_precision" */
static Py_ssize_t book_symbol_off, book_instrument_off, book_levels_off;
static Py_ssize_t view_off[6]; /* symbol, valid, timestamp, price_precision, bids, asks */

/* The offset of the writable object slot `name` of `type`, or -1 with an error. */
static Py_ssize_t
slot_offset(PyTypeObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) return -1;
    Py_ssize_t off = -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY) &&
            PyType_IsSubtype(type, PyDescr_TYPE(descr))) {
            off = m->offset;
        }
    }
    Py_DECREF(descr);
    if (off < 0) PyErr_Format(PyExc_TypeError, "bind_view: %s.%s is not an object slot",
                              type->tp_name, name);
    return off;
}

PyDoc_STRVAR(bind_view_doc,
"bind_view(book_class, view_class, fallback, /)\n--\n\n"
"Where BookCore.view finds a book's symbol, instrument and last copy of levels, and\n"
"sets a view's fields (see the C source); `fallback(book, n)` makes a view otherwise.");

static PyObject *
bind_view(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[0]) || !PyType_Check(args[1]) ||
        !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "bind_view() takes two classes and a callable");
        return NULL;
    }
    PyTypeObject *book = (PyTypeObject *)args[0], *view = (PyTypeObject *)args[1];
    if (!PyType_IsSubtype(book, &BookCoreType)) {
        PyErr_SetString(PyExc_TypeError, "bind_view() needs a BookCore subclass");
        return NULL;
    }
    static const char *fields[6] = {"symbol", "valid", "timestamp", "price_precision",
                                    "bids", "asks"};
    Py_ssize_t offs[6], sym, inst, lev;
    for (int i = 0; i < 6; i++) {
        if ((offs[i] = slot_offset(view, fields[i])) < 0) return NULL;
    }
    if ((sym = slot_offset(book, "symbol")) < 0 || (inst = slot_offset(book, "instrument")) < 0 ||
        (lev = slot_offset(book, "_levels")) < 0) {
        return NULL;
    }
    memcpy(view_off, offs, sizeof(offs));
    book_symbol_off = sym;
    book_instrument_off = inst;
    book_levels_off = lev;
    Py_XSETREF(view_book_type, (PyTypeObject *)Py_NewRef(book));
    Py_XSETREF(view_type, (PyTypeObject *)Py_NewRef(view));
    Py_XSETREF(view_fallback, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

static PyObject *
core_view(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs + nkw > 1 ||
        (nkw == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "n"))) {
        PyErr_SetString(PyExc_TypeError, "view() takes one argument, n");
        return NULL;
    }
    PyObject *arg = nargs + nkw == 1 ? args[0] : NULL; /* n, by position or by name */
    Py_ssize_t n = 10;
    if (arg != NULL) {
        n = PyLong_AsSsize_t(arg);
        if (n == -1 && PyErr_Occurred()) return NULL;
    }
    if (view_type == NULL || n < 0 || !PyObject_TypeCheck(self, view_book_type)) {
        if (view_fallback == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "view(): bind_view was not called");
            return NULL;
        }
        PyObject *call[2] = {self, arg};
        return PyObject_Vectorcall(view_fallback, call, arg == NULL ? 1 : 2, NULL);
    }
    BookCore *book = (BookCore *)self;
    PyObject *symbol = SLOT(self, book_symbol_off), *inst = SLOT(self, book_instrument_off);
    PyObject *prev = SLOT(self, book_levels_off);
    if (symbol == NULL || inst == NULL || book->timestamp == NULL || book->bp == NULL ||
        book->bq == NULL || book->ap == NULL || book->aq == NULL) {
        PyErr_SetString(PyExc_AttributeError, "view(): the book is not initialised");
        return NULL;
    }
    PyObject *prev_bids = NULL, *prev_asks = NULL;
    if (prev != NULL && PyTuple_CheckExact(prev) && PyTuple_GET_SIZE(prev) == 2) {
        prev_bids = PyTuple_GET_ITEM(prev, 0);
        prev_asks = PyTuple_GET_ITEM(prev, 1);
    }
    PyObject *pp = NULL, *bids = NULL, *asks = NULL, *both = NULL, *view = NULL;
    if ((pp = PyObject_GetAttr(inst, s_price_precision)) == NULL) goto done;
    if ((bids = side_levels(book->bp, book->bq, n, 1, prev_bids)) == NULL) goto done;
    if ((asks = side_levels(book->ap, book->aq, n, 0, prev_asks)) == NULL) goto done;
    if ((both = PyTuple_Pack(2, bids, asks)) == NULL) goto done;
    if ((view = view_type->tp_alloc(view_type, 0)) == NULL) goto done;
    PyObject *values[6] = {symbol, book->valid ? Py_True : Py_False, book->timestamp, pp, bids,
                           asks};
    for (int i = 0; i < 6; i++) SLOT(view, view_off[i]) = Py_NewRef(values[i]);
    Py_XSETREF(SLOT(self, book_levels_off), Py_NewRef(both)); /* the copy the next reuses */
done:
    Py_XDECREF(pp);
    Py_XDECREF(bids);
    Py_XDECREF(asks);
    Py_XDECREF(both);
    return view;
}


/* ------------------------------------------------------------------ slot makers */

/* slot_maker(cls, fields): a callable (*values) -> cls that allocates the object and sets
 * its slots `fields` (object slots of cls, every one, in order) with no __init__ and no
 * Python frame: bot.core.frozen.maker's object (the strategy's BookSnapshot, once per
 * book message), made in C. The caller checks that cls is a frozen, slotted dataclass
 * whose fields these are (StrategyRunner takes maker's checks first). */
#define MAKER_FIELDS 8

typedef struct {
    PyObject_HEAD
    PyTypeObject *cls;
    Py_ssize_t n;
    Py_ssize_t offs[MAKER_FIELDS];
    vectorcallfunc vectorcall;
} SlotMaker;

static void
maker_dealloc(SlotMaker *self)
{
    Py_XDECREF(self->cls);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
maker_call(SlotMaker *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n != self->n || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd fields, by position", self->cls->tp_name,
                     self->n);
        return NULL;
    }
    PyObject *obj = self->cls->tp_alloc(self->cls, 0);
    if (obj == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) SLOT(obj, self->offs[i]) = Py_NewRef(args[i]);
    return obj;
}

static PyTypeObject SlotMakerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bot.market._bookcore.SlotMaker",
    .tp_doc = PyDoc_STR("(*fields) -> the class's object, its slots set (slot_maker)."),
    .tp_basicsize = sizeof(SlotMaker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_dealloc = (destructor)maker_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(SlotMaker, vectorcall),
};

PyDoc_STRVAR(slot_maker_doc,
"slot_maker(cls, fields, /)\n--\n\n"
"A callable (*values) -> cls setting the object slots named in `fields` (a tuple of\n"
"at most 8 str), with no __init__: see the C source.");

static PyObject *
slot_maker(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyType_Check(args[0]) || !PyTuple_CheckExact(args[1]) ||
        PyTuple_GET_SIZE(args[1]) > MAKER_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "slot_maker() takes a class and a tuple of names");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    SlotMaker *m = PyObject_New(SlotMaker, &SlotMakerType);
    if (m == NULL) return NULL;
    m->cls = (PyTypeObject *)Py_NewRef(cls);
    m->n = PyTuple_GET_SIZE(args[1]);
    m->vectorcall = (vectorcallfunc)maker_call;
    for (Py_ssize_t i = 0; i < m->n; i++) {
        PyObject *name = PyTuple_GET_ITEM(args[1], i);
        const char *text = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
        if (text == NULL || (m->offs[i] = slot_offset(cls, text)) < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "slot_maker(): bad name");
            Py_DECREF(m);
            return NULL;
        }
    }
    return (PyObject *)m;
}

/* ------------------------------------------------------------------ the module */

static PyMethodDef module_methods[] = {
    {"apply_update", (PyCFunction)(void (*)(void))apply_update, METH_FASTCALL,
     apply_update_doc},
    {"fused_update", (PyCFunction)(void (*)(void))fused_update, METH_FASTCALL,
     fused_update_doc},
    {"raw_update", (PyCFunction)(void (*)(void))raw_update, METH_FASTCALL, raw_update_doc},
    {"bind_parse", (PyCFunction)(void (*)(void))bind_parse, METH_FASTCALL, bind_parse_doc},
    {"parse_into", (PyCFunction)(void (*)(void))parse_into, METH_FASTCALL, parse_into_doc},
    {"crc32", (PyCFunction)(void (*)(void))crc32, METH_FASTCALL, crc32_doc},
    {"levels", (PyCFunction)(void (*)(void))levels, METH_FASTCALL, levels_doc},
    {"bind_view", (PyCFunction)(void (*)(void))bind_view, METH_FASTCALL, bind_view_doc},
    {"slot_maker", (PyCFunction)(void (*)(void))slot_maker, METH_FASTCALL, slot_maker_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bot.market._bookcore",
    .m_doc = "The C core of the order book's hot path (see bot/market/_bookcore.c).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int
intern(PyObject **slot, const char *text)
{
    if (*slot == NULL) *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__bookcore(void)
{
    crc_init();
    crc_detect();
    KeySet *sets[] = {&envelope_set, &item_set, &level_set};
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        for (int j = 0; j < sets[i]->n; j++) {
            if (intern(&sets[i]->keys[j].obj, sets[i]->keys[j].text) < 0) return NULL;
        }
    }
    if (intern(&s_mismatch, "_mismatch") < 0) return NULL;
    if (intern(&s_price_precision, "price_precision") < 0) return NULL;
    if (fragment_format == NULL) {
        fragment_format = PyBytes_FromString("%d%d");
        if (fragment_format == NULL) return NULL;
    }
    if (PrecisionLost == NULL) {
        PyObject *instruments = PyImport_ImportModule("bot.kraken.instruments");
        if (instruments == NULL) return NULL;
        PrecisionLost = PyObject_GetAttrString(instruments, "PrecisionLost");
        Py_DECREF(instruments);
        if (PrecisionLost == NULL) return NULL;
    }
    if (PyType_Ready(&BookCoreType) < 0) return NULL;
    if (PyType_Ready(&SlotMakerType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    Py_INCREF(&BookCoreType);
    if (PyModule_AddObject(module, "BookCore", (PyObject *)&BookCoreType) < 0) {
        Py_DECREF(&BookCoreType);
        Py_DECREF(module);
        return NULL;
    }
    PyObject *clmul = PyBool_FromLong(crc_use_clmul);
    if (PyModule_AddObject(module, "CRC32_CLMUL", clmul) < 0) {
        Py_DECREF(clmul);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
