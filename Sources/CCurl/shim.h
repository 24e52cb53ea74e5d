// Typed wrappers over libcurl's variadic functions, which Swift cannot call directly.
// One wrapper per argument type; each returns libcurl's own result code.
#ifndef WHARF_CCURL_SHIM_H
#define WHARF_CCURL_SHIM_H

#include <curl/curl.h>

static inline CURLcode wharf_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode wharf_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode wharf_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode wharf_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode wharf_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*wharf_curl_data_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode wharf_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, wharf_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

/// Sets a `*_BLOB` option; libcurl copies the bytes.
static inline CURLcode wharf_curl_easy_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length) {
    struct curl_blob blob = { (void *)data, length, CURL_BLOB_COPY };
    return curl_easy_setopt(handle, option, &blob);
}

/// The value a read callback returns to abort the transfer.
static inline size_t wharf_curl_readfunc_abort(void) {
    return CURL_READFUNC_ABORT;
}

typedef int (*wharf_curl_debug_callback)(CURL *handle, curl_infotype type, char *data, size_t size, void *userdata);

static inline CURLcode wharf_curl_easy_setopt_debug_callback(CURL *handle, wharf_curl_debug_callback value) {
    return curl_easy_setopt(handle, CURLOPT_DEBUGFUNCTION, value);
}

/// The server's certificate chain after a transfer made with `CURLOPT_CERTINFO`.
static inline CURLcode wharf_curl_easy_getinfo_certinfo(CURL *handle, struct curl_certinfo **value) {
    return curl_easy_getinfo(handle, CURLINFO_CERTINFO, value);
}

static inline CURLcode wharf_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode wharf_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode wharf_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode wharf_curl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

/// The result of a finished transfer in a `CURLMSG_DONE` message (a union member in C).
static inline CURLcode wharf_curl_msg_result(CURLMsg *message) {
    return message->data.result;
}

static inline CURLMcode wharf_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

#endif
