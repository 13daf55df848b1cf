/*
 * bot.market._bookcore: what its C files share, and nothing else (internal: no Python
 * code and no other extension includes it).
 *
 * The module is one extension built from these files (setup.py lists them):
 *   _bookcore.c         the module: its overview (the state, memory ownership), the
 *                       module state set at import, PyInit__bookcore
 *   _bookcore_crc32.c   CRC-32 (a PCLMULQDQ fold on x86-64, slicing-by-8 tables), crc32()
 *   _bookcore_keys.c    the interned JSON keys the hot path reads from decoded objects
 *   _bookcore_state.c   the BookCore type, and check_state (which reads the wire scales)
 *   _bookcore_apply.c   one update applied and verified: the rules, apply_update()
 *   _bookcore_wire.c    frames.parse_into's fast paths: fused_update(), and raw_update()
 *                       and parse_into() from the received text with no JSON decoder
 *   _bookcore_view.c    the best levels copied out: levels(), BookCore.view, slot_maker()
 *
 * Shared here: the BookCore struct and type, the structs an update passes between files
 * (Scales, Scaled, Side), the key sets and read_keys (inline: it runs once per level), the
 * module state, the functions one file calls in another, and each file's method table
 * (PyInit__bookcore adds them in this order: the functions' order in the module is the
 * one a single table had). Everything else stays static in its file. Every name declared
 * here is hidden (BOOKCORE_INTERNAL; setup.py also builds with -fvisibility=hidden): the
 * module's only exported symbol is PyInit__bookcore.
 */

#ifndef BOOKCORE_H
#define BOOKCORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define BOOKCORE_INTERNAL __attribute__((visibility("hidden")))
#else
#define BOOKCORE_INTERNAL
#endif

#define TOP 10 /* levels per side in Kraken's checksum */

/* ------------------------------------------------------------------ module state (_bookcore.c) */

/* Set once at import, then read-only (the module is single-phase and not reloaded). */
BOOKCORE_INTERNAL extern PyObject *PrecisionLost;     /* bot.kraken.instruments.PrecisionLost */
BOOKCORE_INTERNAL extern PyObject *fragment_format;   /* b"%d%d", for ints beyond 64 bits */
BOOKCORE_INTERNAL extern PyObject *s_mismatch;        /* "_mismatch", the method name */
BOOKCORE_INTERNAL extern PyObject *s_price_precision; /* "price_precision" */

/* ------------------------------------------------------------------ _bookcore_keys.c */

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
BOOKCORE_INTERNAL extern Key envelope_keys[3], item_keys[5], level_keys[2];
BOOKCORE_INTERNAL extern KeySet envelope_set, item_set, level_set;

BOOKCORE_INTERNAL void learn_keys(KeySet *set, PyObject *dict);

/* dict[key] for each key of the set, as borrowed references in out (NULL if absent).
 * -1 if a lookup raised (a key whose comparison fails: never in orjson's output). */
static inline int
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

/* ------------------------------------------------------------------ _bookcore_state.c */

typedef struct {
    PyObject_HEAD
    PyObject *ap, *aq, *at; /* asks: prices (list), qtys (dict), top-10 fragments */
    PyObject *bp, *bq, *bt; /* bids, keyed by negated price */
    PyObject *scales;       /* see the state in _bookcore.c */
    PyObject *updated;      /* BookApplied(book, False, None) */
    PyObject *timestamp;    /* str */
    Py_ssize_t depth, ignored, mismatches;
    unsigned int a_crc, crc;
    char valid;
} BookCore;

BOOKCORE_INTERNAL extern PyTypeObject BookCoreType;

/* The per-call view of the wire scales, read from the _scales tuple. */
typedef struct {
    double price_scale, qty_scale, price_limit, qty_limit;
    PyObject *price_int, *qty_int; /* borrowed from the tuple: 10**pp, 10**qp */
    long long price_ll, qty_ll;    /* the same, or 0 if beyond 64 bits */
} Scales;

BOOKCORE_INTERNAL int state_error(const char *what);
BOOKCORE_INTERNAL int check_state(BookCore *b, Scales *sc);

/* ------------------------------------------------------------------ _bookcore_apply.c */

/* A scaled number: its value when it fits in 64 bits, and the Python int, made only
 * when something needs it (a new reference, or NULL). */
typedef struct {
    PyObject *obj;
    long long v;
    int fits; /* v holds the value; obj may be NULL. Else obj holds it. */
} Scaled;

typedef struct {
    PyObject *prices, *qtys, *frags; /* borrowed from the BookCore */
    int is_bid;
    const char *name; /* "asks" or "bids" */
} Side;

BOOKCORE_INTERNAL int apply_level(Side *s, Scaled *price, Scaled *key, Scaled *qty);
BOOKCORE_INTERNAL int cut_side(BookCore *b, Side *s);
BOOKCORE_INTERNAL int recompute(BookCore *b, PyObject *at, PyObject *bt);
BOOKCORE_INTERNAL PyObject *finish_update(BookCore *b, int a_changed, int b_changed,
                                          PyObject *at, PyObject *bt, PyObject *checksum,
                                          uint32_t expected, PyObject *timestamp);
BOOKCORE_INTERNAL PyObject *apply_update_impl(BookCore *b, PyObject *bids, PyObject *asks,
                                              PyObject *checksum, uint32_t expected,
                                              PyObject *timestamp);
BOOKCORE_INTERNAL int u32_checksum(PyObject *checksum, uint32_t *out);

/* ------------------------------------------------------------------ _bookcore_crc32.c */

BOOKCORE_INTERNAL int crc_start(void);
BOOKCORE_INTERNAL int crc_of_fragments(PyObject *frags, uint32_t crc, uint32_t *out);

/* ------------------------------------------------------------------ _bookcore_view.c */

BOOKCORE_INTERNAL PyObject *core_view(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                      PyObject *kwnames);
BOOKCORE_INTERNAL extern PyTypeObject SlotMakerType;

/* ------------------------------------------------------------------ the method tables */

BOOKCORE_INTERNAL extern PyMethodDef apply_methods[]; /* apply_update */
BOOKCORE_INTERNAL extern PyMethodDef wire_methods[];  /* fused_update, raw_update, ... */
BOOKCORE_INTERNAL extern PyMethodDef crc32_methods[]; /* crc32 */
BOOKCORE_INTERNAL extern PyMethodDef view_methods[];  /* levels, bind_view, slot_maker */

#endif /* BOOKCORE_H */
