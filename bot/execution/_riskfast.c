/*
 * bot.execution._riskfast: RiskGate.accept_place's common case in C.
 *
 * What it owns
 * ------------
 * accept_place(gate, strategy, inst, side, qty, price, mids, open_orders, open_total):
 * RiskGate._accept_place (bot/execution/risk.py, the reference) with no Python frame of its
 * own. The risk gate binds it to itself (functools.partial) as its accept_place when this
 * extension is built, so the pre-trade stage's call on every place runs here. It keeps no
 * state: it reads the gate's (the Python objects' own attributes, under the names the
 * Python code uses) and changes it exactly as the reference does, or hands the call to the
 * reference's own _accept_values.
 *
 * The rules (the reference's, in its order)
 * -----------------------------------------
 *   1. The gate's fast path off, no daily-loss evaluation yet, the positions' revision
 *      moved since it, or the wall clock past its UTC day: False (check evaluates first).
 *   2. The bot's or the strategy's own state not ACTIVE: False.
 *   3. The gate's last FastPlan (risk_fast.py) for this strategy and this very instrument;
 *      another plan (a new pair, a first order): _accept_values in Python builds it.
 *   4. The plan disabled, a qty that is not an int in (0, qty_max], a side other than
 *      "buy"/"sell": False.
 *   5. No price: False when the plan needs one. A price that is not a positive int:
 *      False. Its notional (price x qty) above the plan's cap: False. With a band: the mid
 *      (mids.get(symbol)) must be a Decimal; a mid that is not the band's last one (by
 *      identity, then by value) updates the band (Band.update, in Python); the price must
 *      lie in [band.lo, band.hi].
 *   6. The positions the plan holds are for another revision: _accept_values in Python
 *      refreshes them (then decides). No position in whole units: False.
 *   7. The position caps (the bot's, the strategy's own) unless the order reduces the
 *      position, the open-order limits: False when reached. No open_total: Python.
 *   8. The rate windows: pruned of times older than RATE_WINDOW_S, False at a window's
 *      limit; else the time appended to each (the clock read twice, as the reference).
 *   9. Accepted: gate._accepted + 1, True.
 * Every number is a Python int compared with Python's own operators: qty and positions go
 * up to 10**27, past any C integer.
 *
 * Memory ownership
 * ----------------
 * Every attribute read is a new reference, released on every path at "done"; the plan's
 * items are borrowed from the plan, which is held to the end. Python code runs in between
 * (mids.get, Band.update, the clock, the deques' methods), so nothing borrowed from the
 * gate's mutable containers is kept across such a call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Set by bind(): TradingState.ACTIVE, decimal.Decimal, RATE_WINDOW_S (a float). */
static PyObject *g_active, *g_decimal, *g_window_s;
static PyObject *g_zero, *g_one;

static PyObject *s_fast_path, *s_evaluated, *s_positions, *s_revision, *s_clock,
    *s_time_ns, *s_evaluated_until_ns, *s_state, *s_strategy_state, *s_last_plan,
    *s_symbol, *s_get, *s_mid, *s_lo, *s_hi, *s_update, *s_monotonic, *s_popleft,
    *s_append, *s_accepted, *s_accept_values;

enum { NO = 0, YES = 1, ASK_PYTHON = 2, FAILED = -1 };

/* The FastPlan's fields, in risk_fast.FastPlan's order. */
enum {
    P_STRATEGY, P_INST, P_ENABLED, P_QTY_MAX, P_NOTIONAL_MAX, P_BAND, P_NEEDS_PRICE,
    P_CAP_BOT, P_CAP_STRATEGY, P_OPEN_BOT, P_OPEN_STRATEGY, P_RATES, P_HELD, P_FIELDS
};

/* a < b etc. on Python objects: 1, 0, or -1 with an exception set. */
#define CMP(a, b, op) PyObject_RichCompareBool((a), (b), (op))

/* Whether an order of signed size ``delta`` reduces ``pos`` without flipping it:
 * (pos < 0 < delta or delta < 0 < pos) and qty <= abs(pos). */
