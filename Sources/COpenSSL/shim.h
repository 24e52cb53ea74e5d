// What Wharf needs from system OpenSSL: PKCS#12 keystores and truststores, which neither
// swift-certificates nor swift-crypto writes. Macros and multi-step sequences are wrapped
// in small functions so Swift calls one typed entry point each.
#ifndef WHARF_COPENSSL_SHIM_H
#define WHARF_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdio.h>

/// Iterations of the key derivation and of the MAC (Java's keytool uses 10000 too).
#define WHARF_PKCS12_ITERATIONS 10000

static inline void wharf_openssl_free(void *pointer) {
    OPENSSL_free(pointer);
}

/// Writes the text of the oldest queued OpenSSL error into `buffer` and clears the queue.
static inline void wharf_openssl_last_error(char *buffer, size_t length) {
    unsigned long code = ERR_get_error();
    if (code == 0) {
        snprintf(buffer, length, "unknown OpenSSL error");
    } else {
        ERR_error_string_n(code, buffer, length);
    }
    ERR_clear_error();
}

static inline STACK_OF(X509) *wharf_read_certificates(const char *pem) {
    STACK_OF(X509) *certificates = sk_X509_new_null();
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *certificate;
    if (certificates == NULL || bio == NULL) {
        sk_X509_free(certificates);
        BIO_free(bio);
        return NULL;
    }
    while ((certificate = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certificates, certificate)) {
            X509_free(certificate);
            break;
        }
    }
    ERR_clear_error(); // the loop ends on an expected "no start line"
    BIO_free(bio);
    if (sk_X509_num(certificates) == 0) {
        sk_X509_free(certificates);
        return NULL;
    }
    return certificates;
}

/// A PKCS#12 keystore: the key and its certificate under `alias`, with the chain.
/// PBES2/AES-256-CBC for key and certificates, HMAC-SHA-256 MAC.
/// Returns the DER length and sets `*out` (free with wharf_openssl_free), or -1.
static inline int wharf_pkcs12_keystore(const char *certificatePEM, const char *keyPEM, const char *chainPEM,
                                        const char *password, const char *alias, unsigned char **out) {
    int length = -1;
    STACK_OF(X509) *leaf = wharf_read_certificates(certificatePEM);
    STACK_OF(X509) *chain = wharf_read_certificates(chainPEM);
    BIO *keyBIO = BIO_new_mem_buf(keyPEM, -1);
    EVP_PKEY *key = keyBIO ? PEM_read_bio_PrivateKey(keyBIO, NULL, NULL, NULL) : NULL;
    PKCS12 *p12 = NULL;
    if (leaf == NULL || chain == NULL || key == NULL) goto done;
    p12 = PKCS12_create(password, alias, key, sk_X509_value(leaf, 0), chain,
                        NID_aes_256_cbc, NID_aes_256_cbc, WHARF_PKCS12_ITERATIONS, -1, 0);
    if (p12 == NULL) goto done;
    if (!PKCS12_set_mac(p12, password, -1, NULL, 0, WHARF_PKCS12_ITERATIONS, EVP_sha256())) goto done;
    *out = NULL;
    length = i2d_PKCS12(p12, out);
done:
    PKCS12_free(p12);
    EVP_PKEY_free(key);
    BIO_free(keyBIO);
    sk_X509_pop_free(leaf, X509_free);
    sk_X509_pop_free(chain, X509_free);
    return length;
}

/// A PKCS#12 truststore: each certificate of `certificatesPEM` as a trusted entry.
/// Each bag carries Java's trusted-key-usage attribute (anyExtendedKeyUsage), without
/// which Java ignores certificate-only entries. Aliases are `alias`, `alias-2`, ...
/// Returns the DER length and sets `*out` (free with wharf_openssl_free), or -1.
static inline int wharf_pkcs12_truststore(const char *certificatesPEM, const char *password, const char *alias,
                                          unsigned char **out) {
    int length = -1;
    STACK_OF(X509) *certificates = wharf_read_certificates(certificatesPEM);
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    ASN1_OBJECT *anyUsage = OBJ_txt2obj("2.5.29.37.0", 1);
    PKCS12 *p12 = NULL;
    char name[256];
    if (certificates == NULL || anyUsage == NULL) goto done;
    for (int index = 0; index < sk_X509_num(certificates); index++) {
        PKCS12_SAFEBAG *bag = PKCS12_add_cert(&bags, sk_X509_value(certificates, index));
        if (bag == NULL) goto done;
        if (index == 0) {
            snprintf(name, sizeof name, "%s", alias);
        } else {
            snprintf(name, sizeof name, "%s-%d", alias, index + 1);
        }
        if (!PKCS12_add_friendlyname(bag, name, -1)) goto done;
        if (!PKCS12_add1_attr_by_txt(bag, "2.16.840.1.113894.746875.1.1", V_ASN1_OBJECT,
                                     (const unsigned char *)anyUsage, -1)) goto done;
    }
    if (!PKCS12_add_safe(&safes, bags, NID_aes_256_cbc, WHARF_PKCS12_ITERATIONS, password)) goto done;
    p12 = PKCS12_add_safes(safes, 0);
    if (p12 == NULL) goto done;
    if (!PKCS12_set_mac(p12, password, -1, NULL, 0, WHARF_PKCS12_ITERATIONS, EVP_sha256())) goto done;
    *out = NULL;
    length = i2d_PKCS12(p12, out);
done:
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    ASN1_OBJECT_free(anyUsage);
    sk_X509_pop_free(certificates, X509_free);
    return length;
}

#endif
