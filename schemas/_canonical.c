/* One pass over a record's JSON bytes: bounds, reading, type checks, normalisation and the
 * canonical bytes, for the records producers send every day (FORMATS.md §2–§3).
 *
 * ``canonical(raw, usage, want)`` returns ``(body, usage, organisation, event_type, alert)``
 * or None; ``canonical_lines(body, usage, want)`` reads every line of an NDJSON body so, in
 * one call, or returns None when one of them is not this pass's.
 * None means "not mine to judge": the record holds something this pass does not take (an
 * escape in a string, a number orjson would write differently, a duplicate key, a timestamp
 * with an offset, any error, ...) and schemas.parse, the reference, reads it instead, giving
 * the same bytes or the error. So every rule here must be at least as strict as the
 * reference's, and for what it takes, write exactly what the reference writes (compact JSON as
 * orjson writes it, keys in the producer's order, converted values in place, appended ones at
 * the end of their object). tests/schemas/test_canonical.py holds the two to the same bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_INTEGER_DIGITS 100
#define MAX_KEYS 64

enum { OK = 0, DECLINE = 1, NOMEM = -1 };

enum {
    T_ANY,        /* any JSON value, kept */
    T_DROP,       /* any JSON value, left out (a usage record's ``keen``) */
    T_DECLINE,    /* a key that makes the record not this pass's (``event_type`` in usage) */
    T_ID64,       /* an integer in 64 bits */
    T_INT,        /* an integer */
    T_INT_NULL,   /* an integer or null */
    T_STR_NULL,   /* a string or null */
    T_DIGITS,     /* a string, a non-negative integer (written as its digits) or null */
    T_NUMBER,     /* an integer, a finite number or null */
    T_STAMP,      /* a timestamp */
    T_STAMP_NULL, /* a timestamp or null */
    T_ALERT,      /* true, false, 0, 1 (written as false, true) or null */
    T_OBJ,        /* an object of ``inner`` */
    T_OBJ_NULL,   /* an object of ``inner`` or null */
    T_NAME,       /* ``name`` of {id, name}: becomes ``description`` at the end, unless given */
};

enum { R_NONE, R_ORGANISATION, R_EVENT_TYPE, R_ALERT, R_MAIN_STAMP };

typedef struct Struct Struct;

typedef struct {
    const char *name;
    Py_ssize_t length;
    int type;
    const Struct *inner;
    int route;
} Field;

struct Struct {
    const Field *fields;
    int count;
    const char *const *appended; /* fields written as null at the end when absent */
    int description;             /* index of ``description`` when ``name`` is renamed, or -1 */
};

#define FIELDS(array) array, (int)(sizeof(array) / sizeof(array[0]))
#define NAME(text) text, (Py_ssize_t)(sizeof(text) - 1)

static const Field identified_fields[] = {{NAME("id"), T_INT_NULL, NULL, 0}};
static const Struct Identified = {FIELDS(identified_fields), NULL, -1};

static const Field described_fields[] = {
    {NAME("id"), T_INT, NULL, 0},
    {NAME("description"), T_STR_NULL, NULL, 0},
};
static const Struct Described = {FIELDS(described_fields), NULL, -1};

static const Field event_type_fields[] = {
    {NAME("id"), T_ID64, NULL, R_EVENT_TYPE},
    {NAME("description"), T_STR_NULL, NULL, 0},
};
static const Struct EventType = {FIELDS(event_type_fields), NULL, -1};

static const Field renamed_fields[] = {
    {NAME("id"), T_INT, NULL, 0},
    {NAME("description"), T_STR_NULL, NULL, 0},
    {NAME("name"), T_NAME, NULL, 0},
};
static const Struct Renamed = {FIELDS(renamed_fields), NULL, 1};

static const Field organisation_fields[] = {{NAME("id"), T_ID64, NULL, R_ORGANISATION}};
static const Struct Organisation = {FIELDS(organisation_fields), NULL, -1};

static const Field sim_fields[] = {
    {NAME("id"), T_INT_NULL, NULL, 0},
    {NAME("iccid"), T_DIGITS, NULL, 0},
    {NAME("msisdn"), T_DIGITS, NULL, 0},
    {NAME("production_date"), T_STAMP_NULL, NULL, 0},
};
static const Struct Sim = {FIELDS(sim_fields), NULL, -1};

static const Field event_endpoint_fields[] = {
    {NAME("id"), T_INT_NULL, NULL, 0},
    {NAME("imei"), T_DIGITS, NULL, 0},
};
static const Struct EventEndpoint = {FIELDS(event_endpoint_fields), NULL, -1};

static const Field imsi_fields[] = {
    {NAME("id"), T_INT_NULL, NULL, 0},
    {NAME("imsi"), T_DIGITS, NULL, 0},
    {NAME("import_date"), T_STAMP_NULL, NULL, 0},
};
static const Struct Imsi = {FIELDS(imsi_fields), NULL, -1};

static const char *const event_appended[] = {"endpoint", "sim", "imsi", "user", "detail", NULL};
static const Field event_fields[] = {
    {NAME("id"), T_ID64, NULL, 0},
    {NAME("timestamp"), T_STAMP, NULL, R_MAIN_STAMP},
    {NAME("event_type"), T_OBJ, &EventType, 0},
    {NAME("event_severity"), T_OBJ_NULL, &Described, 0},
    {NAME("event_source"), T_OBJ_NULL, &Renamed, 0},
    {NAME("organisation"), T_OBJ, &Organisation, 0},
    {NAME("alert"), T_ALERT, NULL, R_ALERT},
    {NAME("description"), T_STR_NULL, NULL, 0},
    {NAME("endpoint"), T_OBJ_NULL, &EventEndpoint, 0},
    {NAME("sim"), T_OBJ_NULL, &Sim, 0},
    {NAME("imsi"), T_OBJ_NULL, &Imsi, 0},
    {NAME("user"), T_OBJ_NULL, &Identified, 0},
    {NAME("detail"), T_ANY, NULL, 0},
};
static const Struct Event = {FIELDS(event_fields), event_appended, -1};

static const Field volume_fields[] = {
    {NAME("total"), T_NUMBER, NULL, 0},
    {NAME("rx"), T_NUMBER, NULL, 0},
    {NAME("tx"), T_NUMBER, NULL, 0},
};
static const Struct Volume = {FIELDS(volume_fields), NULL, -1};

static const Field operator_fields[] = {
    {NAME("id"), T_INT_NULL, NULL, 0},
    {NAME("country"), T_OBJ_NULL, &Identified, 0},
};
static const Struct Operator = {FIELDS(operator_fields), NULL, -1};

static const Field tariff_fields[] = {
    {NAME("id"), T_INT_NULL, NULL, 0},
    {NAME("ratezone"), T_OBJ_NULL, &Identified, 0},
};
static const Struct Tariff = {FIELDS(tariff_fields), NULL, -1};

static const char *const balance_appended[] = {"expiry_date", NULL};
static const Field balance_fields[] = {
    {NAME("amount"), T_NUMBER, NULL, 0},
    {NAME("last_updated"), T_STAMP_NULL, NULL, 0},
    {NAME("expiry_date"), T_STAMP_NULL, NULL, 0},
    {NAME("currency"), T_OBJ_NULL, &Identified, 0},
};
static const Struct Balance = {FIELDS(balance_fields), balance_appended, -1};

static const char *const usage_endpoint_appended[] = {"balance", NULL};
static const Field usage_endpoint_fields[] = {
    {NAME("id"), T_INT_NULL, NULL, 0},
    {NAME("imei"), T_DIGITS, NULL, 0},
    {NAME("balance"), T_OBJ_NULL, &Balance, 0},
};
static const Struct UsageEndpoint = {FIELDS(usage_endpoint_fields), usage_endpoint_appended, -1};

static const char *const usage_appended[] = {"endpoint", "sim", "imsi", "imsi_id", NULL};
static const Field usage_fields[] = {
    {NAME("id"), T_ID64, NULL, 0},
    {NAME("start_timestamp"), T_STAMP, NULL, R_MAIN_STAMP},
    {NAME("end_timestamp"), T_STAMP, NULL, 0},
    {NAME("cost"), T_NUMBER, NULL, 0},
    {NAME("volume"), T_OBJ, &Volume, 0},
    {NAME("traffic_type"), T_OBJ, &Renamed, 0},
    {NAME("organisation"), T_OBJ, &Organisation, 0},
    {NAME("currency"), T_OBJ_NULL, &Identified, 0},
    {NAME("operator"), T_OBJ_NULL, &Operator, 0},
    {NAME("tariff"), T_OBJ_NULL, &Tariff, 0},
    {NAME("endpoint"), T_OBJ_NULL, &UsageEndpoint, 0},
    {NAME("sim"), T_OBJ_NULL, &Sim, 0},
    {NAME("imsi"), T_DIGITS, NULL, 0},
    {NAME("imsi_id"), T_INT_NULL, NULL, 0},
    {NAME("keen"), T_DROP, NULL, 0},
    {NAME("event_type"), T_DECLINE, NULL, 0},
};
static const Struct Usage = {FIELDS(usage_fields), usage_appended, -1};

/* Fields a struct requires: present and not null (msgspec's ``required``, and null is no
 * value of their types). */