static int
reduces(PyObject *pos, PyObject *delta, PyObject *qty)
{
    int pos_neg = CMP(pos, g_zero, Py_LT), pos_pos, d_pos, d_neg, r;
    if (pos_neg < 0) return -1;
    if ((pos_pos = CMP(pos, g_zero, Py_GT)) < 0) return -1;
    if ((d_pos = CMP(delta, g_zero, Py_GT)) < 0) return -1;
    if ((d_neg = CMP(delta, g_zero, Py_LT)) < 0) return -1;
    if (!((pos_neg && d_pos) || (d_neg && pos_pos))) return 0;
    PyObject *size = PyNumber_Absolute(pos);
    if (size == NULL) return -1;
    r = CMP(qty, size, Py_LE);
    Py_DECREF(size);
    return r;
}

/* abs(pos + delta) > cap: 1, 0, -1. */
static int
over_cap(PyObject *pos, PyObject *delta, PyObject *cap)
{
    PyObject *after = PyNumber_Add(pos, delta), *size;
    int r;
    if (after == NULL) return -1;
    size = PyNumber_Absolute(after);
    Py_DECREF(after);
    if (size == NULL) return -1;
    r = CMP(size, cap, Py_GT);
    Py_DECREF(size);
    return r;
}

/* The rate windows (rule 8): NO at a limit (earlier windows pruned, as the reference
 * leaves them), YES with the time appended to each, FAILED. */
static int
count_rate(PyObject *clock, PyObject *rates)
{
    Py_ssize_t n = PyTuple_GET_SIZE(rates), i;
    PyObject *now = NULL, *oldest = NULL;
    int r = FAILED;
    if (n == 0) return YES;
    now = PyObject_CallMethodNoArgs(clock, s_monotonic);
    if (now == NULL) goto done;
    oldest = PyNumber_Subtract(now, g_window_s);
    Py_CLEAR(now);
    if (oldest == NULL) goto done;
    for (i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(rates, i), *window, *most;
        Py_ssize_t size;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_RuntimeError, "a FastPlan's rates are (window, most) pairs");
            goto done;
        }
        window = PyTuple_GET_ITEM(pair, 0);
        most = PyTuple_GET_ITEM(pair, 1);
        Py_INCREF(window);  /* held across the deque's own calls */
        Py_INCREF(most);
        for (;;) {
            if ((size = PyObject_Size(window)) < 0) goto pair_failed;
            if (size == 0) break;
            PyObject *first = PySequence_GetItem(window, 0), *gone;
            if (first == NULL) goto pair_failed;
            int old = CMP(first, oldest, Py_LE);
            Py_DECREF(first);
            if (old < 0) goto pair_failed;
            if (!old) break;
            gone = PyObject_CallMethodNoArgs(window, s_popleft);
            if (gone == NULL) goto pair_failed;
            Py_DECREF(gone);
        }
        if ((size = PyObject_Size(window)) < 0) goto pair_failed;
        PyObject *count = PyLong_FromSsize_t(size);
        if (count == NULL) goto pair_failed;
        int full = CMP(count, most, Py_GE);
        Py_DECREF(count);
        Py_DECREF(window);
        Py_DECREF(most);
        if (full < 0) goto done;
        if (full) {
            r = NO;
            goto done;
        }
        continue;
    pair_failed:
        Py_DECREF(window);
        Py_DECREF(most);
        goto done;
    }
    now = PyObject_CallMethodNoArgs(clock, s_monotonic);
    if (now == NULL) goto done;
    for (i = 0; i < n; i++) {
        PyObject *window = PyTuple_GET_ITEM(PyTuple_GET_ITEM(rates, i), 0), *none;
        Py_INCREF(window);
        none = PyObject_CallMethodOneArg(window, s_append, now);
        Py_DECREF(window);
        if (none == NULL) goto done;
        Py_DECREF(none);
    }
    r = YES;
done:
    Py_XDECREF(now);
    Py_XDECREF(oldest);
    return r;
}

/* Rules 1-9 on the arguments (args[0] is the gate): NO, YES (counted), ASK_PYTHON (nothing
 * changed that the reference's decision reads), FAILED. */
