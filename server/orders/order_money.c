#include "order_money.h"

#include <stdio.h>
#include <string.h>

/* ISO 4217 minor units that are not 2 (the list as of amendment 176). */
static const struct {
    char code[4];
    int exp;
} EXPONENTS[] = {
    { "BIF", 0 }, { "CLP", 0 }, { "DJF", 0 }, { "GNF", 0 }, { "ISK", 0 }, { "JPY", 0 },
    { "KMF", 0 }, { "KRW", 0 }, { "PYG", 0 }, { "RWF", 0 }, { "UGX", 0 }, { "UYI", 0 },
    { "VND", 0 }, { "VUV", 0 }, { "XAF", 0 }, { "XOF", 0 }, { "XPF", 0 },
    { "BHD", 3 }, { "IQD", 3 }, { "JOD", 3 }, { "KWD", 3 }, { "LYD", 3 }, { "OMR", 3 },
    { "TND", 3 },
    { "CLF", 4 }, { "UYW", 4 },
};

int ord_currency_check(const char *currency, ord_error *err)
{
    if (!currency || strlen(currency) != 3 || currency[0] < 'A' || currency[0] > 'Z' ||
        currency[1] < 'A' || currency[1] > 'Z' || currency[2] < 'A' || currency[2] > 'Z')
        return ord_error_set(err, ORD_R(INVALID),
                             "currency '%s' is not an ISO 4217 code (three capital letters, "
                             "e.g. CNY)", currency ? currency : "");
    return 0;
}

int ord_currency_exponent(const char *currency)
{
    if (currency)
        for (size_t i = 0; i < sizeof EXPONENTS / sizeof EXPONENTS[0]; i++)
            if (strcmp(EXPONENTS[i].code, currency) == 0)
                return EXPONENTS[i].exp;
    return 2;
}

static uint64_t pow10u(int e)
{
    uint64_t p = 1;
    while (e-- > 0)
        p *= 10;
    return p;
}

size_t ord_money_format(char *buf, size_t cap, int64_t minor, const char *currency)
{
    int exp = ord_currency_exponent(currency);
    uint64_t scale = pow10u(exp);
    /* The magnitude as unsigned: -INT64_MIN does not fit int64, it fits uint64. */
    uint64_t mag = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    const char *sign = minor < 0 ? "-" : "";
    const char *cur = currency ? currency : "";
    int n;
    if (exp == 0)
        n = snprintf(buf, cap, "%s%llu %s", sign, (unsigned long long)mag, cur);
    else
        n = snprintf(buf, cap, "%s%llu.%0*llu %s", sign, (unsigned long long)(mag / scale), exp,
                     (unsigned long long)(mag % scale), cur);
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

int ord_money_parse(const char *text, const char *currency, int64_t *out, ord_error *err)
{
    const char *cur = currency ? currency : "";
    if (!text || !*text)
        return ord_error_set(err, ORD_R(INVALID), "amount is empty");
    int exp = ord_currency_exponent(currency);
    const char *p = text;
    int neg = *p == '-';
    p += neg;
    uint64_t mag = 0;
    /* int64's magnitude bound: INT64_MAX, or one more for a negative amount. */
    const uint64_t limit = (uint64_t)INT64_MAX + (uint64_t)neg;
    int digits = 0, decimals = 0, in_fraction = 0;
    for (; *p && *p != ' '; p++) {
        if (*p == '.' && !in_fraction) {
            if (digits == 0)
                return ord_error_set(err, ORD_R(INVALID), "amount '%s': no digit before '.'",
                                     text);
            in_fraction = 1;
            continue;
        }
        if (*p < '0' || *p > '9')
            return ord_error_set(err, ORD_R(INVALID),
                                 "amount '%s': unexpected '%c'; write digits with at most one "
                                 "'.', e.g. 12.34", text, *p);
        if (in_fraction && ++decimals > exp)
            return ord_error_set(err, ORD_R(INVALID),
                                 "amount '%s': %s has %d decimal place%s", text,
                                 *cur ? cur : "the currency", exp, exp == 1 ? "" : "s");
        unsigned d = (unsigned)(*p - '0');
        if (mag > (limit - d) / 10)
            return ord_error_set(err, ORD_R(INVALID), "amount '%s' is too large", text);
        mag = mag * 10 + d;
        digits += !in_fraction;
    }
    if (digits == 0)
        return ord_error_set(err, ORD_R(INVALID), "amount '%s' has no digits", text);
    if (in_fraction && decimals == 0)
        return ord_error_set(err, ORD_R(INVALID), "amount '%s': no digit after '.'", text);
    if (*p == ' ' && strcmp(p + 1, cur) != 0)
        return ord_error_set(err, ORD_R(INVALID), "amount '%s' is not in %s", text,
                             *cur ? cur : "the expected currency");
    /* Scale the missing decimals in: "12.3" CNY is 1230. */
    for (int i = decimals; i < exp; i++) {
        if (mag > limit / 10)
            return ord_error_set(err, ORD_R(INVALID), "amount '%s' is too large", text);
        mag *= 10;
    }
    if (!neg)
        *out = (int64_t)mag;
    else   /* spelled out: converting 2^63 to int64 is implementation-defined */
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    return 0;
}
