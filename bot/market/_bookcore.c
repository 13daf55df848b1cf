/*
 * bot.market._bookcore: the C core of the order book's hot path.
 *
 * This file is the module: this overview (what the module owns, the state it shares with
 * the Python code, memory ownership), the module state set at import, and
 * PyInit__bookcore. The rest is in files named for their concept, which share
 * _bookcore.h (it lists them); setup.py builds them into this one extension.
 *
 * What it owns
 * ------------
 * - BookCore, the type that holds a Book's mutable state (_bookcore_state.c).
 *   bot.market.book.Book subclasses it; every field is a member (PyMemberDef) under the
 *   name the Python code uses (_ap, _aq, _at, _bp, _bq, _bt, _a_crc, _crc, _valid,
 *   _scales, _updated, depth, ignored, mismatches, timestamp), so the Python methods of
 *   Book (snapshots, BookFrame updates, views) and this C code read and write one and the
 *   same state. When the extension is not built or KRAKENBOT_PURE_BOOK=1, Book subclasses
 *   a __slots__ class with the same member names instead (bot/market/book.py, _PureState).
 * - apply_update(book, bids, asks, checksum, timestamp): Book.apply_wire_update in C
 *   (_bookcore_apply.c, which also states the rules an update follows).
 * - fused_update(msg, books): the common shape of frames.parse_into, from the decoded
 *   message to the book ([BookApplied]), or None for any other shape (_bookcore_wire.c).
 * - raw_update(raw, books): the same from the received text, with no JSON decoder, for
 *   a strict form of it (_bookcore_wire.c, "raw frames"); None, the book untouched,
 *   otherwise.
 * - parse_into(parser, raw, books): frames.parse_into, raw_update first, then the
 *   decoding path in Python (bound by bind_parse); in _bookcore_wire.c.
 * - levels(book, n, prev) and BookCore.view(n): the best levels as tuples, and
 *   Book.view made with no Python frame (bind_view tells it the Python classes' slots);
 *   in _bookcore_view.c.
 * - slot_maker(cls, fields): a C constructor of a frozen, slotted dataclass (the
 *   strategies' BookSnapshot); in _bookcore_view.c.
 * - crc32(data, value=0, portable=False): this module's CRC-32, for the tests
 *   (_bookcore_crc32.c).
 * It does no I/O and keeps no state of its own beyond caches (the key objects of
 * _bookcore_keys.c, the last symbol of _bookcore_wire.c).
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

#include "_bookcore.h"

/* ------------------------------------------------------------------ module state */

/* Set once at import, then read-only (the module is single-phase and not reloaded). */
PyObject *PrecisionLost;     /* bot.kraken.instruments.PrecisionLost */
PyObject *fragment_format;   /* b"%d%d", for ints beyond 64 bits */
PyObject *s_mismatch;        /* "_mismatch", the method name */
PyObject *s_price_precision; /* "price_precision" */

/* ------------------------------------------------------------------ the module */

/* The functions are added from each file's table, in this order (their order in the
 * module's namespace). */
static PyMethodDef *const method_tables[] = {apply_methods, wire_methods, crc32_methods,
                                             view_methods};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bot.market._bookcore",
    .m_doc = "The C core of the order book's hot path (see bot/market/_bookcore.c).",
    .m_size = -1,
    .m_methods = NULL,
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
    int clmul = crc_start();
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
    for (size_t i = 0; i < sizeof(method_tables) / sizeof(method_tables[0]); i++) {
        if (PyModule_AddFunctions(module, method_tables[i]) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    Py_INCREF(&BookCoreType);
    if (PyModule_AddObject(module, "BookCore", (PyObject *)&BookCoreType) < 0) {
        Py_DECREF(&BookCoreType);
        Py_DECREF(module);
        return NULL;
    }
    PyObject *clmul_flag = PyBool_FromLong(clmul);
    if (PyModule_AddObject(module, "CRC32_CLMUL", clmul_flag) < 0) {
        Py_DECREF(clmul_flag);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
