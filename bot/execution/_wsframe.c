/*
 * bot.execution._wsframe: the WebSocket add_order frame of a known order shape, in C.
 *
 * What it owns
 * ------------
 * - AddOrderFrames, a drop-in for bot.execution.ws_requests.PyAddOrderFrames (the
 *   reference, whose docstring states what a shape is): the same constructor
 *   (limit=256), len() and call (order, instrument, token, req_id), by position or by
 *   name. A call is a vectorcall: no Python frame runs for an order of a known shape
 *   with a plain cl_ord_id (printable ASCII, no quote or backslash), an int req_id and
 *   an int price > 0 (or none) at a price precision > 0. Its bytes are the reference's,
 *   byte for byte (tests/unit/test_wsframe.py compares both on random orders).
 * - _bind(template, general, format_scaled): the Python functions every other case is
 *   handed to, bound once by ws_requests at import: a shape not seen before is made by
 *   PyAddOrderFrames._template (str parts, kept here UTF-8 encoded, or None: then the
 *   frame is add_order_frame's); an id that is not plain, a req_id that is not an int, or
 *   a price or precision that is not an int take add_order_frame's way; an int price
 *   <= 0 or a precision <= 0 is written by format_scaled, as the reference does.
 * It does no I/O and keeps no state but each object's cache of shapes and the bound
 * functions.
 *
 * The cache
 * ---------
 * A dict from the reference's key tuple (symbol, qty_precision, order_type, side, qty,
 * time_in_force, post_only, token) to a tuple of three bytes (head up to order_qty's
 * digits; the flags up to cl_ord_id's opening quote; from its closing quote to req_id's
 * colon). The same key, the same equality, the same clear past `limit`, and a template
 * is stored before the id and req_id are looked at, as in the reference: len() agrees.
 *
 * Numbers
 * -------
 * Ints of any size. One that fits a long long (PyLong_AsLongLongAndOverflow says when it
 * does not) is written by hand; a bigger one by PyObject_Str. Nothing is truncated.
 *
 * Memory ownership
 * ----------------
 * AddOrderFrames owns its dict (and takes part in the GC through it: a key holds what
 * the order's fields hold). A call holds strong references to what it reads (attributes,
 * the template, texts) until it returns, since the bound Python functions may run in
 * between; every path releases them (the "done" label, Py_XDECREF on NULL-initialised
 * pointers). The tests check refcounts and traced memory over 100,000 calls.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stddef.h>
#include <string.h>

/* ------------------------------------------------------------------ module state */

/* Interned at import, then read-only (the module is single-phase and not reloaded). */
static PyObject *s_symbol, *s_cl_ord_id, *s_qty_precision, *s_order_type, *s_side, *s_qty,
    *s_time_in_force, *s_post_only, *s_price, *s_price_precision;
static PyObject *s_order, *s_instrument, *s_token, *s_req_id;
static PyObject *general_kwnames; /* ("token", "req_id") */

/* Set by _bind (strong references; NULL until then). */
static PyObject *template_fn, *general_fn, *format_scaled_fn;

/* The most a price's text is padded to in C (its precision + 1); more goes to
 * format_scaled (Kraken's precisions are 0..10 or so). */
#define MAX_PAD 4096

static const char LIMIT_PRICE[] = ",\"limit_price\":";

/* ------------------------------------------------------------------ numbers */

/* The decimal digits of v, written backwards from end (at most 20); their count. */
static Py_ssize_t
write_digits(unsigned long long v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end - p;
}

/* An int's decimal text: in buf when it fits a long long (*text points into buf), else a
 * new str in *owned whose UTF-8 is *text. Returns the length, or -1 with an error. */
static Py_ssize_t
int_text(PyObject *n, char buf[24], const char **text, PyObject **owned)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(n, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow) {
        *owned = PyObject_Str(n);
        if (*owned == NULL) return -1;
        Py_ssize_t len;
        *text = PyUnicode_AsUTF8AndSize(*owned, &len);
        return *text == NULL ? -1 : len;
    }
    unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    Py_ssize_t len = write_digits(mag, buf + 24);
    if (v < 0) buf[24 - ++len] = '-';
    *text = buf + 24 - len;
    return len;
}

/* ------------------------------------------------------------------ the type */

typedef struct {
    PyObject_HEAD
    PyObject *templates; /* dict: key tuple -> (head, middle, tail) bytes */
    Py_ssize_t limit;
    vectorcallfunc vectorcall;
} Frames;

/* The call's arguments by position or name, as def __call__(self, order, instrument,
 * token, req_id) takes them: out[] borrowed. */
