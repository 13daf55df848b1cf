/*
 * bot.market._bookcore: one book update applied and verified, from decoded levels or
 * from the scaled ints _bookcore_wire.c read: the numbers (the exactness test, the
 * checksum fragments), one side (find, set, insert, delete, cut to depth), the end of an
 * update (the CRC of the sides that changed, checked against Kraken's), and the module
 * function apply_update (Book.apply_wire_update in C).
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
 *   multiplication where the CPU has it, slicing-by-8 tables otherwise
 *   (_bookcore_crc32.c).
 * - timestamp is stored; checksum == crc returns _updated, else book._mismatch(checksum)
 *   (Python) marks the book invalid, counts it and builds the BookApplied.
 * - A level that is not an object raises what subscripting it raises in Python
 *   (TypeError), a missing key KeyError, a side that is falsy and not a list TypeError;
 *   any other iterable side is iterated. Any error after levels were applied first
 *   brings _a_crc and _crc in line with the fragment lists (as the Python code does),
 *   then propagates: the book holds the levels applied so far, exactly as the Python
 *   path leaves it (frames.parse_into then applies the exactly decoded frame, or
 *   invalidates the book).
 */

#include "_bookcore.h"

/* ------------------------------------------------------------------ numbers */

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
 * above (the rules); PrecisionLost for anything it cannot accept. */
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
int
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
int
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
int
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
PyObject *
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
PyObject *
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
int
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

PyMethodDef apply_methods[] = {
    {"apply_update", (PyCFunction)(void (*)(void))apply_update, METH_FASTCALL,
     apply_update_doc},
    {NULL, NULL, 0, NULL},
};
