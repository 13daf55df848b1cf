/*
 * bot.market._bookcore: BookCore, the type that holds a Book's mutable state (its struct
 * is in _bookcore.h, the state it holds is documented in _bookcore.c): its members under
 * the names the Python code uses, its part in the cyclic GC, its method view (made in
 * _bookcore_view.c), and check_state, the check every update makes before it trusts a
 * state that Python code can replace, which also reads the wire scales.
 */

#include "_bookcore.h"

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

PyTypeObject BookCoreType = {
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

int
state_error(const char *what)
{
    PyErr_Format(PyExc_RuntimeError, "book state: %s is not what the C core expects", what);
    return -1;
}

/* Check every member the hot path reads, so that a state broken from Python raises
 * instead of crashing; fill *sc from _scales. */
int
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