static int
decide(PyObject *const *args)
{
    PyObject *gate = args[0], *strategy = args[1], *inst = args[2], *side = args[3],
             *qty = args[4], *price = args[5], *mids = args[6], *open_orders = args[7],
             *total = args[8];
    PyObject *t = NULL, *book = NULL, *rev = NULL, *clock = NULL, *plan = NULL,
             *delta = NULL, *mid = NULL, *band_mid = NULL, *lo = NULL, *hi = NULL,
             *held = NULL, *pos = NULL, *own = NULL, *count = NULL;
    PyObject *band, *rates;
    int r = FAILED, c, is_buy, reduces_bot;

    /* 1. the fast path, and the daily loss evaluated for this revision and this day */
    if ((t = PyObject_GetAttr(gate, s_fast_path)) == NULL) goto done;
    if ((c = PyObject_IsTrue(t)) < 0) goto done;
    Py_CLEAR(t);
    if (!c) { r = NO; goto done; }
    if ((t = PyObject_GetAttr(gate, s_evaluated)) == NULL) goto done;
    if (t == Py_None) { r = NO; goto done; }
    if ((book = PyObject_GetAttr(gate, s_positions)) == NULL) goto done;
    if ((rev = PyObject_GetAttr(book, s_revision)) == NULL) goto done;
    {
        PyObject *seen = PySequence_GetItem(t, 0);
        if (seen == NULL) goto done;
        c = CMP(rev, seen, Py_NE);
        Py_DECREF(seen);
    }
    Py_CLEAR(t);
    if (c < 0) goto done;
    if (c) { r = NO; goto done; }
    if ((clock = PyObject_GetAttr(gate, s_clock)) == NULL) goto done;
    {
        PyObject *now = PyObject_CallMethodNoArgs(clock, s_time_ns), *until;
        if (now == NULL) goto done;
        until = PyObject_GetAttr(gate, s_evaluated_until_ns);
        if (until == NULL) { Py_DECREF(now); goto done; }
        c = CMP(now, until, Py_GE);
        Py_DECREF(now);
        Py_DECREF(until);
    }
    if (c < 0) goto done;
    if (c) { r = NO; goto done; }

    /* 2. every state ACTIVE */
    if ((t = PyObject_GetAttr(gate, s_state)) == NULL) goto done;
    if (t != g_active) { r = NO; goto done; }
    Py_CLEAR(t);
    if ((t = PyObject_GetAttr(gate, s_strategy_state)) == NULL) goto done;
    if (!PyDict_CheckExact(t)) { r = ASK_PYTHON; goto done; }
    {
        PyObject *state = PyDict_GetItemWithError(t, strategy);  /* borrowed, used at once */
        if (state == NULL && PyErr_Occurred()) goto done;
        if (state != NULL && state != g_active) { r = NO; goto done; }
    }
    Py_CLEAR(t);

    /* 3. the plan of this strategy on this instrument */
    if ((plan = PyObject_GetAttr(gate, s_last_plan)) == NULL) goto done;
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != P_FIELDS
        || PyTuple_GET_ITEM(plan, P_STRATEGY) != strategy
        || PyTuple_GET_ITEM(plan, P_INST) != inst) {
        r = ASK_PYTHON;
        goto done;
    }

    /* 4. enabled, the qty, the side */
    if ((c = PyObject_IsTrue(PyTuple_GET_ITEM(plan, P_ENABLED))) < 0) goto done;
    if (!c || !PyLong_CheckExact(qty)) { r = NO; goto done; }
    if ((c = CMP(qty, g_zero, Py_GT)) < 0) goto done;
    if (!c) { r = NO; goto done; }
    if ((c = CMP(qty, PyTuple_GET_ITEM(plan, P_QTY_MAX), Py_LE)) < 0) goto done;
    if (!c) { r = NO; goto done; }
    if (!PyUnicode_CheckExact(side)) { r = ASK_PYTHON; goto done; }
    is_buy = PyUnicode_CompareWithASCIIString(side, "buy") == 0;
    if (!is_buy && PyUnicode_CompareWithASCIIString(side, "sell") != 0) { r = NO; goto done; }
    delta = is_buy ? Py_NewRef(qty) : PyNumber_Negative(qty);
    if (delta == NULL) goto done;

    /* 5. the price: its notional and the band around the mid */
    band = PyTuple_GET_ITEM(plan, P_BAND);
    if (price == Py_None) {
        if ((c = PyObject_IsTrue(PyTuple_GET_ITEM(plan, P_NEEDS_PRICE))) < 0) goto done;
        if (c) { r = NO; goto done; }
    }
    else {
        PyObject *cap = PyTuple_GET_ITEM(plan, P_NOTIONAL_MAX);
        if (!PyLong_CheckExact(price)) { r = NO; goto done; }
        if ((c = CMP(price, g_zero, Py_LE)) < 0) goto done;
        if (c) { r = NO; goto done; }
        if (cap != Py_None) {
            PyObject *cost = PyNumber_Multiply(price, qty);
            if (cost == NULL) goto done;
            c = CMP(cost, cap, Py_GT);
            Py_DECREF(cost);
            if (c < 0) goto done;
            if (c) { r = NO; goto done; }
        }
        if (band != Py_None) {
            Py_INCREF(band);  /* the plan holds it, but Python code runs below */
            PyObject *symbol = PyObject_GetAttr(inst, s_symbol);
            if (symbol == NULL) { Py_DECREF(band); goto done; }
            mid = PyObject_CallMethodOneArg(mids, s_get, symbol);
            Py_DECREF(symbol);
            if (mid == NULL) { Py_DECREF(band); goto done; }
            if (Py_TYPE(mid) != (PyTypeObject *)g_decimal) { Py_DECREF(band); r = NO; goto done; }
            if ((band_mid = PyObject_GetAttr(band, s_mid)) == NULL) { Py_DECREF(band); goto done; }
            if (mid != band_mid) {
                /* a NaN is never equal; a signalling NaN raises here, as in the reference */
                if ((c = CMP(mid, band_mid, Py_NE)) < 0) { Py_DECREF(band); goto done; }
                if (c) {
                    PyObject *none = PyObject_CallMethodOneArg(band, s_update, mid);
                    if (none == NULL) { Py_DECREF(band); goto done; }
                    Py_DECREF(none);
                }
            }
            lo = PyObject_GetAttr(band, s_lo);
            hi = lo == NULL ? NULL : PyObject_GetAttr(band, s_hi);
            Py_DECREF(band);
            if (hi == NULL) goto done;
            if ((c = CMP(lo, price, Py_LE)) < 0) goto done;
            if (c && (c = CMP(price, hi, Py_LE)) < 0) goto done;
            if (!c) { r = NO; goto done; }
        }
    }

    /* 6. the positions the plan holds, for the book's revision now */
    held = PyTuple_GET_ITEM(plan, P_HELD);
    if (!PyList_CheckExact(held) || PyList_GET_SIZE(held) != 3) { held = NULL; r = ASK_PYTHON; goto done; }
    Py_INCREF(held);
    Py_CLEAR(rev);
    if ((rev = PyObject_GetAttr(book, s_revision)) == NULL) goto done;
    if ((c = CMP(PyList_GET_ITEM(held, 0), rev, Py_NE)) < 0) goto done;
    if (c) { r = ASK_PYTHON; goto done; }
    pos = Py_NewRef(PyList_GET_ITEM(held, 1));
    if (pos == Py_None) { r = NO; goto done; }

    /* 7. the position caps, unless the order reduces; the open orders */
    if ((reduces_bot = reduces(pos, delta, qty)) < 0) goto done;
    {
        PyObject *cap = PyTuple_GET_ITEM(plan, P_CAP_BOT);
        if (cap != Py_None && !reduces_bot) {
            if ((c = over_cap(pos, delta, cap)) < 0) goto done;
            if (c) { r = NO; goto done; }
        }
        cap = PyTuple_GET_ITEM(plan, P_CAP_STRATEGY);
        if (cap != Py_None) {
            own = Py_NewRef(PyList_GET_ITEM(held, 2));
            if (own == Py_None) { r = NO; goto done; }
            if ((c = reduces(own, delta, qty)) < 0) goto done;
            if (!c) {
                if ((c = over_cap(own, delta, cap)) < 0) goto done;
                if (c) { r = NO; goto done; }
            }
        }
    }
    if (total == Py_None) { r = ASK_PYTHON; goto done; }
    {
        PyObject *most = PyTuple_GET_ITEM(plan, P_OPEN_BOT);
        if (most != Py_None) {
            if ((c = CMP(total, most, Py_GE)) < 0) goto done;
            if (c) { r = NO; goto done; }
        }
        most = PyTuple_GET_ITEM(plan, P_OPEN_STRATEGY);
        if (most != Py_None) {
            if (PyDict_CheckExact(open_orders)) {
                count = PyDict_GetItemWithError(open_orders, strategy);
                if (count == NULL && PyErr_Occurred()) goto done;
                count = Py_NewRef(count == NULL ? g_zero : count);
            }
            else {
                count = PyObject_CallMethodObjArgs(open_orders, s_get, strategy, g_zero, NULL);
                if (count == NULL) goto done;
            }
            if ((c = CMP(count, most, Py_GE)) < 0) goto done;
            if (c) { r = NO; goto done; }
        }
    }

    /* 8. the order rate */
    rates = PyTuple_GET_ITEM(plan, P_RATES);
    if (!PyTuple_Check(rates)) { r = ASK_PYTHON; goto done; }
    if ((c = count_rate(clock, rates)) != YES) { r = c; goto done; }

    /* 9. accepted, counted */
    if ((t = PyObject_GetAttr(gate, s_accepted)) == NULL) goto done;
    {
        PyObject *more = PyNumber_Add(t, g_one);
        if (more == NULL) goto done;
        c = PyObject_SetAttr(gate, s_accepted, more);
        Py_DECREF(more);
        if (c < 0) goto done;
    }
    r = YES;