static int
required(int type)
{
    return type == T_ID64 || type == T_INT || type == T_STAMP || type == T_OBJ;
}

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    char *out;
    Py_ssize_t len;
    Py_ssize_t cap;
    long long id;
    long long organisation;
    long long event_type;
    int alert;
    int legacy; /* the main timestamp is written the old/migrated way */
    int wide;   /* an integer beyond 64 bits is written */
    int odd;    /* a float is written where orjson's form and Python's differ */
} Scan;

static char *buffer;
static Py_ssize_t buffer_cap;
#define KEPT_BUFFER (1 << 20) /* a larger one, for a large record, is freed after it */

/* ``made`` (a call's result, or NULL), once the output buffer is back to its kept size. */
static PyObject *
done(PyObject *made)
{
    if (buffer_cap > KEPT_BUFFER) {
        PyMem_Free(buffer);
        buffer = NULL;
        buffer_cap = 0;
    }
    return made;
}

static int
grow(Scan *s, Py_ssize_t more)
{
    Py_ssize_t cap = (s->len + more) * 2;
    char *grown = PyMem_Realloc(s->out, cap);
    if (grown == NULL) {
        return NOMEM;
    }
    s->out = buffer = grown;
    s->cap = buffer_cap = cap;
    return OK;
}

static inline int
reserve(Scan *s, Py_ssize_t more)
{
    return s->len + more <= s->cap ? OK : grow(s, more);
}

static inline int
put(Scan *s, const void *bytes, Py_ssize_t n)
{
    if (reserve(s, n) != OK) {
        return NOMEM;
    }
    memcpy(s->out + s->len, bytes, n);
    s->len += n;
    return OK;
}

/* A scan of ``size`` bytes at ``p`` into the output buffer, with room for about their size.
 * The byte after them must be no plain one (see PLAIN): a bytes object's closing NUL, or the
 * CR or LF after a line of a body. */
static int
scan_at(Scan *s, const unsigned char *p, Py_ssize_t size)
{
    *s = (Scan){.p = p, .end = p + size, .out = buffer, .cap = buffer_cap, .alert = -1};
    return reserve(s, size + 256);
}

/* A scan of ``bytes``. */
static int
scan_of(Scan *s, PyObject *bytes)
{
    return scan_at(s, (const unsigned char *)PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
}

#define PUT(s, literal) put(s, literal, sizeof(literal) - 1)
#define TRY(call)             \
    do {                      \
        int status_ = (call); \
        if (status_ != OK) {  \
            return status_;   \
        }                     \
    } while (0)

static void
skip_space(Scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

static int
at(Scan *s, unsigned char c)
{
    return s->p < s->end && *s->p == c;
}

/* The length of the UTF-8 sequence at ``p`` (strict, as Python decodes: no overlong forms,
 * no surrogates, nothing beyond U+10FFFF), or 0. */
static int
utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    int n;
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            low = 0xA0;
        }
        else if (c == 0xED) {
            high = 0x9F;
        }
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            low = 0x90;
        }
        else if (c == 0xF4) {
            high = 0x8F;
        }
    }
    else {
        return 0;
    }
    if (end - p < n || p[1] < low || p[1] > high) {
        return 0;
    }
    for (int i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

/* Bytes a string holds as they are: ASCII from the space on, but the quote and the backslash
 * (set up with the module). */
static unsigned char PLAIN[256];

/* A string without escapes or control characters, in valid UTF-8: its bytes, quotes
 * included, are what orjson writes for it. ``s->p`` is at the opening quote. */
static int
string_span(Scan *s, const unsigned char **start, Py_ssize_t *length)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    for (;;) {
        while (PLAIN[*p]) { /* stops at the byte after the span (see scan_at) */
            p++;
        }
        if (p >= end || *p < 0x20 || *p == '\\') {
            return DECLINE;
        }
        if (*p == '"') {
            break;
        }
        int n = utf8_length(p, end);
        if (n == 0) {
            return DECLINE;
        }
        p += n;
    }
    *start = s->p;
    *length = p + 1 - s->p;
    s->p = p + 1;
    return OK;
}

static int
hex_value(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 4) {
        return -1;
    }
    int value = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0) {
            return -1;
        }
        value = value * 16 + v;
    }
    return value;
}

/* A character as orjson writes it in a string: ``"``, ``\`` and controls escaped (the short
 * forms where JSON has one, ``\u00xx`` otherwise), everything else as UTF-8. */
static int
put_char(Scan *s, long c)
{
    static const char hex[] = "0123456789abcdef";
    char text[6];
    int n;
    if (c == '"' || c == '\\') {
        text[0] = '\\';
        text[1] = (char)c;
        n = 2;
    }
    else if (c < 0x20) {
        const char *shorts = strchr("\bb\tt\nn\ff\rr", (int)c);
        if (c != 0 && shorts != NULL) {
            text[0] = '\\';
            text[1] = shorts[1];
            n = 2;
        }
        else {
            memcpy(text, "\\u00", 4);
            text[4] = hex[c >> 4];
            text[5] = hex[c & 15];
            n = 6;
        }
    }
    else if (c < 0x80) {
        text[0] = (char)c;
        n = 1;
    }
    else if (c < 0x800) {
        text[0] = (char)(0xC0 | (c >> 6));
        text[1] = (char)(0x80 | (c & 63));
        n = 2;
    }
    else if (c < 0x10000) {
        text[0] = (char)(0xE0 | (c >> 12));
        text[1] = (char)(0x80 | ((c >> 6) & 63));
        text[2] = (char)(0x80 | (c & 63));
        n = 3;
    }
    else {
        text[0] = (char)(0xF0 | (c >> 18));
        text[1] = (char)(0x80 | ((c >> 12) & 63));
        text[2] = (char)(0x80 | ((c >> 6) & 63));
        text[3] = (char)(0x80 | (c & 63));
        n = 4;
    }
    return put(s, text, n);
}

/* The escape at ``*at`` (its backslash), read and written as orjson writes the character;
 * a lone surrogate is declined (the reference refuses it). */