static int
parse_call(PyObject *const *args, size_t nargsf, PyObject *kwnames, PyObject *out[4])
{
    static PyObject **const names[4] = {&s_order, &s_instrument, &s_token, &s_req_id};
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs > 4) {
        PyErr_Format(PyExc_TypeError,
                     "AddOrderFrames() takes 4 positional arguments but %zd were given", nargs);
        return -1;
    }
    for (int i = 0; i < 4; i++) out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int i = 0;
        while (i < 4 && name != *names[i]) i++;
        if (i == 4) { /* not the interned object: compare the text */
            for (i = 0; i < 4; i++) {
                int eq = PyObject_RichCompareBool(name, *names[i], Py_EQ);
                if (eq < 0) return -1;
                if (eq) break;
            }
        }
        if (i == 4) {
            PyErr_Format(PyExc_TypeError,
                         "AddOrderFrames() got an unexpected keyword argument '%S'", name);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "AddOrderFrames() got multiple values for argument '%S'",
                         *names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (int i = 0; i < 4; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "AddOrderFrames() missing required argument: '%S'",
                         *names[i]);
            return -1;
        }
    }
    return 0;
}

/* add_order_frame(order, instrument, token=token, req_id=req_id): a new reference. */
static PyObject *
general(PyObject *const a[4])
{
    PyObject *args[4] = {a[0], a[1], a[2], a[3]};
    return PyObject_Vectorcall(general_fn, args, 2, general_kwnames);
}

/* The template of a shape not in the cache: a new reference to its (head, middle, tail)
 * bytes, stored under key; Py_None (a new reference) when the reference refuses the shape. */
static PyObject *
new_template(Frames *self, PyObject *key, PyObject *const a[4])
{
    PyObject *parts = PyObject_CallFunctionObjArgs(template_fn, a[0], a[1], a[2], NULL);
    if (parts == NULL || parts == Py_None) return parts;
    PyObject *template = NULL;
    if (!PyTuple_CheckExact(parts) || PyTuple_GET_SIZE(parts) != 3) {
        PyErr_SetString(PyExc_TypeError, "AddOrderFrames: a template is a tuple of 3 str");
        goto done;
    }
    template = PyTuple_New(3);
    if (template == NULL) goto done;
    for (Py_ssize_t i = 0; i < 3; i++) {
        PyObject *part = PyTuple_GET_ITEM(parts, i);
        PyObject *bytes = PyUnicode_Check(part) ? PyUnicode_AsUTF8String(part) : NULL;
        if (bytes == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "AddOrderFrames: a template is a tuple of 3 str");
            Py_CLEAR(template);
            goto done;
        }
        PyTuple_SET_ITEM(template, i, bytes);
    }
    if (PyDict_GET_SIZE(self->templates) >= self->limit) PyDict_Clear(self->templates);
    if (PyDict_SetItem(self->templates, key, template) < 0) Py_CLEAR(template);
done:
    Py_DECREF(parts);
    return template;
}

/* An id that goes between JSON quotes as it is: printable ASCII, no quote, no backslash
 * (ws_requests._plain; the reference's isalnum-and-isascii shortcut is a subset). */
static int
plain_id(PyObject *id)
{
    if (!PyUnicode_Check(id) || PyUnicode_READY(id) < 0 || !PyUnicode_IS_ASCII(id)) return 0;
    const unsigned char *p = PyUnicode_1BYTE_DATA(id);
    for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(id); i < n; i++) {
        if (p[i] < 0x20 || p[i] > 0x7e || p[i] == '"' || p[i] == '\\') return 0;
    }
    return 1;
}

/* The zero-padded digits (pad zeros, then n digits) with a point before the last `frac` of
 * them (format_scaled's text for an int > 0 at a precision `frac` > 0): the end of it. */
static char *
put_scaled(char *w, const char *digits, Py_ssize_t n, Py_ssize_t pad, Py_ssize_t frac)
{
    Py_ssize_t width = pad + n, point = width - frac;
    for (Py_ssize_t i = 0; i < width; i++) {
        if (i == point) *w++ = '.';
        *w++ = i < pad ? '0' : digits[i - pad];
    }
    return w;
}

