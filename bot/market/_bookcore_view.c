/*
 * bot.market._bookcore: the book's best levels copied out for its readers, with no
 * Python frame: levels(book, n, prev) (the best n levels a side as tuples, the unchanged
 * levels of an earlier copy reused), BookCore.view (Book.view: a BookView, its slots
 * found once by bind_view), and slot_maker (a C constructor of a frozen, slotted
 * dataclass: the strategies' BookSnapshot).
 */

#include "_bookcore.h"

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

PyObject *
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

PyTypeObject SlotMakerType = {
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

PyMethodDef view_methods[] = {
    {"levels", (PyCFunction)(void (*)(void))levels, METH_FASTCALL, levels_doc},
    {"bind_view", (PyCFunction)(void (*)(void))bind_view, METH_FASTCALL, bind_view_doc},
    {"slot_maker", (PyCFunction)(void (*)(void))slot_maker, METH_FASTCALL, slot_maker_doc},
    {NULL, NULL, 0, NULL},
};