static int
escape(Scan *s, const unsigned char **at)
{
    const unsigned char *p = *at + 1, *end = s->end;
    if (p >= end) {
        return DECLINE;
    }
    static const char plain[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    const char *found = *p != 'u' && *p ? strchr(plain, *p) : NULL;
    if (found != NULL && (found - plain) % 2 == 0) {
        *at = p + 1;
        return put_char(s, (unsigned char)found[1]);
    }
    long c = *p == 'u' ? hex_value(p + 1, end) : -1;
    if (c < 0) {
        return DECLINE;
    }
    p += 5;
    if (c >= 0xD800 && c <= 0xDBFF) {
        long low = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex_value(p + 2, end) : -1;
        if (low < 0xDC00 || low > 0xDFFF) {
            return DECLINE;
        }
        c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
        p += 6;
    }
    else if (c >= 0xDC00 && c <= 0xDFFF) {
        return DECLINE;
    }
    *at = p;
    return put_char(s, c);
}

/* The string at ``s->p`` (its opening quote), written as orjson writes it. The byte after
 * the span scanned is no plain byte (see scan_at), so runs stop there. */
static int
copy_string(Scan *s)
{
    const unsigned char *run = s->p, *p = s->p + 1, *end = s->end;
    for (;;) {
        while (PLAIN[*p]) {
            p++;
        }
        if (p >= end) {
            return DECLINE;
        }
        if (*p == '"') {
            s->p = p + 1;
            return put(s, run, p + 1 - run);
        }
        if (*p >= 0x80) {
            int n = utf8_length(p, end);
            if (n == 0) {
                return DECLINE;
            }
            p += n;
            continue;
        }
        if (*p != '\\') {
            return DECLINE; /* a control character */
        }
        TRY(put(s, run, p - run));
        TRY(escape(s, &p));
        run = p;
    }
}

static int
digits(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *q = p;
    while (q < end && *q >= '0' && *q <= '9') {
        q++;
    }
    return (int)(q - p);
}

/* A JSON number's token: ``-? int (. fraction)? (e exponent)?``. */
typedef struct {
    const unsigned char *start;
    Py_ssize_t length;
    int whole;    /* digits before the point */
    int fraction; /* digits after it (0: none) */
    int exponent; /* whether it has one */
} Number;

static int
scan_number(Scan *s, Number *n)
{
    const unsigned char *p = s->p, *end = s->end;
    n->start = p;
    p += at(s, '-');
    n->whole = digits(p, end);
    if (n->whole == 0 || (n->whole > 1 && *p == '0')) {
        return DECLINE;
    }
    p += n->whole;
    n->fraction = 0;
    if (p < end && *p == '.') {
        n->fraction = digits(p + 1, end);
        if (n->fraction == 0) {
            return DECLINE;
        }
        p += 1 + n->fraction;
    }
    n->exponent = p < end && (*p == 'e' || *p == 'E');
    if (n->exponent) {
        p += 1 + (p + 1 < end && (p[1] == '+' || p[1] == '-'));
        int count = digits(p, end);
        if (count == 0) {
            return DECLINE;
        }
        p += count;
    }
    n->length = p - n->start;
    s->p = p;
    return OK;
}

static int
is_integer(const Number *n)
{
    return n->fraction == 0 && !n->exponent;
}

/* Whether the digits of ``a`` (as many as ``limit``) are beyond ``limit``. */
static int
beyond(const unsigned char *a, int count, const char *limit)
{
    int size = (int)strlen(limit);
    return count > size || (count == size && memcmp(a, limit, size) > 0);
}

/* An integer literal, written as it is: at most ``MAX_INTEGER_DIGITS`` digits, not ``-0``.
 * One beyond 64 bits makes the reference write the record with the standard library
 * (``s->wide``). */
static int
put_integer(Scan *s, const Number *n)
{
    int negative = n->start[0] == '-';
    const unsigned char *first = n->start + negative;
    if (n->whole > MAX_INTEGER_DIGITS || (negative && *first == '0')) {
        return DECLINE;
    }
    if (beyond(first, n->whole, negative ? "9223372036854775808" : "18446744073709551615")) {
        s->wide = 1;
    }
    return put(s, n->start, n->length);
}

/* Whether a number written with a fraction and no exponent is already its shortest form as
 * both orjson and Python write it: at most 15 significant digits (so no shorter form reads
 * back the same), no trailing zero, and between 1e-4 and 1e16 (written without exponent). */
static int
already_shortest(const Number *n)
{
    if (n->exponent) {
        return 0;
    }
    const unsigned char *int_part = n->start + (n->start[0] == '-');
    const unsigned char *frac = int_part + n->whole + 1;
    int zero_int = n->whole == 1 && int_part[0] == '0';
    if (n->fraction == 1 && frac[0] == '0') {
        return zero_int || n->whole <= 15;
    }
    if (frac[n->fraction - 1] == '0') {
        return 0;
    }
    if (!zero_int) {
        return n->whole + n->fraction <= 15;
    }
    int zeros = 0;
    while (frac[zeros] == '0') {
        zeros++;
    }
    return zeros <= 3 && n->fraction - zeros <= 15;
}

/* ``sign`` ``significant`` × 10^``e`` (one digit before the point) as orjson writes a float:
 * without exponent from 1e-5 up to 1e16 (``.0`` for a whole number), otherwise as
 * ``d.ddde±x``. */
static void
orjson_float(char *out, int sign, const char *significant, int count, int e)
{
    char *o = out;
    if (sign) {
        *o++ = '-';
    }
    if (e < -5 || e >= 16) {
        *o++ = significant[0];
        if (count > 1) {
            *o++ = '.';
            memcpy(o, significant + 1, count - 1);
            o += count - 1;
        }
        sprintf(o, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (e < 0) {
        memcpy(o, "0.", 2);
        o += 2;
        memset(o, '0', -e - 1);
        o += -e - 1;
        memcpy(o, significant, count);
        o += count;
    }
    else {
        for (int i = 0; i <= e; i++) {
            *o++ = i < count ? significant[i] : '0';
        }
        *o++ = '.';
        if (count > e + 1) {
            memcpy(o, significant + e + 1, count - e - 1);
            o += count - e - 1;
        }
        else {
            *o++ = '0';
        }
    }
    *o = '\0';
}

/* A number in any other form: read as a double and written as orjson writes it, from
 * Python's shortest digits. Where that differs from what Python writes, the record cannot
 * also hold an integer beyond 64 bits (``s->odd``: the reference would write it with the
 * standard library, in Python's form). */
static int
put_float(Scan *s, const Number *n)
{
    char text[512], *after;
    if (n->length >= (Py_ssize_t)sizeof(text)) {
        return DECLINE;
    }
    memcpy(text, n->start, n->length);
    text[n->length] = '\0';
    double value = PyOS_string_to_double(text, &after, NULL);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return DECLINE;
    }
    if (after != text + n->length || !isfinite(value)) {
        return DECLINE;
    }
    char *shortest = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (shortest == NULL) {
        return NOMEM;
    }
    char significant[32], written[64];
    int count = 0, before = -1, sign = shortest[0] == '-', e = 0;
    const char *q = shortest + sign;
    for (; *q && *q != 'e' && count < 30; q++) {
        if (*q == '.') {
            before = count;
        }
        else {
            significant[count++] = *q;
        }
    }
    if (*q == 'e') {
        e = atoi(q + 1);
    }
    e += (before < 0 ? count : before) - 1;
    int lead = 0;
    while (lead < count - 1 && significant[lead] == '0') {
        lead++;
    }
    e -= lead;
    while (count > lead + 1 && significant[count - 1] == '0') {
        count--;
    }
    if (value == 0) {
        strcpy(written, shortest);
    }
    else {
        orjson_float(written, sign, significant + lead, count - lead, e);
    }
    s->odd |= strcmp(written, shortest) != 0;
    PyMem_Free(shortest);
    return put(s, written, (Py_ssize_t)strlen(written));
}

static int
put_number(Scan *s, const Number *n)
{
    if (is_integer(n)) {
        return put_integer(s, n);
    }
    return already_shortest(n) ? put(s, n->start, n->length) : put_float(s, n);
}

/* An integer at ``s->p``: its token (not written). */
static int
integer(Scan *s, Number *n)
{
    TRY(scan_number(s, n));
    return is_integer(n) ? OK : DECLINE;
}

static int
literal(Scan *s, const char *word, Py_ssize_t n)
{
    if (s->end - s->p < n || memcmp(s->p, word, n) != 0) {
        return DECLINE;
    }
    s->p += n;
    return put(s, word, n);
}

static int any_value(Scan *s, int depth);

/* The unknown keys of one object so far (where they are in the output), to tell a duplicate:
 * the reference keeps the last value in the first one's place, which is not this pass's to
 * write. A known field seen twice is told by the struct's ``seen`` bits. */
typedef struct {
    Py_ssize_t at[MAX_KEYS];
    Py_ssize_t length[MAX_KEYS];
    int count;
} Keys;

static int
new_key(Scan *s, Keys *keys, Py_ssize_t at, Py_ssize_t length)
{
    if (keys->count == MAX_KEYS) {
        return DECLINE;
    }
    for (int i = 0; i < keys->count; i++) {
        if (keys->length[i] == length && memcmp(s->out + keys->at[i], s->out + at, length) == 0) {
            return DECLINE;
        }
    }
    keys->at[keys->count] = at;
    keys->length[keys->count] = length;
    keys->count++;
    return OK;
}

/* Keys of one object as they are in the input (none with an escape: ``string_span``), to tell
 * a duplicate where the output does not keep them all (renderings, CSV). */
typedef struct {
    const unsigned char *start[MAX_KEYS];
    Py_ssize_t length[MAX_KEYS];
    int count;
} Spans;

static int
new_span(Spans *spans, const unsigned char *start, Py_ssize_t length)
{
    if (spans->count == MAX_KEYS) {
        return DECLINE;
    }
    for (int i = 0; i < spans->count; i++) {
        if (spans->length[i] == length && memcmp(spans->start[i], start, length) == 0) {
            return DECLINE;
        }
    }
    spans->start[spans->count] = start;
    spans->length[spans->count] = length;
    spans->count++;
    return OK;
}

/* Past the colon after a key. */
static int
colon(Scan *s)
{
    skip_space(s);
    if (!at(s, ':')) {
        return DECLINE;
    }
    s->p++;
    skip_space(s);
    return OK;
}

/* The key at ``s->p`` and its colon, written after a comma when ``members`` were written
 * before it; ``*at`` and ``*length`` tell where the key (quotes included) is in the output. */
static int
member_key(Scan *s, int members, Py_ssize_t *at_, Py_ssize_t *length)
{
    if (!at(s, '"')) {
        return DECLINE;
    }
    if (members) {
        TRY(PUT(s, ","));
    }
    *at_ = s->len;
    TRY(copy_string(s));
    *length = s->len - *at_;
    TRY(colon(s));
    return PUT(s, ":");
}

/* A key without escapes at ``s->p``, where it is in the input, and its colon (not written):
 * a duplicate of one in ``keys`` is declined. */
static int
plain_key(Scan *s, Spans *keys, const unsigned char **start, Py_ssize_t *length)
{
    if (!at(s, '"')) {
        return DECLINE;
    }
    TRY(string_span(s, start, length));
    TRY(new_span(keys, *start, *length));
    return colon(s);
}

/* After a member: ``,`` (1) or the object's ``}`` (0). */
static int
next_member(Scan *s, int *more)
{
    skip_space(s);
    if (at(s, ',')) {
        s->p++;
        skip_space(s);
        *more = 1;
        return OK;
    }
    if (at(s, '}')) {
        s->p++;
        *more = 0;
        return OK;
    }
    return DECLINE;
}

static int
any_object(Scan *s, int depth)
{
    Keys keys;
    keys.count = 0;
    s->p++;
    TRY(PUT(s, "{"));
    skip_space(s);
    if (at(s, '}')) {
        s->p++;
        return PUT(s, "}");
    }
    for (int more = 1; more;) {
        Py_ssize_t key, length;
        TRY(member_key(s, keys.count, &key, &length));
        TRY(new_key(s, &keys, key, length));
        TRY(any_value(s, depth));
        TRY(next_member(s, &more));
    }
    return PUT(s, "}");
}

static int
any_array(Scan *s, int depth)
{
    s->p++;
    TRY(PUT(s, "["));
    skip_space(s);
    if (at(s, ']')) {
        s->p++;
        return PUT(s, "]");
    }
    for (int first = 1;; first = 0) {
        if (!first) {
            TRY(PUT(s, ","));
        }
        TRY(any_value(s, depth));
        skip_space(s);
        if (at(s, ']')) {
            s->p++;
            return PUT(s, "]");
        }
        if (!at(s, ',')) {
            return DECLINE;
        }
        s->p++;
        skip_space(s);
    }
}

/* Any JSON value at ``s->p``, inside a container at ``depth``. */
static int
any_value(Scan *s, int depth)
{
    if (s->p >= s->end) {
        return DECLINE;
    }
    Number n;
    switch (*s->p) {
    case '{':
        return depth >= MAX_DEPTH ? DECLINE : any_object(s, depth + 1);
    case '[':
        return depth >= MAX_DEPTH ? DECLINE : any_array(s, depth + 1);
    case '"':
        return copy_string(s);
    case 't':
        return literal(s, "true", 4);
    case 'f':
        return literal(s, "false", 5);
    case 'n':
        return literal(s, "null", 4);
    default:
        TRY(scan_number(s, &n));
        return put_number(s, &n);
    }
}

static int
is_null(Scan *s)
{
    return s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0;
}

/* An integer in 64 bits, read. */
static int
id64(Scan *s, long long *value)
{
    Number n;
    TRY(integer(s, &n));
    const unsigned char *p = n.start;
    int negative = *p == '-';
    p += negative;
    unsigned long long magnitude = 0;
    if (n.whole > 19 || (negative && *p == '0')) {
        return DECLINE;
    }
    for (; p < n.start + n.length; p++) {
        unsigned d = *p - '0';
        if (magnitude > (ULLONG_MAX - d) / 10) {
            return DECLINE;
        }
        magnitude = magnitude * 10 + d;
    }
    if (magnitude > (unsigned long long)LLONG_MAX + (negative ? 1 : 0)) {
        return DECLINE;
    }
    *value = negative ? (long long)(0 - magnitude) : (long long)magnitude;
    return put(s, n.start, n.length);
}

static int
two(const unsigned char *p)
{
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* ``YYYY-MM-DD?HH:MM:SS`` with ``?`` as ``sep``: every digit a digit, a real calendar day. */
static int
valid_moment(const unsigned char *t, unsigned char sep)
{
    static const char layout[] = "dddd-dd-dd?dd:dd:dd";
    for (int i = 0; i < 19; i++) {
        unsigned char want = layout[i] == '?' ? sep : (unsigned char)layout[i];
        if (layout[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != want) {
            return 0;
        }
    }
    int year = two(t) * 100 + two(t + 2), month = two(t + 5), day = two(t + 8);
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year == 0 || month < 1 || month > 12 || day < 1) {
        return 0;
    }
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    int last = days[month - 1] + (month == 2 && leap);
    return day <= last && two(t + 11) <= 23 && two(t + 14) <= 59 && two(t + 17) <= 59;
}

/* A timestamp in a layout written without a second look: canonical (``…T…Z``, with or
 * without milliseconds), kept; legacy (``… …``), written canonical. */
static int
stamp(Scan *s, int *legacy)
{
    const unsigned char *start;
    Py_ssize_t length;
    if (!at(s, '"')) {
        return DECLINE;
    }
    TRY(string_span(s, &start, &length));
    const unsigned char *t = start + 1;
    Py_ssize_t n = length - 2;
    if (n == 19 && valid_moment(t, ' ')) {
        *legacy = 1;
        TRY(reserve(s, 22));
        char *o = s->out + s->len;
        o[0] = '"';
        memcpy(o + 1, t, 10);
        o[11] = 'T';
        memcpy(o + 12, t + 11, 8);
        memcpy(o + 20, "Z\"", 2);
        s->len += 22;
        return OK;
    }
    int millis = n == 24 && t[19] == '.' && digits(t + 20, t + 23) == 3;
    if ((n == 20 || millis) && t[n - 1] == 'Z' && valid_moment(t, 'T')) {
        *legacy = 0;
        return put(s, start, length);
    }
    return DECLINE;
}

static int struct_object(Scan *s, const Struct *type, int depth);

/* A known field's value: checked against its type and written canonical. */
static int
typed_value(Scan *s, const Field *field, int depth)
{
    Number n;
    int legacy;
    int nullable = field->type == T_INT_NULL || field->type == T_STR_NULL ||
                   field->type == T_DIGITS || field->type == T_NUMBER ||
                   field->type == T_STAMP_NULL || field->type == T_ALERT ||
                   field->type == T_OBJ_NULL;
    if (nullable && is_null(s)) {
        return literal(s, "null", 4);
    }
    switch (field->type) {
    case T_ID64:
        return id64(s, field->route == R_ORGANISATION ? &s->organisation
                       : field->route == R_EVENT_TYPE ? &s->event_type
                                                      : &s->id);
    case T_INT:
    case T_INT_NULL:
        TRY(integer(s, &n));
        return put_integer(s, &n);
    case T_STR_NULL:
        return at(s, '"') ? copy_string(s) : DECLINE;
    case T_DIGITS:
        if (at(s, '"')) {
            return copy_string(s);
        }
        TRY(integer(s, &n));
        if (n.start[0] == '-' || n.whole > MAX_INTEGER_DIGITS) {
            return DECLINE;
        }
        TRY(PUT(s, "\""));
        TRY(put(s, n.start, n.length));
        return PUT(s, "\"");
    case T_NUMBER:
        TRY(scan_number(s, &n));
        return put_number(s, &n);
    case T_STAMP:
    case T_STAMP_NULL:
        TRY(stamp(s, &legacy));
        if (field->route == R_MAIN_STAMP) {
            s->legacy = legacy;
        }
        return OK;
    case T_ALERT:
        if (at(s, 't') || at(s, 'f')) {
            s->alert = at(s, 't');
            return literal(s, s->alert ? "true" : "false", s->alert ? 4 : 5);
        }
        TRY(integer(s, &n));
        if (n.length != 1 || (n.start[0] != '0' && n.start[0] != '1')) {
            return DECLINE;
        }
        s->alert = n.start[0] == '1';
        return s->alert ? PUT(s, "true") : PUT(s, "false");
    case T_OBJ:
    case T_OBJ_NULL:
        if (!at(s, '{') || depth >= MAX_DEPTH) {
            return DECLINE;
        }
        return struct_object(s, field->inner, depth + 1);
    case T_DECLINE:
        return DECLINE;
    default: /* T_ANY, T_DROP, T_NAME */
        return any_value(s, depth);
    }
}

static const Field *
find_field(const Struct *type, const unsigned char *key, Py_ssize_t length)
{
    for (int i = 0; i < type->count; i++) {
        const Field *field = &type->fields[i];
        if (field->length == length && memcmp(field->name, key, length) == 0) {
            return field;
        }
    }
    return NULL;
}

/* ``name`` of ``{id, name}``: where its value is in the input, and whether it is a string or
 * null, to be written as ``description`` at the end unless the object has one. */
typedef struct {
    const unsigned char *start; /* NULL: no name */
    int text;
} Name;

/* What the struct adds at the object's end: the renamed description, absent fields as null.
 * ``seen`` has a bit per field; ``members`` were written. */
static int
struct_end(Scan *s, const Struct *type, unsigned seen, const Name *name, int members)
{
    for (int i = 0; i < type->count; i++) {
        if (required(type->fields[i].type) && !(seen & (1u << i))) {
            return DECLINE;
        }
    }
    if (name->start != NULL && !(seen & (1u << type->description))) {
        if (!name->text) {
            return DECLINE;
        }
        TRY(members++ ? PUT(s, ",\"description\":") : PUT(s, "\"description\":"));
        const unsigned char *after = s->p;
        s->p = name->start;
        int status = at(s, '"') ? copy_string(s) : literal(s, "null", 4);
        s->p = after;
        TRY(status);
    }
    for (const char *const *appended = type->appended; appended && *appended; appended++) {
        Py_ssize_t length = (Py_ssize_t)strlen(*appended);
        const Field *field = find_field(type, (const unsigned char *)*appended, length);
        if (!(seen & (1u << (field - type->fields)))) {
            TRY(members++ ? PUT(s, ",\"") : PUT(s, "\""));
            TRY(put(s, *appended, length));
            TRY(PUT(s, "\":null"));
        }
    }
    return PUT(s, "}");
}

/* One member of a struct's object, written unless the struct leaves it out (then
 * ``*written`` is 0). */
static int
struct_member(Scan *s, const Struct *type, Keys *keys, int members, unsigned *seen, Name *name,
              int depth, int *written)
{
    Py_ssize_t before = s->len, key, length;
    TRY(member_key(s, members, &key, &length));
    const Field *field = find_field(type, (unsigned char *)s->out + key + 1, length - 2);
    *written = 1;
    if (field == NULL) {
        TRY(new_key(s, keys, key, length));
        return any_value(s, depth);
    }
    unsigned bit = 1u << (field - type->fields);
    if (*seen & bit) {
        return DECLINE;
    }
    *seen |= bit;
    if (field->type == T_NAME) {
        name->start = s->p;
        name->text = at(s, '"') || is_null(s);
    }
    TRY(typed_value(s, field, depth));
    if (field->type == T_DROP || field->type == T_NAME) {
        s->len = before;
        *written = 0;
    }
    return OK;
}

/* An object of ``type`` at ``s->p``, at ``depth``. */
static int
struct_object(Scan *s, const Struct *type, int depth)
{
    Keys keys;
    Name name = {NULL, 0};
    unsigned seen = 0;
    int members = 0;
    keys.count = 0;
    s->p++;
    TRY(PUT(s, "{"));
    skip_space(s);
    if (at(s, '}')) {
        s->p++;
        return struct_end(s, type, seen, &name, members);
    }
    for (int more = 1; more;) {
        int written;
        TRY(struct_member(s, type, &keys, members, &seen, &name, depth, &written));
        members += written;
        TRY(next_member(s, &more));
    }
    return struct_end(s, type, seen, &name, members);
}

static int
record(Scan *s, const Struct *type)
{
    skip_space(s);
    if (!at(s, '{')) {
        return DECLINE;
    }
    TRY(struct_object(s, type, 1));
    skip_space(s);
    return s->p == s->end ? OK : DECLINE;
}

/* The arguments of ``canonical`` and ``canonical_lines``: 0, or -1 with an exception set. */
static int
read_args(PyObject *const *args, Py_ssize_t nargs, const char *usage_text, int *usage,
          long *want)
{
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, usage_text);
        return -1;
    }
    *usage = PyObject_IsTrue(args[1]);
    if (*usage < 0) {
        return -1;
    }
    *want = PyLong_AsLong(args[2]);
    if (*want == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*want < 0 || *want > 2) {
        PyErr_SetString(PyExc_ValueError, "want: 0 (any version), 1 (new) or 2 (legacy)");
        return -1;
    }
    return 0;
}

/* One record of ``size`` bytes at ``p`` read into ``s``: OK, DECLINE or NOMEM. ``want``: 0
 * any version, 1 new, 2 old or migrated. */
static int
read_record(Scan *s, const unsigned char *p, Py_ssize_t size, int usage, long want)
{
    TRY(scan_at(s, p, size));
    TRY(record(s, usage ? &Usage : &Event));
    if ((s->wide && s->odd) || (want == 1 && s->legacy) || (want == 2 && !s->legacy)) {
        return DECLINE;
    }
    return OK;
}

static PyObject *
canonical(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    int usage;
    long want;
    if (read_args(args, nargs, "canonical(raw: bytes, usage: bool, want: int)", &usage, &want)) {
        return NULL;
    }
    Scan s;
    const char *raw = PyBytes_AS_STRING(args[0]);
    int status = read_record(&s, (const unsigned char *)raw, PyBytes_GET_SIZE(args[0]), usage,
                             want);
    if (status == NOMEM) {
        return done(PyErr_NoMemory());
    }
    if (status == DECLINE) {
        return done(Py_NewRef(Py_None));
    }
    return done(Py_BuildValue("(y#OLLi)", s.out, s.len, usage ? Py_True : Py_False,
                              s.organisation, s.event_type, s.alert));
}

/* Whether the ``size`` bytes at ``p`` are spaces and tabs only (a line of them is skipped). */
static int
blank(const unsigned char *p, Py_ssize_t size)
{
    for (Py_ssize_t i = 0; i < size; i++) {
        if (p[i] != ' ' && p[i] != '\t') {
            return 0;
        }
    }
    return 1;
}

/* The end of the line at ``p``: the first CR or LF from there (where bytes.splitlines ends a
 * line, as the reference reads a body), or ``end``. ``*cr`` and ``*lf`` are the next of each
 * seen so far, or NULL when none is left: each is searched for again only once passed, so
 * the body is read once for each. */
static const unsigned char *
line_end(const unsigned char *p, const unsigned char *end, const unsigned char **cr,
         const unsigned char **lf)
{
    if (*cr != NULL && *cr < p) {
        *cr = memchr(p, '\r', end - p);
    }
    if (*lf != NULL && *lf < p) {
        *lf = memchr(p, '\n', end - p);
    }
    const unsigned char *stop = end;
    if (*cr != NULL && *cr < stop) {
        stop = *cr;
    }
    if (*lf != NULL && *lf < stop) {
        stop = *lf;
    }
    return stop;
}

/* The routing facts of a body's records, in arrays that grow as records are read. */
typedef struct {
    long long *organisations;
    long long *event_types;
    signed char *alerts;
    Py_ssize_t count;
    Py_ssize_t cap;
} Facts;

static int
add_facts(Facts *f, const Scan *s)
{
    if (f->count == f->cap) {
        Py_ssize_t cap = f->cap ? f->cap * 2 : 64;
        long long *organisations = PyMem_Realloc(f->organisations, cap * sizeof(long long));
        if (organisations != NULL) {
            f->organisations = organisations;
        }
        long long *event_types = PyMem_Realloc(f->event_types, cap * sizeof(long long));
        if (event_types != NULL) {
            f->event_types = event_types;
        }
        signed char *alerts = PyMem_Realloc(f->alerts, cap);
        if (alerts != NULL) {
            f->alerts = alerts;
        }
        if (organisations == NULL || event_types == NULL || alerts == NULL) {
            return NOMEM;
        }
        f->cap = cap;
    }
    f->organisations[f->count] = s->organisation;
    f->event_types[f->count] = s->event_type;
    f->alerts[f->count] = (signed char)s->alert;
    f->count++;
    return OK;
}

/* ``canonical_lines(body, usage, want)``: every record of an NDJSON body (one per line, as
 * bytes.splitlines cuts it; lines of spaces and tabs left out) as ``canonical`` reads it, as
 * ``(bodies, organisations, event_types, alerts)``: a list of canonical bytes and three
 * columns of native 8-, 8- and 1-byte integers (the last two empty for usage); or None when
 * one line is not this pass's (the caller reads the body with the reference). A line's span
 * is scanned in place: the byte after it is a CR, an LF or the body's closing NUL, none of
 * them plain. */
static PyObject *
canonical_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    int usage;
    long want;
    if (read_args(args, nargs, "canonical_lines(body: bytes, usage: bool, want: int)", &usage,
                  &want)) {
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const unsigned char *end = p + PyBytes_GET_SIZE(args[0]);
    const unsigned char *cr = memchr(p, '\r', end - p), *lf = memchr(p, '\n', end - p);
    Facts facts = {NULL, NULL, NULL, 0, 0};
    PyObject *result = NULL;
    PyObject *bodies = PyList_New(0);
    if (bodies == NULL) {
        goto out;
    }
    for (const unsigned char *line = p; line <= end;) {
        const unsigned char *stop = line_end(line, end, &cr, &lf);
        if (!blank(line, stop - line)) {
            Scan s;
            int status = read_record(&s, line, stop - line, usage, want);
            if (status == OK) {
                status = add_facts(&facts, &s);
            }
            if (status != OK) {
                result = status == NOMEM ? PyErr_NoMemory() : Py_NewRef(Py_None);
                goto out;
            }
            PyObject *canonical = PyBytes_FromStringAndSize(s.out, s.len);
            if (canonical == NULL || PyList_Append(bodies, canonical) < 0) {
                Py_XDECREF(canonical);
                goto out;
            }
            Py_DECREF(canonical);
        }
        line = stop + (stop[0] == '\r' && stop + 1 < end && stop[1] == '\n' ? 2 : 1);
    }
    if (facts.count == 0) { /* ``y#`` makes None of a NULL pointer */
        result = Py_BuildValue("(Oyyy)", bodies, "", "", "");
    } else {
        Py_ssize_t routed = usage ? 0 : facts.count;
        result = Py_BuildValue("(Oy#y#y#)", bodies, (const char *)facts.organisations,
                               facts.count * (Py_ssize_t)sizeof(long long),
                               (const char *)facts.event_types,
                               routed * (Py_ssize_t)sizeof(long long),
                               (const char *)facts.alerts, routed);
    }
out:
    Py_XDECREF(bodies);
    PyMem_Free(facts.organisations);
    PyMem_Free(facts.event_types);
    PyMem_Free(facts.alerts);
    return done(result);
}

/* ---- Rendering: a stored record's canonical bytes as ``old`` or ``migrated`` write them ----
 *
 * ``render(body, usage, old, keen)`` returns the bytes schemas.render.dumps writes for the
 * record, or None for one it leaves to it (a key beyond ASCII in ``old``, an integer beyond 64
 * bits beside a float whose forms differ, anything unexpected). The rules, per object, follow
 * schemas/render.py: timestamps in the legacy layout, alerts as 0/1, ``description`` as
 * ``name`` where the versions rename it; ``old`` leaves out null root values and unset balance
 * values and writes every character beyond ASCII as a space; KeenIO's shape leaves out some
 * root entities and keeps only some fields of others, in its own order.
 */

enum {
    A_COPY,       /* the value as it is */
    A_STAMP,      /* a timestamp: the legacy layout (null stays null) */
    A_ALERT,      /* true/false as 1/0 */
    A_OBJ,        /* an object of ``inner`` rules, or null */
    A_OBJ_ANY,    /* an object of ``inner`` rules; any other value as it is */
};

enum {
    OLD_DROP_NULL = 1, /* ``old`` leaves it out when null */
    KEEN_DROP = 2,     /* KeenIO's shape leaves it out */
    START = 4,         /* the start timestamp (KeenIO's ``old`` usage repeats it) */
    REQUIRED = 8,      /* present and not null (the reference reads it unguarded) */
};

typedef struct Rules Rules;

typedef struct {
    const char *name;
    Py_ssize_t length;
    int action;
    int flags;
    const Rules *inner;
} Rule;

struct Rules {
    const Rule *rules;
    int count;
    const char *pick[2]; /* KeenIO's shape keeps only these, in this order */
    int named;           /* ``description`` is written ``name`` */
    int root;            /* ``old`` leaves out every null value */
};

#define RULES(array) array, (int)(sizeof(array) / sizeof(array[0]))

static const Rules Named = {NULL, 0, {NULL, NULL}, 1, 0};

static const Rule sim_rules[] = {{NAME("production_date"), A_STAMP, 0, NULL}};
static const Rules SimRules = {RULES(sim_rules), {"id", "iccid"}, 0, 0};

static const Rule imsi_rules[] = {{NAME("import_date"), A_STAMP, 0, NULL}};
static const Rules ImsiRules = {RULES(imsi_rules), {NULL, NULL}, 0, 0};

static const Rule event_balance_rules[] = {{NAME("expiry_date"), A_COPY, OLD_DROP_NULL, NULL}};
static const Rules EventBalanceRules = {RULES(event_balance_rules), {NULL, NULL}, 0, 0};

static const Rule event_endpoint_rules[] = {
    {NAME("balance"), A_OBJ_ANY, OLD_DROP_NULL, &EventBalanceRules},
};
static const Rules EventEndpointRules = {RULES(event_endpoint_rules), {"id", "name"}, 0, 0};

static const Rule usage_balance_rules[] = {
    {NAME("last_updated"), A_STAMP, 0, NULL},
    {NAME("expiry_date"), A_STAMP, OLD_DROP_NULL, NULL},
};
static const Rules UsageBalanceRules = {RULES(usage_balance_rules), {NULL, NULL}, 0, 0};

static const Rule usage_endpoint_rules[] = {
    {NAME("balance"), A_OBJ, OLD_DROP_NULL, &UsageBalanceRules},
};
static const Rules UsageEndpointRules = {RULES(usage_endpoint_rules), {"id", "balance"}, 0, 0};

static const Rule event_root_rules[] = {
    {NAME("timestamp"), A_STAMP, REQUIRED, NULL},
    {NAME("alert"), A_ALERT, 0, NULL},
    {NAME("event_source"), A_OBJ, 0, &Named},
    {NAME("endpoint"), A_OBJ, 0, &EventEndpointRules},
    {NAME("sim"), A_OBJ, 0, &SimRules},
    {NAME("imsi"), A_OBJ, KEEN_DROP, &ImsiRules},
    {NAME("user"), A_COPY, KEEN_DROP, NULL},
};
static const Rules EventRoot = {RULES(event_root_rules), {NULL, NULL}, 0, 1};

static const Rule usage_root_rules[] = {
    {NAME("start_timestamp"), A_STAMP, START | REQUIRED, NULL},
    {NAME("end_timestamp"), A_STAMP, REQUIRED, NULL},
    {NAME("traffic_type"), A_OBJ, REQUIRED, &Named},
    {NAME("endpoint"), A_OBJ, 0, &UsageEndpointRules},
    {NAME("sim"), A_OBJ, 0, &SimRules},
    {NAME("imsi"), A_COPY, KEEN_DROP, NULL},
    {NAME("imsi_id"), A_COPY, KEEN_DROP, NULL},
};
static const Rules UsageRoot = {RULES(usage_root_rules), {NULL, NULL}, 0, 1};

typedef struct {
    int old;
    int keen;
    char start[19]; /* the start timestamp, legacy */
    int started;
} Rendering;

/* A canonical timestamp's text in the legacy layout, without quotes: its first 10 characters,
 * a space, the next 8 (``start``, if given, keeps a copy). */
static int
legacy_text(Scan *s, char *start)
{
    const unsigned char *text;
    Py_ssize_t length;
    if (!at(s, '"')) {
        return DECLINE;
    }
    TRY(string_span(s, &text, &length));
    for (Py_ssize_t i = 1; i < length - 1; i++) {
        if (text[i] >= 0x80) {
            return DECLINE;
        }
    }
    if (length - 2 < 19) {
        return DECLINE;
    }
    TRY(reserve(s, 19));
    char *o = s->out + s->len;
    memcpy(o, text + 1, 10);
    o[10] = ' ';
    memcpy(o + 11, text + 12, 8);
    if (start != NULL) {
        memcpy(start, o, 19);
    }
    s->len += 19;
    return OK;
}

/* A canonical timestamp in the legacy layout, in quotes. */
static int
legacy_stamp(Scan *s, Rendering *r, int start)
{
    TRY(PUT(s, "\""));
    TRY(legacy_text(s, start ? r->start : NULL));
    r->started |= start;
    return PUT(s, "\"");
}

static int render_object(Scan *s, Rendering *r, const Rules *rules, int depth);

static int
render_value(Scan *s, Rendering *r, const Rule *rule, int depth)
{
    if (rule == NULL || rule->action == A_COPY) {
        return any_value(s, depth);
    }
    if (is_null(s)) {
        return rule->flags & REQUIRED ? DECLINE : literal(s, "null", 4);
    }
    switch (rule->action) {
    case A_STAMP:
        return legacy_stamp(s, r, rule->flags & START);
    case A_ALERT:
        if (s->end - s->p >= 4 && memcmp(s->p, "true", 4) == 0) {
            s->p += 4;
            return PUT(s, "1");
        }
        if (s->end - s->p >= 5 && memcmp(s->p, "false", 5) == 0) {
            s->p += 5;
            return PUT(s, "0");
        }
        return any_value(s, depth);
    default: /* A_OBJ, A_OBJ_ANY */
        if (at(s, '{') && depth < MAX_DEPTH) {
            return render_object(s, r, rule->inner, depth + 1);
        }
        return rule->action == A_OBJ_ANY ? any_value(s, depth) : DECLINE;
    }
}

static const Rule *
find_rule(const Rules *rules, const char *key, Py_ssize_t length)
{
    for (int i = 0; i < rules->count; i++) {
        const Rule *rule = &rules->rules[i];
        if (rule->length == length && memcmp(rule->name, key, length) == 0) {
            return rule;
        }
    }
    return NULL;
}

/* Which of KeenIO's kept fields ``key`` is (0 or 1), or -1. */
static int
picked(const Rules *rules, const char *key, Py_ssize_t length)
{
    for (int i = 0; i < 2; i++) {
        const char *name = rules->pick[i];
        if (name && (Py_ssize_t)strlen(name) == length && memcmp(name, key, length) == 0) {
            return i;
        }
    }
    return -1;
}

/* KeenIO's kept fields were written in the producer's order, ``second`` first: write them in
 * the shape's order (``from`` is where the first starts, ``middle`` where the second). */
static int
swap_members(Scan *s, Py_ssize_t from, Py_ssize_t middle)
{
    Py_ssize_t first = middle - 1 - from, second = s->len - middle;
    char *copy = PyMem_Malloc(s->len - from);
    if (copy == NULL) {
        return NOMEM;
    }
    memcpy(copy, s->out + middle, second);
    copy[second] = ',';
    memcpy(copy + second + 1, s->out + from, first);
    memcpy(s->out + from, copy, s->len - from);
    PyMem_Free(copy);
    return OK;
}

/* One member of an object under ``rules``; ``*kept`` says which of KeenIO's fields it is
 * (-1: another), or -2 when it is left out. */
static int
render_member(Scan *s, Rendering *r, const Rules *rules, int members, int depth, int *kept,
              Spans *keys)
{
    Py_ssize_t before = s->len, length;
    const unsigned char *text;
    TRY(plain_key(s, keys, &text, &length)); /* a key with an escape is the reference's */
    if (members) {
        TRY(PUT(s, ","));
    }
    Py_ssize_t key = s->len;
    TRY(put(s, text, length));
    TRY(PUT(s, ":"));
    const char *name = (const char *)text + 1;
    Py_ssize_t size = length - 2;
    const Rule *rule = find_rule(rules, name, size);
    int drop = r->keen && rule != NULL && (rule->flags & KEEN_DROP);
    *kept = picked(rules, name, size);
    if (r->keen && rules->pick[0] != NULL && *kept < 0) {
        drop = 1;
    }
    if (!drop && r->old && (rules->root || (rule != NULL && (rule->flags & OLD_DROP_NULL))) &&
        is_null(s)) {
        drop = 1;
    }
    if (rules->named && size == 4 && memcmp(name, "name", 4) == 0) {
        return DECLINE; /* it would meet the renamed description */
    }
    if (rules == &UsageRoot && r->keen && r->old && size == 4 && memcmp(name, "keen", 4) == 0) {
        return DECLINE; /* KeenIO's own object would take its place */
    }
    if (rules->named && size == 11 && memcmp(name, "description", 11) == 0) {
        s->len = key;
        TRY(PUT(s, "\"name\":"));
    }
    TRY(render_value(s, r, rule, depth));
    if (drop) {
        s->len = before;
        *kept = -2;
    }
    return OK;
}

static int
render_object(Scan *s, Rendering *r, const Rules *rules, int depth)
{
    s->p++;
    TRY(PUT(s, "{"));
    skip_space(s);
    int members = 0, order[2] = {-1, -1};
    Spans keys;
    keys.count = 0;
    Py_ssize_t starts[2] = {0, 0};
    if (at(s, '}')) {
        s->p++;
    }
    else {
        for (int more = 1; more;) {
            int kept;
            Py_ssize_t before = s->len;
            TRY(render_member(s, r, rules, members, depth, &kept, &keys));
            if (kept >= 0 && r->keen && rules->pick[0] != NULL && members < 2) {
                order[members] = kept;
                starts[members] = before + (members > 0);
            }
            members += kept != -2;
            TRY(next_member(s, &more));
        }
    }
    for (int i = 0; i < rules->count; i++) {
        const Rule *rule = &rules->rules[i];
        int present = 0;
        for (int k = 0; k < keys.count && !present; k++) {
            present = keys.length[k] == rule->length + 2 &&
                      memcmp(keys.start[k] + 1, rule->name, rule->length) == 0;
        }
        if ((rule->flags & REQUIRED) && !present) {
            return DECLINE;
        }
    }
    if (r->keen && rules->pick[0] != NULL && members == 2 && order[0] == 1) {
        TRY(swap_members(s, starts[0], starts[1]));
    }
    if (rules == &UsageRoot && r->keen && r->old) {
        if (!r->started) {
            return DECLINE;
        }
        TRY(members ? PUT(s, ",\"keen\":{\"timestamp\":\"") : PUT(s, "\"keen\":{\"timestamp\":\""));
        TRY(put(s, r->start, 19));
        TRY(PUT(s, "\"}"));
    }
    return PUT(s, "}");
}

/* ``old``: every character beyond ASCII in a string value as one space; a key holding one is
 * declined (two keys could become one: the reference settles that). */
static int
spaced(Scan *s)
{
    char *o = s->out, *end = s->out + s->len, *w = o;
    int in_string = 0;
    int beyond = 0;
    for (char *p = o; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (!in_string) {
            if (c == '"') {
                in_string = 1;
                beyond = 0;
            }
            *w++ = (char)c;
            continue;
        }
        if (c == '\\') {
            *w++ = *p++;
            *w++ = *p;
            continue;
        }
        if (c == '"') {
            in_string = 0;
            if (beyond && p + 1 < end && p[1] == ':') {
                return DECLINE;
            }
            *w++ = (char)c;
            continue;
        }
        if (c >= 0x80) {
            beyond = 1;
            if (c >= 0xC0) {
                *w++ = ' ';
            }
            continue;
        }
        *w++ = (char)c;
    }
    s->len = w - o;
    return OK;
}

static PyObject *
render(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "render(body: bytes, usage: bool, old: bool, keen: bool)");
        return NULL;
    }
    Rendering r = {0, 0, {0}, 0};
    int usage = PyObject_IsTrue(args[1]);
    if (usage < 0 || (r.old = PyObject_IsTrue(args[2])) < 0 ||
        (r.keen = PyObject_IsTrue(args[3])) < 0) {
        return NULL;
    }
    Scan s;
    if (scan_of(&s, args[0]) != OK) {
        return PyErr_NoMemory();
    }
    int status = at(&s, '{') ? render_object(&s, &r, usage ? &UsageRoot : &EventRoot, 1) : DECLINE;
    if (status == OK && s.p != s.end) {
        status = DECLINE;
    }
    if (status == OK && r.old) {
        status = spaced(&s);
    }
    if (status == NOMEM) {
        return done(PyErr_NoMemory());
    }
    if (status == DECLINE || (s.wide && s.odd)) {
        return done(Py_NewRef(Py_None));
    }
    return done(PyBytes_FromStringAndSize(s.out, s.len));
}

