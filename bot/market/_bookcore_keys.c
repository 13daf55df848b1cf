/*
 * bot.market._bookcore: the keys the hot path reads from decoded JSON objects, in three
 * sets: a message's (fused_update), its data item's (fused_update) and a level's (a level
 * read by apply_update and fused_update). Their types, the enums that name each key and
 * read_keys (inline: it runs once per level) are in _bookcore.h; PyInit__bookcore interns
 * the names.
 *
 * orjson hands out one str object per key name, frame after frame (its key cache), and a
 * dict lookup with that very object ends at a pointer comparison, while an equal but
 * distinct str costs a string comparison. So each Key holds the str object last seen in
 * a message: a set learns them with one pass over a dict's entries on its first use and
 * again every LEARN_EVERY uses (in case orjson's cache makes new ones). A lookup with an
 * object that is no longer orjson's is slower, never wrong.
 */

#include "_bookcore.h"

Key envelope_keys[] = {{"channel", NULL}, {"type", NULL}, {"data", NULL}};
Key item_keys[] = {
    {"checksum", NULL}, {"timestamp", NULL}, {"bids", NULL}, {"asks", NULL}, {"symbol", NULL}};
Key level_keys[] = {{"price", NULL}, {"qty", NULL}};
KeySet envelope_set = {envelope_keys, 3, 0};
KeySet item_set = {item_keys, 5, 0};
KeySet level_set = {level_keys, 2, 0};

/* Remember the dict's own key objects for the set's names. No Python code runs. */
void
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