static PyObject *
frames_call(Frames *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *a[4];
    if (parse_call(args, nargsf, kwnames, a) < 0) return NULL;
    if (template_fn == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "bot.execution._wsframe is not bound (ws_requests binds it at import)");
        return NULL;
    }
    PyObject *order = a[0], *instrument = a[1], *token = a[2], *req_id = a[3];
    PyObject *result = NULL, *symbol = NULL, *cl_ord_id = NULL, *key = NULL, *template = NULL;
    PyObject *price = NULL, *pp = NULL, *limit_str = NULL, *price_str = NULL, *req_str = NULL;
    const char *limit = NULL, *digits = NULL, *req = NULL;
    Py_ssize_t limit_len = 0, ndigits = 0, pad = 0, frac = 0, req_len;
    char price_buf[24], req_buf[24];

    /* The key, read in the reference's order. */
    symbol = PyObject_GetAttr(instrument, s_symbol);
    if (symbol == NULL) goto done;
    cl_ord_id = PyObject_GetAttr(order, s_cl_ord_id);
    if (cl_ord_id == NULL) goto done;
    key = PyTuple_New(8);
    if (key == NULL) goto done;
    PyTuple_SET_ITEM(key, 0, symbol);
    symbol = NULL; /* the key's now */
    PyObject *const sources[7] = {NULL, instrument, order, order, order, order, order};
    PyObject *const *const fields[7] = {NULL,   &s_qty_precision, &s_order_type,   &s_side,
                                        &s_qty, &s_time_in_force, &s_post_only};
    for (int i = 1; i < 7; i++) {
        PyObject *value = PyObject_GetAttr(sources[i], *fields[i]);
        if (value == NULL) goto done;
        PyTuple_SET_ITEM(key, i, value);
    }
    PyTuple_SET_ITEM(key, 7, Py_NewRef(token));

    template = PyDict_GetItemWithError(self->templates, key);
    if (template != NULL) {
        Py_INCREF(template); /* held: the Python code below may clear the cache */
    }
    else {
        if (PyErr_Occurred()) goto done;
        template = new_template(self, key, a);
        if (template == NULL) goto done;
        if (template == Py_None) {
            result = general(a);
            goto done;
        }
    }
    if (!plain_id(cl_ord_id) || !PyLong_CheckExact(req_id)) {
        result = general(a);
        goto done;
    }

    /* The price's text, or none. */
    price = PyObject_GetAttr(order, s_price);
    if (price == NULL) goto done;
    if (price != Py_None) {
        pp = PyObject_GetAttr(instrument, s_price_precision);
        if (pp == NULL) goto done;
        if (!PyLong_CheckExact(price) || !PyLong_CheckExact(pp)) {
            result = general(a); /* not an int: add_order_frame's way */
            goto done;
        }
        int overflow, sign;
        long long p = PyLong_AsLongLongAndOverflow(pp, &overflow);
        if (p == -1 && PyErr_Occurred()) goto done;
        long long v = PyLong_AsLongLongAndOverflow(price, &sign);
        if (v == -1 && PyErr_Occurred()) goto done;
        if (sign == 0) sign = v > 0; /* else past a long long, of that sign */
        if (overflow || p <= 0 || p > MAX_PAD || sign <= 0) {
            limit_str = PyObject_CallFunctionObjArgs(format_scaled_fn, price, pp, NULL);
            if (limit_str == NULL) goto done;
            if (!PyUnicode_Check(limit_str)) {
                PyErr_SetString(PyExc_TypeError, "format_scaled returned a non-str");
                goto done;
            }
            limit = PyUnicode_AsUTF8AndSize(limit_str, &limit_len);
            if (limit == NULL) goto done;
        }
        else {
            ndigits = int_text(price, price_buf, &digits, &price_str);
            if (ndigits < 0) goto done;
            frac = (Py_ssize_t)p;
            pad = frac + 1 > ndigits ? frac + 1 - ndigits : 0;
            limit_len = pad + ndigits + 1;
        }
    }
    req_len = int_text(req_id, req_buf, &req, &req_str);
    if (req_len < 0) goto done;

    PyObject *head = PyTuple_GET_ITEM(template, 0), *middle = PyTuple_GET_ITEM(template, 1),
             *tail = PyTuple_GET_ITEM(template, 2);
    Py_ssize_t id_len = PyUnicode_GET_LENGTH(cl_ord_id);
    Py_ssize_t total = PyBytes_GET_SIZE(head) + PyBytes_GET_SIZE(middle) + id_len +
                       PyBytes_GET_SIZE(tail) + req_len + 1;
    if (price != Py_None) total += (Py_ssize_t)sizeof(LIMIT_PRICE) - 1 + limit_len;
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) goto done;
    char *w = PyBytes_AS_STRING(result);
#define PUT(src, n)                                                                          \
    do {                                                                                     \
        memcpy(w, (src), (size_t)(n));                                                       \
        w += (n);                                                                            \
    } while (0)
    PUT(PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head));
    if (price != Py_None) {
        PUT(LIMIT_PRICE, sizeof(LIMIT_PRICE) - 1);
        if (limit != NULL) PUT(limit, limit_len);
        else w = put_scaled(w, digits, ndigits, pad, frac);
    }
    PUT(PyBytes_AS_STRING(middle), PyBytes_GET_SIZE(middle));
    PUT(PyUnicode_1BYTE_DATA(cl_ord_id), id_len);
    PUT(PyBytes_AS_STRING(tail), PyBytes_GET_SIZE(tail));
    PUT(req, req_len);
    *w = '}';