/* ---- CSV rows: a stored record's canonical bytes as one row of an S3 layout ----
 *
 * ``csv_layout(nodes, legacy)`` registers a layout (schemas/csv_rows.py builds it from the
 * column tables: a tree of the fields its columns read, children of a node next to each
 * other, each node ``(name, column or -1, first child, children, type)``) and returns its
 * number; ``csv_row(body, layout, old)`` writes the row as schemas.csv_rows writes it cell by
 * cell, or returns None for one it leaves to it (a text ``detail``, a duplicate key, an escape
 * in a key or a timestamp, ...).
 */

enum { C_INT, C_STR, C_TS, C_BOOL, C_NUM, C_DEC6, C_DEC10, C_JSON };
static const char *const column_types[] = {"int", "str", "ts", "bool", "num", "dec6", "dec10",
                                           "json", NULL};

#define MAX_LAYOUTS 8
#define MAX_COLUMNS 64

typedef struct {
    char *name;
    Py_ssize_t length;
    int column;
    int first;
    int children;
    int type;
} Node;

typedef struct {
    Node *nodes;
    int columns;
    int types[MAX_COLUMNS];
    int legacy;
} Layout;

static Layout layouts[MAX_LAYOUTS];
static int layout_count;

/* Where each column's value starts in the record (NULL: none, or null). */
static int
find_columns(Scan *s, const Layout *layout, const Node *node, const unsigned char **cells,
             int depth)
{
    Spans keys;
    keys.count = 0;
    s->p++;
    if (at(s, '}')) {
        s->p++;
        return OK;
    }
    for (;;) {
        const unsigned char *key;
        Py_ssize_t length;
        TRY(plain_key(s, &keys, &key, &length));
        const Node *found = NULL;
        for (int i = node->first; i < node->first + node->children; i++) {
            const Node *child = &layout->nodes[i];
            if (child->length == length - 2 && memcmp(child->name, key + 1, length - 2) == 0) {
                found = child;
                break;
            }
        }
        if (found != NULL && found->children > 0) {
            if (at(s, '{') && depth < MAX_DEPTH) {
                TRY(find_columns(s, layout, found, cells, depth + 1));
            }
            else if (is_null(s)) {
                s->p += 4;
            }
            else {
                return DECLINE; /* an entity that is no object */
            }
        }
        else {
            if (found != NULL && found->column >= 0 && !is_null(s)) {
                cells[found->column] = s->p;
            }
            Py_ssize_t mark = s->len; /* read whole (and checked), not kept */
            TRY(any_value(s, depth));
            s->len = mark;
        }
        if (at(s, '}')) {
            s->p++;
            return OK;
        }
        if (!at(s, ',')) {
            return DECLINE;
        }
        s->p++;
    }
}

