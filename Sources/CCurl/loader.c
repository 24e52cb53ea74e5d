// Loads libcurl on first use and forwards Wharf's calls to it (see include/CCurl.h).
#include "CCurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

// Debian's libcurl4 (and libcurl4-openssl-dev's libcurl.so) name this file; the
// environment variable WHARF_LIBCURL names another (a path, or a name the loader finds).
#define WHARF_LIBCURL "libcurl.so.4"

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd[], unsigned int, int, int *);
    CURLMcode (*multi_wakeup)(CURLM *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
} curl;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded;
static char load_error[512];

static const char *library_name;

static int resolve(void *library, void **function, const char *name) {
    *function = dlsym(library, name);
    if (*function == NULL) {
        snprintf(load_error, sizeof load_error, "%s has no %s", library_name, name);
        return 0;
    }
    return 1;
}

static void load(void) {
    library_name = getenv("WHARF_LIBCURL");
    if (library_name == NULL || library_name[0] == '\0') library_name = WHARF_LIBCURL;
    void *library = dlopen(library_name, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(load_error, sizeof load_error, "%s", dlerror());
        return;
    }
#define RESOLVE(field, name) \
    if (!resolve(library, (void **)&curl.field, name)) return;
    RESOLVE(global_init, "curl_global_init")
    RESOLVE(easy_init, "curl_easy_init")
    RESOLVE(easy_cleanup, "curl_easy_cleanup")
    RESOLVE(easy_reset, "curl_easy_reset")
    RESOLVE(easy_perform, "curl_easy_perform")
    RESOLVE(easy_strerror, "curl_easy_strerror")
    RESOLVE(easy_setopt, "curl_easy_setopt")
    RESOLVE(easy_getinfo, "curl_easy_getinfo")
    RESOLVE(slist_append, "curl_slist_append")
    RESOLVE(slist_free_all, "curl_slist_free_all")
    RESOLVE(multi_init, "curl_multi_init")
    RESOLVE(multi_cleanup, "curl_multi_cleanup")
    RESOLVE(multi_add_handle, "curl_multi_add_handle")
    RESOLVE(multi_remove_handle, "curl_multi_remove_handle")
    RESOLVE(multi_perform, "curl_multi_perform")
    RESOLVE(multi_poll, "curl_multi_poll")
    RESOLVE(multi_wakeup, "curl_multi_wakeup")
    RESOLVE(multi_info_read, "curl_multi_info_read")
    RESOLVE(multi_setopt, "curl_multi_setopt")
#undef RESOLVE
    loaded = 1;
}

int wharf_curl_load(char *error, size_t capacity) {
    pthread_once(&load_once, load);
    if (loaded) return 0;
    snprintf(error, capacity, "%s", load_error);
    return -1;
}

CURLcode wharf_curl_global_init(long flags) { return curl.global_init(flags); }

CURL *wharf_curl_easy_init(void) { return curl.easy_init(); }
void wharf_curl_easy_cleanup(CURL *handle) { curl.easy_cleanup(handle); }
void wharf_curl_easy_reset(CURL *handle) { curl.easy_reset(handle); }
CURLcode wharf_curl_easy_perform(CURL *handle) { return curl.easy_perform(handle); }
const char *wharf_curl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }

struct curl_slist *wharf_curl_slist_append(struct curl_slist *list, const char *string) {
    return curl.slist_append(list, string);
}
void wharf_curl_slist_free_all(struct curl_slist *list) { curl.slist_free_all(list); }

CURLM *wharf_curl_multi_init(void) { return curl.multi_init(); }
CURLMcode wharf_curl_multi_cleanup(CURLM *multi) { return curl.multi_cleanup(multi); }
CURLMcode wharf_curl_multi_add_handle(CURLM *multi, CURL *handle) { return curl.multi_add_handle(multi, handle); }
CURLMcode wharf_curl_multi_remove_handle(CURLM *multi, CURL *handle) { return curl.multi_remove_handle(multi, handle); }
CURLMcode wharf_curl_multi_perform(CURLM *multi, int *running_handles) {
    return curl.multi_perform(multi, running_handles);
}
CURLMcode wharf_curl_multi_poll(CURLM *multi, struct curl_waitfd extra_fds[], unsigned int extra_nfds,
                                int timeout_ms, int *numfds) {
    return curl.multi_poll(multi, extra_fds, extra_nfds, timeout_ms, numfds);
}
CURLMcode wharf_curl_multi_wakeup(CURLM *multi) { return curl.multi_wakeup(multi); }
CURLMsg *wharf_curl_multi_info_read(CURLM *multi, int *msgs_in_queue) { return curl.multi_info_read(multi, msgs_in_queue); }
CURLMcode wharf_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl.multi_setopt(multi, option, value);
}

CURLcode wharf_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl.easy_setopt(handle, option, value);
}
CURLcode wharf_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl.easy_setopt(handle, option, value);
}
CURLcode wharf_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl.easy_setopt(handle, option, value);
}
CURLcode wharf_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl.easy_setopt(handle, option, value);
}
CURLcode wharf_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl.easy_setopt(handle, option, value);
}
CURLcode wharf_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, wharf_curl_data_callback value) {
    return curl.easy_setopt(handle, option, value);
}
CURLcode wharf_curl_easy_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length) {
    struct curl_blob blob = { (void *)data, length, CURL_BLOB_COPY };
    return curl.easy_setopt(handle, option, &blob);
}
CURLcode wharf_curl_easy_setopt_debug_callback(CURL *handle, wharf_curl_debug_callback value) {
    return curl.easy_setopt(handle, CURLOPT_DEBUGFUNCTION, value);
}

CURLcode wharf_curl_easy_getinfo_certinfo(CURL *handle, struct curl_certinfo **value) {
    return curl.easy_getinfo(handle, CURLINFO_CERTINFO, value);
}
CURLcode wharf_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl.easy_getinfo(handle, info, value);
}
CURLcode wharf_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl.easy_getinfo(handle, info, value);
}
CURLcode wharf_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl.easy_getinfo(handle, info, value);
}
CURLcode wharf_curl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl.easy_getinfo(handle, info, value);
}