done:
    Py_XDECREF(t);
    Py_XDECREF(book);
    Py_XDECREF(rev);
    Py_XDECREF(clock);
    Py_XDECREF(plan);
    Py_XDECREF(delta);
    Py_XDECREF(mid);
    Py_XDECREF(band_mid);
    Py_XDECREF(lo);
    Py_XDECREF(hi);
    Py_XDECREF(held);
    Py_XDECREF(pos);
    Py_XDECREF(own);
    Py_XDECREF(count);
    return r;
}

static PyObject *
accept_place(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9) {
        PyErr_Format(PyExc_TypeError,
                     "accept_place takes the gate and 8 arguments (%zd given)", nargs);
        return NULL;
    }
    if (g_active == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_riskfast.bind was not called");
        return NULL;
    }
    switch (decide(args)) {
    case YES:
        Py_RETURN_TRUE;
    case NO:
        Py_RETURN_FALSE;
    case ASK_PYTHON: {
        /* gate._accept_values(strategy, inst, side, qty, price, mids, open_orders, total) */
        PyObject *reduces_ = PyObject_VectorcallMethod(s_accept_values, args, 9, NULL);
        if (reduces_ == NULL) return NULL;
        int decided = reduces_ != Py_None;
        Py_DECREF(reduces_);
        return PyBool_FromLong(decided);
    }
    default:
        return NULL;
    }
}