/* The string at ``s->p`` (read before: valid), quotes included. */
static int
string_extent(Scan *s, const unsigned char **text, Py_ssize_t *length)
{
    const unsigned char *p = s->p + 1;
    while (p < s->end && *p != '"') {
        p += *p == '\\' ? 2 : 1;
    }
    if (p >= s->end) {
        return DECLINE;
    }
    *text = s->p;
    *length = p + 1 - s->p;
    s->p = p + 1;
    return OK;
}

/* Double every quote written since ``from`` (a CSV cell's text). */
static int
double_quotes(Scan *s, Py_ssize_t from)
{
    Py_ssize_t quotes = 0;
    for (Py_ssize_t i = from; i < s->len; i++) {
        quotes += s->out[i] == '"';
    }
    if (quotes == 0) {
        return OK;
    }
    TRY(reserve(s, quotes));
    char *o = s->out;
    Py_ssize_t r = s->len - 1, w = s->len + quotes - 1;
    for (; r >= from; r--) {
        o[w--] = o[r];
        if (o[r] == '"') {
            o[w--] = '"';
        }
    }
    s->len += quotes;
    return OK;
}

/* A JSON string's text, unescaped (every escape orjson writes is a character of one byte). */
static int
put_text(Scan *s, const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p != '\\') {
            p++;
        }
        TRY(put(s, run, p - run));
        if (p >= end) {
            return OK;
        }
        static const char plain[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
        const char *found = p + 1 < end && p[1] != 'u' && p[1] ? strchr(plain, p[1]) : NULL;
        if (found != NULL && (found - plain) % 2 == 0) {
            TRY(put(s, found + 1, 1));
            p += 2;
            continue;
        }
        long c = p + 1 < end && p[1] == 'u' ? hex_value(p + 2, end) : -1;
        if (c < 0 || c >= 0x80) {
            return DECLINE;
        }
        char one = (char)c;
        TRY(put(s, &one, 1));
        p += 6;
    }
    return OK;
}

