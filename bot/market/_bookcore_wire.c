/*
 * bot.market._bookcore: frames.parse_into's fast paths, which hand a book update to
 * _bookcore_apply.c: fused_update, from the message orjson decoded ("the envelope"), and
 * raw_update and parse_into, from the received text with no JSON decoder ("raw frames",
 * below), with bind_parse, which tells parse_into where the decoding path is.
 *
 * The envelope
 * ------------
 * fused_update takes exactly the messages frames._parse_into_py takes: a dict with
 * channel "book", type "update", data a one-item list holding a dict with an int
 * checksum in 0..2**32-1, a str timestamp, bids, asks and a symbol whose entry in
 * `books` is a BookCore. Anything else returns None, and a lookup in `books` that
 * raises one of parse_into's "shape" errors (KeyError, TypeError, ...) too.
 */

#include "_bookcore.h"

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
 * it with round(f * 10**p) == m (the rule in _bookcore_apply.c; below 2**48 neither rounding can
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

PyMethodDef wire_methods[] = {
    {"fused_update", (PyCFunction)(void (*)(void))fused_update, METH_FASTCALL,
     fused_update_doc},
    {"raw_update", (PyCFunction)(void (*)(void))raw_update, METH_FASTCALL, raw_update_doc},
    {"bind_parse", (PyCFunction)(void (*)(void))bind_parse, METH_FASTCALL, bind_parse_doc},
    {"parse_into", (PyCFunction)(void (*)(void))parse_into, METH_FASTCALL, parse_into_doc},
    {NULL, NULL, 0, NULL},
};