static PyObject *
bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyType_Check(args[1]) || !PyFloat_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "bind(active, Decimal, window_s: float)");
        return NULL;
    }
    Py_XSETREF(g_active, Py_NewRef(args[0]));
    Py_XSETREF(g_decimal, Py_NewRef(args[1]));
    Py_XSETREF(g_window_s, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"accept_place", (PyCFunction)(void (*)(void))accept_place, METH_FASTCALL,
     "accept_place(gate, strategy, inst, side, qty, price, mids, open_orders, open_total)\n"
     "--\n\nRiskGate._accept_place in C (see the module's C source)."},
    {"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL,
     "bind(active, decimal_type, window_s)\n--\n\n"
     "The objects the rules compare with: TradingState.ACTIVE, Decimal, RATE_WINDOW_S."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_riskfast",
    "RiskGate.accept_place's common case in C (bot/execution/_riskfast.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

static int
intern(PyObject **slot, const char *name)
{
    *slot = PyUnicode_InternFromString(name);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC
PyInit__riskfast(void)
{
    if (intern(&s_fast_path, "_fast_path") || intern(&s_evaluated, "_evaluated")
        || intern(&s_positions, "_positions") || intern(&s_revision, "revision")
        || intern(&s_clock, "_clock") || intern(&s_time_ns, "time_ns")
        || intern(&s_evaluated_until_ns, "_evaluated_until_ns") || intern(&s_state, "_state")
        || intern(&s_strategy_state, "_strategy_state") || intern(&s_last_plan, "_last_plan")
        || intern(&s_symbol, "symbol") || intern(&s_get, "get") || intern(&s_mid, "mid")
        || intern(&s_lo, "lo") || intern(&s_hi, "hi") || intern(&s_update, "update")
        || intern(&s_monotonic, "monotonic") || intern(&s_popleft, "popleft")
        || intern(&s_append, "append") || intern(&s_accepted, "_accepted")
        || intern(&s_accept_values, "_accept_values"))
        return NULL;
    if ((g_zero = PyLong_FromLong(0)) == NULL || (g_one = PyLong_FromLong(1)) == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