#undef PUT
done:
    Py_XDECREF(symbol);
    Py_XDECREF(cl_ord_id);
    Py_XDECREF(key);
    Py_XDECREF(template);
    Py_XDECREF(price);
    Py_XDECREF(pp);
    Py_XDECREF(limit_str);
    Py_XDECREF(price_str);
    Py_XDECREF(req_str);
    return result;
}

static Py_ssize_t
frames_len(Frames *self)
{
    return PyDict_GET_SIZE(self->templates);
}

static PyObject *
frames_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"limit", NULL};
    PyObject *limit = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:AddOrderFrames", kwlist, &limit)) return NULL;
    Py_ssize_t n = 256;
    if (limit != NULL) {
        PyObject *one = PyLong_FromLong(1);
        if (one == NULL) return NULL;
        int below = PyObject_RichCompareBool(limit, one, Py_LT);
        Py_DECREF(one);
        if (below < 0) return NULL;
        if (below) {
            PyErr_SetString(PyExc_ValueError, "AddOrderFrames keeps at least one shape");
            return NULL;
        }
        n = PyNumber_AsSsize_t(limit, NULL); /* an int past the machine's: no limit */
        if (n == -1 && PyErr_Occurred()) return NULL;
    }
    Frames *self = (Frames *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->templates = PyDict_New();
    if (self->templates == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->limit = n;
    self->vectorcall = (vectorcallfunc)frames_call;
    return (PyObject *)self;
}

static int
frames_traverse(Frames *self, visitproc visit, void *arg)
{
    Py_VISIT(self->templates);
    return 0;
}

static int
frames_clear(Frames *self)
{
    Py_CLEAR(self->templates);
    return 0;
}

static void
frames_dealloc(Frames *self)
{
    PyObject_GC_UnTrack(self);
    frames_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PySequenceMethods frames_as_sequence = {
    .sq_length = (lenfunc)frames_len,
};

static PyTypeObject FramesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bot.execution._wsframe.AddOrderFrames",
    .tp_doc = PyDoc_STR(
        "AddOrderFrames(limit=256)\n--\n\n"
        "ws_requests.PyAddOrderFrames in C: (order, instrument, token, req_id) -> the\n"
        "add_order frame, from one template per order shape (see the C source)."),
    .tp_basicsize = sizeof(Frames),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = frames_new,
    .tp_dealloc = (destructor)frames_dealloc,
    .tp_traverse = (traverseproc)frames_traverse,
    .tp_clear = (inquiry)frames_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Frames, vectorcall),
    .tp_as_sequence = &frames_as_sequence,
};

/* ------------------------------------------------------------------ the module */

PyDoc_STRVAR(bind_doc,
"_bind(template, general, format_scaled, /)\n--\n\n"
"The Python functions AddOrderFrames hands every case but the common one to (see the C\n"
"source): PyAddOrderFrames._template, add_order_frame and format_scaled.");

static PyObject *
bind(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyCallable_Check(args[0]) || !PyCallable_Check(args[1]) ||
        !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "_bind() takes three callables");
        return NULL;
    }
    Py_XSETREF(template_fn, Py_NewRef(args[0]));
    Py_XSETREF(general_fn, Py_NewRef(args[1]));
    Py_XSETREF(format_scaled_fn, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"_bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL, bind_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bot.execution._wsframe",
    .m_doc = "The WebSocket add_order frame of a known order shape, in C (see "
             "bot/execution/_wsframe.c).",
    .m_size = -1,
    .m_methods = methods,
};

static int
intern(PyObject **slot, const char *text)
{
    if (*slot == NULL) *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__wsframe(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&s_symbol, "symbol"},
        {&s_cl_ord_id, "cl_ord_id"},
        {&s_qty_precision, "qty_precision"},
        {&s_order_type, "order_type"},
        {&s_side, "side"},
        {&s_qty, "qty"},
        {&s_time_in_force, "time_in_force"},
        {&s_post_only, "post_only"},
        {&s_price, "price"},
        {&s_price_precision, "price_precision"},
        {&s_order, "order"},
        {&s_instrument, "instrument"},
        {&s_token, "token"},
        {&s_req_id, "req_id"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (intern(names[i].slot, names[i].text) < 0) return NULL;
    }
    if (general_kwnames == NULL) {
        general_kwnames = PyTuple_Pack(2, s_token, s_req_id);
        if (general_kwnames == NULL) return NULL;
    }
    if (PyType_Ready(&FramesType) < 0) return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) return NULL;
    Py_INCREF(&FramesType);
    if (PyModule_AddObject(module, "AddOrderFrames", (PyObject *)&FramesType) < 0) {
        Py_DECREF(&FramesType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