/* A number's digits without exponent: ``digits`` holds a zero (room for a carry), the whole
 * part (no leading zero but a lone one) and the fraction; returns the count of whole digits,
 * or -1 when it would not fit. */
typedef struct {
    char digits[400];
    int whole;
    int fraction;
    int negative;
} Plain;

static int
plain_digits(const Number *n, Plain *out)
{
    const unsigned char *p = n->start + (n->start[0] == '-');
    char mantissa[360];
    int m = 0;
    out->negative = n->start[0] == '-';
    for (const unsigned char *q = p; q < n->start + n->length && *q != 'e' && *q != 'E'; q++) {
        if (*q != '.') {
            if (m == (int)sizeof(mantissa)) {
                return -1;
            }
            mantissa[m++] = (char)*q;
        }
    }
    long e = 0;
    if (n->exponent) {
        const unsigned char *q = p + n->whole + (n->fraction ? n->fraction + 1 : 0) + 1;
        int minus = *q == '-';
        q += *q == '-' || *q == '+';
        for (; q < n->start + n->length && e < 1000; q++) {
            e = e * 10 + (*q - '0');
        }
        e = minus ? -e : e;
    }
    long point = n->whole + e; /* digits of the mantissa before the point */
    int lead = point <= 0 ? (int)(1 - point) : 0;
    long total = lead + m + (point > m ? point - m : 0);
    if (total + 1 > (long)sizeof(out->digits) || point > 300 || point < -300) {
        return -1;
    }
    char *d = out->digits;
    *d++ = '0';
    memset(d, '0', lead);
    memcpy(d + lead, mantissa, m);
    memset(d + lead + m, '0', total - lead - m);
    int whole = point <= 0 ? 1 : (int)point;
    int skip = 0; /* leading zeros of the whole part, but the last */
    while (skip < whole - 1 && d[skip] == '0') {
        skip++;
    }
    memmove(d, d + skip, total - skip);
    out->whole = whole - skip;
    out->fraction = (int)(total - whole);
    return out->whole;
}

