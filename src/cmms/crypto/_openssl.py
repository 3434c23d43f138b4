"""cffi ABI-mode binding to the few libcrypto (OpenSSL 3) EC and BIGNUM functions we use.

ABI mode (`ffi.dlopen`) needs no compiler, only the system `libcrypto.so.3` at run time. The
declarations below are pinned to the OpenSSL 3.0 public headers.
"""

from __future__ import annotations

from typing import Any

from cffi import FFI  # type: ignore[import-untyped]

NID_P256 = 415
POINT_CONVERSION_COMPRESSED = 2

_DECLARATIONS = """
typedef struct ec_group_st EC_GROUP;
typedef struct ec_point_st EC_POINT;
typedef struct bignum_st BIGNUM;
typedef struct bignum_ctx BN_CTX;

EC_GROUP *EC_GROUP_new_by_curve_name(int nid);
EC_GROUP *EC_GROUP_dup(const EC_GROUP *src);
void EC_GROUP_free(EC_GROUP *group);
int EC_GROUP_set_generator(EC_GROUP *group, const EC_POINT *generator, const BIGNUM *order,
                           const BIGNUM *cofactor);
int EC_GROUP_precompute_mult(EC_GROUP *group, BN_CTX *ctx);
int EC_GROUP_have_precompute_mult(const EC_GROUP *group);
const EC_POINT *EC_GROUP_get0_generator(const EC_GROUP *group);
const BIGNUM *EC_GROUP_get0_order(const EC_GROUP *group);
const BIGNUM *EC_GROUP_get0_cofactor(const EC_GROUP *group);
int EC_GROUP_get_curve(const EC_GROUP *group, BIGNUM *p, BIGNUM *a, BIGNUM *b, BN_CTX *ctx);

EC_POINT *EC_POINT_new(const EC_GROUP *group);
void EC_POINT_free(EC_POINT *point);
int EC_POINT_copy(EC_POINT *dst, const EC_POINT *src);
int EC_POINT_set_to_infinity(const EC_GROUP *group, EC_POINT *point);
int EC_POINT_is_at_infinity(const EC_GROUP *group, const EC_POINT *point);
int EC_POINT_is_on_curve(const EC_GROUP *group, const EC_POINT *point, BN_CTX *ctx);
int EC_POINT_cmp(const EC_GROUP *group, const EC_POINT *a, const EC_POINT *b, BN_CTX *ctx);
int EC_POINT_add(const EC_GROUP *group, EC_POINT *r, const EC_POINT *a, const EC_POINT *b,
                 BN_CTX *ctx);
int EC_POINT_invert(const EC_GROUP *group, EC_POINT *a, BN_CTX *ctx);
int EC_POINT_mul(const EC_GROUP *group, EC_POINT *r, const BIGNUM *n, const EC_POINT *q,
                 const BIGNUM *m, BN_CTX *ctx);
size_t EC_POINT_point2oct(const EC_GROUP *group, const EC_POINT *p, int form,
                          unsigned char *buf, size_t len, BN_CTX *ctx);
int EC_POINT_oct2point(const EC_GROUP *group, EC_POINT *p, const unsigned char *buf, size_t len,
                       BN_CTX *ctx);

BN_CTX *BN_CTX_new(void);
void BN_CTX_free(BN_CTX *ctx);
BIGNUM *BN_new(void);
void BN_free(BIGNUM *a);
void BN_clear_free(BIGNUM *a);
BIGNUM *BN_bin2bn(const unsigned char *s, int len, BIGNUM *ret);
int BN_bn2binpad(const BIGNUM *a, unsigned char *to, int tolen);
int BN_num_bits(const BIGNUM *a);

void ERR_clear_error(void);
"""

ffi = FFI()
ffi.cdef(_DECLARATIONS)


def _load() -> Any:
    candidates = ["libcrypto.so.3", "libcrypto.so"]
    last_error: OSError | None = None
    for name in candidates:
        try:
            return ffi.dlopen(name)
        except OSError as exc:
            last_error = exc
    raise ImportError(f"cannot load OpenSSL 3 libcrypto ({candidates}): {last_error}")


lib: Any = _load()
