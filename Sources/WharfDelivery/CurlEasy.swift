import CCurl
import WharfCore

/// A libcurl easy handle, with one typed method per kind of option.
///
/// A handle is used by one thread at a time: the delivering task sets it up, hands it to
/// `CurlMulti`'s thread for the transfer, and reads the results once it is handed back.
/// That hand-over, never sharing, is what makes the unchecked `Sendable` sound.
/// See https://curl.se/libcurl/c/curl_easy_setopt.html for every option.
final class CurlEasy: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// libcurl loaded and `curl_global_init` run, once per process, before the first handle.
    private static let library: Result<Void, WharfError> = {
        var reason = [CChar](repeating: 0, count: 512)
        guard wharf_curl_load(&reason, reason.count) == 0 else {
            return .failure(WharfError(
                .systemResources, "libcurl could not be loaded: \(reason.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })",
                fix: "deliveries need Debian's libcurl4 package (apt-get install libcurl4)"
            ))
        }
        wharf_curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        return .success(())
    }()

    /// Loads libcurl on first use; a gateway that only receives never does.
    static func initializeLibrary() throws(WharfError) {
        try library.get()
    }

    init() throws(WharfError) {
        try Self.initializeLibrary()
        guard let handle = wharf_curl_easy_init() else { throw WharfError(.systemResources, "libcurl could not create a handle") }
        self.handle = handle
    }

    deinit {
        wharf_curl_easy_cleanup(handle)
    }

    /// Forgets every option, keeping live connections and the TLS session cache.
    func reset() {
        wharf_curl_easy_reset(handle)
    }

    func set(_ option: CURLoption, _ value: Int) throws(WharfError) {
        try check(wharf_curl_easy_setopt_long(handle, option, value), option)
    }

    func set(_ option: CURLoption, _ value: Int64) throws(WharfError) {
        try check(wharf_curl_easy_setopt_off_t(handle, option, curl_off_t(value)), option)
    }

    /// libcurl copies string options, so `value` need not outlive the call.
    func set(_ option: CURLoption, _ value: String) throws(WharfError) {
        try check(value.withCString { wharf_curl_easy_setopt_string(handle, option, $0) }, option)
    }

    func set(_ option: CURLoption, blob: [UInt8]) throws(WharfError) {
        try check(blob.withUnsafeBytes { wharf_curl_easy_setopt_blob(handle, option, $0.baseAddress, $0.count) }, option)
    }

    func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) throws(WharfError) {
        try check(wharf_curl_easy_setopt_pointer(handle, option, pointer), option)
    }

    func set(_ option: CURLoption, list: UnsafeMutablePointer<curl_slist>?) throws(WharfError) {
        try check(wharf_curl_easy_setopt_slist(handle, option, list), option)
    }

    func set(_ option: CURLoption, callback: wharf_curl_data_callback) throws(WharfError) {
        try check(wharf_curl_easy_setopt_data_callback(handle, option, callback), option)
    }

    func set(debug callback: wharf_curl_debug_callback) throws(WharfError) {
        try check(wharf_curl_easy_setopt_debug_callback(handle, callback), CURLOPT_DEBUGFUNCTION)
    }

    /// The PEM of each certificate the server sent, leaf first (needs `CURLOPT_CERTINFO`).
    func serverCertificatesPEM() -> [String] {
        var info: UnsafeMutablePointer<curl_certinfo>?
        guard wharf_curl_easy_getinfo_certinfo(handle, &info) == CURLE_OK, let info, let lists = info.pointee.certinfo else { return [] }
        var certificates: [String] = []
        for index in 0..<Int(info.pointee.num_of_certs) {
            var node = lists[index]
            while let current = node {
                let entry = String(cString: current.pointee.data)
                if entry.hasPrefix("Cert:") { certificates.append(String(entry.dropFirst(5))) }
                node = current.pointee.next
            }
        }
        return certificates
    }

    /// Runs the transfer to its end on the calling thread, which it blocks (the easy
    /// interface; deliveries use `CurlMulti`).
    func perform() -> CURLcode {
        wharf_curl_easy_perform(handle)
    }

    func info(long info: CURLINFO) -> Int {
        var value = 0
        _ = wharf_curl_easy_getinfo_long(handle, info, &value)
        return value
    }

    private func check(_ code: CURLcode, _ option: CURLoption) throws(WharfError) {
        guard code == CURLE_OK else {
            throw WharfError(.invalidInput, "libcurl refused option \(option.rawValue): \(String(cString: wharf_curl_easy_strerror(code)))")
        }
    }
}