/* A number as a cell of ``scale`` decimals, as schemas.csv_rows writes it from the number's
 * shortest digits: rounded half to even where it has more, zeros after them where fewer, zero
 * without a sign. */
static int
put_scaled(Scan *s, const Number *n, int scale)
{
    Plain plain;
    if (plain_digits(n, &plain) < 0 || plain.whole + scale + 1 > (int)sizeof(plain.digits)) {
        return DECLINE;
    }
    char *d = plain.digits; /* d[0]: the carry; d[1 .. whole + scale]: the digits kept */
    int count = plain.whole + scale;
    int dropped = plain.fraction - scale;
    char rest[1] = {'0'};
    int beyond = 0;
    if (dropped > 0) {
        rest[0] = d[1 + count];
        for (int i = count + 2; i <= plain.whole + plain.fraction; i++) {
            beyond |= d[i] != '0';
        }
    }
    for (int i = plain.whole + plain.fraction + 1; i <= count; i++) {
        d[i] = '0';
    }
    int last = d[count] - '0';
    if (rest[0] > '5' || (rest[0] == '5' && (beyond || last % 2 == 1))) {
        int i = count;
        for (; i >= 1 && d[i] == '9'; i--) {
            d[i] = '0';
        }
        d[i]++;
    }
    int start = d[0] == '1' ? 0 : 1, zero = 1;
    for (int i = start; i <= count; i++) {
        zero &= d[i] == '0';
    }
    if (zero) {
        static const char zeros[] = "0000000000";
        TRY(PUT(s, "0."));
        return put(s, zeros, scale);
    }
    if (plain.negative) {
        TRY(PUT(s, "-"));
    }
    TRY(put(s, d + start, plain.whole + 1 - start));
    TRY(PUT(s, "."));
    return put(s, d + 1 + plain.whole, scale);
}

