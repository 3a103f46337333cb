/*
 * order_money.h — amounts as int64 minor units, and their text form.
 *
 * Every amount orderkv stores is an int64 count of the currency's minor unit
 * (cents of CNY, yen, fils of KWD): integers add exactly and compare exactly;
 * binary floating point does neither (0.1 + 0.2). Only people see decimals,
 * through these two functions: "12.34 CNY" <-> 1234. Neither touches a
 * floating-point type.
 *
 * The exponent (digits after the point) is ISO 4217's: 0 for JPY, KRW and
 * the other zero-decimal currencies, 3 for BHD, IQD, JOD, KWD, LYD, OMR, TND,
 * 4 for the funds codes CLF and UYW, and 2 for every other code, known to
 * this table or not.
 *
 * Pure: no allocation, no locale (the separator is always '.').
 */
#ifndef OKV_ORDERS_MONEY_H
#define OKV_ORDERS_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "order_error.h"

/* "12.34 CNY", "-9223372036854775.808 KWD": fits with room to spare. */
#define ORD_MONEY_TEXT_MAX 48

/* A currency code: exactly three ASCII capital letters. OKV_EINVAL
 * (reason INVALID) otherwise. */
int ord_currency_check(const char *currency, ord_error *err);

/* Digits after the point for the currency (see the header); 2 when unknown. */
int ord_currency_exponent(const char *currency);

/* Writes "<amount> <currency>" into buf ("12.34 CNY", "-0.05 USD",
 * "1200 JPY"); every int64 formats, INT64_MIN included. Returns the length
 * written, or 0 (buf left "") when cap is too small; ORD_MONEY_TEXT_MAX
 * always suffices. */
size_t ord_money_format(char *buf, size_t cap, int64_t minor, const char *currency);

/* Parses text as an amount of currency into minor units: an optional '-',
 * digits, and optionally '.' and 1..exponent digits ("12", "12.3" = 1230 for
 * CNY, "-0.05"); optionally followed by one space and the currency code
 * itself ("12.34 CNY"). Refused with OKV_EINVAL (reason INVALID) and a
 * message: empty text, other characters, more decimals than the currency
 * has ("12.345 CNY: CNY has 2 decimal places"), a value outside int64, a
 * different currency code. */
int ord_money_parse(const char *text, const char *currency, int64_t *out, ord_error *err);

#endif
