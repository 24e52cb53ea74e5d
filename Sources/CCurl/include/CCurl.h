// libcurl, loaded when Wharf first needs it (the first delivery or `wharf partner test`)
// rather than when the process starts: libcurl brings some twenty libraries with it (TLS,
// Kerberos, LDAP, SSH, HTTP/2...), which a gateway that only receives never uses.
//
// Call `wharf_curl_load` first; once it has returned 0 the functions below call libcurl.
// They are the only way in: this module is not linked with libcurl, so calling libcurl's
// own functions declared in <curl/curl.h> would not link. Variadic functions get one typed
// wrapper per argument type, since Swift cannot call C variadic functions.
#ifndef WHARF_CCURL_H
#define WHARF_CCURL_H

#include <curl/curl.h>
#include <stddef.h>

/// Loads libcurl (`libcurl.so.4`, or the file the environment variable `WHARF_LIBCURL`
/// names) and resolves what Wharf calls, once per process. Returns 0 when ready;
/// otherwise -1 with the reason written to `error`.
int wharf_curl_load(char *error, size_t capacity);

CURLcode wharf_curl_global_init(long flags);

CURL *wharf_curl_easy_init(void);
void wharf_curl_easy_cleanup(CURL *handle);
void wharf_curl_easy_reset(CURL *handle);
CURLcode wharf_curl_easy_perform(CURL *handle);
const char *wharf_curl_easy_strerror(CURLcode code);

struct curl_slist *wharf_curl_slist_append(struct curl_slist *list, const char *string);
void wharf_curl_slist_free_all(struct curl_slist *list);

CURLM *wharf_curl_multi_init(void);
CURLMcode wharf_curl_multi_cleanup(CURLM *multi);
CURLMcode wharf_curl_multi_add_handle(CURLM *multi, CURL *handle);
CURLMcode wharf_curl_multi_remove_handle(CURLM *multi, CURL *handle);
CURLMcode wharf_curl_multi_perform(CURLM *multi, int *running_handles);
CURLMcode wharf_curl_multi_poll(CURLM *multi, struct curl_waitfd extra_fds[], unsigned int extra_nfds,
                                int timeout_ms, int *numfds);
CURLMcode wharf_curl_multi_wakeup(CURLM *multi);
CURLMsg *wharf_curl_multi_info_read(CURLM *multi, int *msgs_in_queue);
CURLMcode wharf_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

CURLcode wharf_curl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode wharf_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode wharf_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode wharf_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode wharf_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);

typedef size_t (*wharf_curl_data_callback)(char *buffer, size_t size, size_t count, void *userdata);
CURLcode wharf_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, wharf_curl_data_callback value);

/// Sets a `*_BLOB` option; libcurl copies the bytes.
CURLcode wharf_curl_easy_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length);

typedef int (*wharf_curl_debug_callback)(CURL *handle, curl_infotype type, char *data, size_t size, void *userdata);
CURLcode wharf_curl_easy_setopt_debug_callback(CURL *handle, wharf_curl_debug_callback value);

/// The server's certificate chain after a transfer made with `CURLOPT_CERTINFO`.
CURLcode wharf_curl_easy_getinfo_certinfo(CURL *handle, struct curl_certinfo **value);
CURLcode wharf_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode wharf_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode wharf_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode wharf_curl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value);

/// The value a read callback returns to abort the transfer.
static inline size_t wharf_curl_readfunc_abort(void) {
    return CURL_READFUNC_ABORT;
}

/// The result of a finished transfer in a `CURLMSG_DONE` message (a union member in C).
static inline CURLcode wharf_curl_msg_result(CURLMsg *message) {
    return message->data.result;
}

#endif