/* A number never in exponent form, with a point: its shortest digits written out. */
static int
put_plain(Scan *s, const Number *n)
{
    Plain plain;
    if (plain_digits(n, &plain) < 0) {
        return DECLINE;
    }
    if (plain.negative) {
        TRY(PUT(s, "-"));
    }
    TRY(put(s, plain.digits + 1, plain.whole));
    TRY(PUT(s, "."));
    return plain.fraction ? put(s, plain.digits + 1 + plain.whole, plain.fraction) : PUT(s, "0");
}

/* One cell: nothing for a null, else the value's text in quotes. */
static int
put_cell(Scan *s, const unsigned char *value, int type, int legacy)
{
    if (value == NULL) {
        return OK;
    }
    s->p = value;
    TRY(PUT(s, "\""));
    Py_ssize_t from = s->len;
    if (*value == '"') {
        const unsigned char *text;
        Py_ssize_t length;
        if (type == C_JSON) {
            return DECLINE; /* a text detail: is it a document? the reference tells */
        }
        if (type == C_TS && legacy) {
            TRY(legacy_text(s, NULL));
        }
        else {
            TRY(string_extent(s, &text, &length));
            TRY(put_text(s, text + 1, text + length - 1));
        }
    }
    else if (*value == 't' || *value == 'f') {
        int yes = *value == 't';
        TRY(legacy ? (yes ? PUT(s, "1") : PUT(s, "0")) : (yes ? PUT(s, "true") : PUT(s, "false")));
    }
    else if (*value == '{' || *value == '[') {
        TRY(any_value(s, 1));
    }
    else {
        Number n;
        TRY(scan_number(s, &n));
        if (type == C_DEC6 || type == C_DEC10) {
            TRY(put_scaled(s, &n, type == C_DEC6 ? 6 : 10));
        }
        else if (is_integer(&n)) {
            TRY(put_integer(s, &n));
        }
        else {
            TRY(put_plain(s, &n));
        }
    }
    TRY(double_quotes(s, from));
    return PUT(s, "\"");
}

/* ``old``: every character beyond ASCII as one space. */
static void
ascii_spaces(Scan *s)
{
    Py_ssize_t w = 0;
    for (Py_ssize_t r = 0; r < s->len; r++) {
        unsigned char c = (unsigned char)s->out[r];
        if (c < 0x80) {
            s->out[w++] = (char)c;
        }
        else if (c >= 0xC0) {
            s->out[w++] = ' ';
        }
    }
    s->len = w;
}

static PyObject *
csv_row(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "csv_row(body: bytes, layout: int, old: bool)");
        return NULL;
    }
    long index = PyLong_AsLong(args[1]);
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int old = PyObject_IsTrue(args[2]);
    if (old < 0) {
        return NULL;
    }
    if (index < 0 || index >= layout_count) {
        PyErr_SetString(PyExc_ValueError, "no such layout");
        return NULL;
    }
    const Layout *layout = &layouts[index];
    Scan s;
    const unsigned char *cells[MAX_COLUMNS] = {NULL};
    int status = scan_of(&s, args[0]);
    if (status == OK) {
        status = at(&s, '{') ? find_columns(&s, layout, &layout->nodes[0], cells, 1) : DECLINE;
    }
    for (int i = 0; status == OK && i < layout->columns; i++) {
        status = i ? PUT(&s, ",") : OK;
        if (status == OK) {
            status = put_cell(&s, cells[i], layout->types[i], layout->legacy);
        }
    }
    if (status == OK) {
        status = PUT(&s, "\n");
    }
    if (status == NOMEM) {
        return done(PyErr_NoMemory());
    }
    if (status == DECLINE || (s.wide && s.odd)) {
        return done(Py_NewRef(Py_None));
    }
    if (old) {
        ascii_spaces(&s);
    }
    return done(PyBytes_FromStringAndSize(s.out, s.len));
}

/* One node of a layout's tree: ``(name, column, first child, children, type)``. */
static int
read_node(PyObject *item, Node *node)
{
    const char *name, *type;
    Py_ssize_t length;
    if (!PyArg_ParseTuple(item, "s#iiis", &name, &length, &node->column, &node->first,
                          &node->children, &type)) {
        return -1;
    }
    node->name = PyMem_Malloc(length + 1);
    if (node->name == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(node->name, name, length + 1);
    node->length = length;
    node->type = -1;
    for (int t = 0; column_types[t]; t++) {
        if (strcmp(type, column_types[t]) == 0) {
            node->type = t;
        }
    }
    if (node->column >= 0 && (node->type < 0 || node->column >= MAX_COLUMNS)) {
        PyErr_Format(PyExc_ValueError, "column %d: type %s", node->column, type);
        return -1;
    }
    return 0;
}

static PyObject *
csv_layout(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "csv_layout(nodes: list[tuple], legacy: bool)");
        return NULL;
    }
    if (layout_count == MAX_LAYOUTS) {
        PyErr_SetString(PyExc_ValueError, "no room for another CSV layout");
        return NULL;
    }
    PyObject *items = PySequence_Fast(args[0], "nodes must be a sequence");
    int legacy = PyObject_IsTrue(args[1]);
    if (items == NULL || legacy < 0) {
        Py_XDECREF(items);
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    Layout *layout = &layouts[layout_count];
    layout->nodes = PyMem_Calloc(count ? count : 1, sizeof(Node));
    layout->legacy = legacy;
    layout->columns = 0;
    if (layout->nodes == NULL) {
        Py_DECREF(items);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Node *node = &layout->nodes[i];
        if (read_node(PySequence_Fast_GET_ITEM(items, i), node) < 0 || node->first < 0 ||
            node->children < 0 || node->first + node->children > count) {
            Py_DECREF(items);
            for (Py_ssize_t j = 0; j <= i; j++) {
                PyMem_Free(layout->nodes[j].name);
            }
            PyMem_Free(layout->nodes);
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "a node's children are beyond the nodes");
            }
            return NULL;
        }
        if (node->column >= 0) {
            layout->types[node->column] = node->type;
            if (node->column >= layout->columns) {
                layout->columns = node->column + 1;
            }
        }
    }
    Py_DECREF(items);
    return PyLong_FromLong(layout_count++);
}

static PyMethodDef methods[] = {
    {"canonical", (PyCFunction)(void (*)(void))canonical, METH_FASTCALL,
     "canonical(raw, usage, want) -> (body, usage, organisation, event_type, alert) or None"},
    {"canonical_lines", (PyCFunction)(void (*)(void))canonical_lines, METH_FASTCALL,
     "canonical_lines(body, usage, want) -> (bodies, organisations, event_types, alerts) or None"},
    {"render", (PyCFunction)(void (*)(void))render, METH_FASTCALL,
     "render(body, usage, old, keen) -> bytes or None"},
    {"csv_layout", (PyCFunction)(void (*)(void))csv_layout, METH_FASTCALL,
     "csv_layout(nodes, legacy) -> int"},
    {"csv_row", (PyCFunction)(void (*)(void))csv_row, METH_FASTCALL,
     "csv_row(body, layout, old) -> bytes or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "schemas._canonical",
    .m_doc = "The common case of reading a record, in one pass (see schemas.canonical).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__canonical(void)
{
    for (int c = 0x20; c < 0x80; c++) {
        PLAIN[c] = c != '"' && c != '\\';
    }
    return PyModule_Create(&module);
}
