import CCurl
import Foundation
import WharfCore

/// One HTTP PUT through libcurl: the file streamed from disk with `Content-Length`,
/// `Content-Digest` and `Idempotency-Key`, TLS 1.2 or later, the partner's CA, pins and
/// our client certificate. The transfer runs on `CurlMulti`'s thread.
///
/// A large file is sent as a resumable upload (draft-ietf-httpbis-resumable-upload-15):
/// `Upload-Complete: ?1` invites the receiver to announce, in a `104`, where it keeps what
/// arrives. After an attempt that broke, the next one asks there for the offset (`HEAD`)
/// and sends only the rest (`PATCH`). A receiver that does not know the draft ignores the
/// headers and the file is sent whole each time, as before.
enum CurlDelivery {
    /// How an attempt sends the file.
    enum Sending: Equatable {
        case whole
        /// The bytes from `offset` on, to the upload the receiver holds at `location`.
        case rest(location: String, offset: Int64)
    }

    /// What a receiver says of an upload it holds.
    enum HeldUpload: Equatable {
        case resumable(offset: Int64)
        /// Complete, or gone (expired, cancelled), or not reachable now: send it whole.
        case unusable(String)
    }

    /// State the C callbacks reach through their user-data pointer.
    final class Exchange {
        let descriptor: Int32
        var bytesSent: Int64 = 0
        var body: [UInt8] = []
        var retryAfter: Double?
        var receiptSignature: String?
        /// The status of the response whose headers are being read.
        var status = 0
        /// `Location` of a `104 (Upload Resumption Supported)`.
        var uploadLocation: String?
        var uploadOffset: Int64?
        var uploadComplete: Bool?

        init(descriptor: Int32) {
            self.descriptor = descriptor
        }
    }

    static let bodyLimit = 16 * 1024
    static let uploadBufferSize = 1024 * 1024

    /// The result, and the server's certificate (PEM) when this attempt made a new
    /// connection (a reused one has none: libcurl keeps certificates per handshake).
    static func put(
        _ request: DeliveryRequest, using curl: CurlEasy, on multi: CurlMulti, sending: Sending = .whole
    ) async -> (DeliveryResult, serverCertificatePEM: String?) {
        let descriptor = open(request.filePath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            return (.notSent("cannot read the queued file \(request.filePath): \(String(cString: strerror(errno)))"), nil)
        }
        defer { close(descriptor) }
        var (url, offset) = (request.url, Int64(0))
        if case .rest(let location, let from) = sending {
            guard lseek(descriptor, off_t(from), SEEK_SET) == off_t(from) else {
                return (.notSent("cannot read the queued file \(request.filePath) from byte \(from): \(String(cString: strerror(errno)))"), nil)
            }
            (url, offset) = (location, from)
        }
        let exchange = Exchange(descriptor: descriptor)
        let context = Unmanaged.passRetained(exchange)
        defer { context.release() }
        // libcurl writes into these while the transfer runs on the multi thread.
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var headers: UnsafeMutablePointer<curl_slist>?
        let lines: [String] = switch sending {
        case .whole:
            [
                "Content-Type: application/octet-stream",
                "Content-Digest: \(ContentDigest.header(sha256: Hex.decode(request.sha256)))",
                "Idempotency-Key: \(request.idempotencyKey)",
            ] + (request.size >= request.resumableFrom ? ["Upload-Complete: ?1", "Upload-Length: \(request.size)"] : [])
        case .rest:
            [
                "Content-Type: application/partial-upload", "Upload-Offset: \(offset)", "Upload-Complete: ?1",
                "Idempotency-Key: \(request.idempotencyKey)",
            ]
        }
        for header in lines {
            headers = wharf_curl_slist_append(headers, header)
        }
        defer { wharf_curl_slist_free_all(headers) }

        do {
            curl.reset()
            try curl.set(CURLOPT_URL, url)
            try curl.set(CURLOPT_UPLOAD, 1)
            if case .rest = sending { try curl.set(CURLOPT_CUSTOMREQUEST, "PATCH") }
            try curl.set(CURLOPT_INFILESIZE_LARGE, request.size - offset)
            // Reads of up to 1 MiB rather than libcurl's default 64 KiB: fewer callbacks
            // and trips through the multi loop per byte of a large file.
            try curl.set(CURLOPT_UPLOAD_BUFFERSIZE, uploadBufferSize)
            try curl.set(CURLOPT_READFUNCTION, callback: readFile)
            try curl.set(CURLOPT_READDATA, pointer: context.toOpaque())
            try curl.set(CURLOPT_WRITEFUNCTION, callback: collectBody)
            try curl.set(CURLOPT_WRITEDATA, pointer: context.toOpaque())
            try curl.set(CURLOPT_HEADERFUNCTION, callback: readHeader)
            try curl.set(CURLOPT_HEADERDATA, pointer: context.toOpaque())
            try curl.set(CURLOPT_HTTPHEADER, list: headers)
            try curl.set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
            // The server's certificate, which a Wharf receiver's receipt signature is checked against.
            try curl.set(CURLOPT_CERTINFO, 1)
            try applySecurity(of: request, to: curl)
        } catch {
            return (.notSent("the request could not be set up: \(error)"), nil)
        }
        let code = await multi.perform(curl)

        let status = curl.info(long: CURLINFO_RESPONSE_CODE)
        let errorText = String(cString: errorBuffer)
        var result = DeliveryResult(
            curlCode: Int(code.rawValue),
            curlError: code == CURLE_OK ? nil : (errorText.isEmpty ? String(cString: wharf_curl_easy_strerror(code)) : errorText),
            // Interim responses (100, 104) are not an answer: a broken attempt had none.
            httpStatus: status >= 200 ? status : nil,
            bytesSent: exchange.bytesSent,
            body: String(decoding: exchange.body, as: UTF8.self),
            retryAfter: exchange.retryAfter,
            receiptSignature: exchange.receiptSignature
        )
        result.resumedFrom = offset
        switch sending {
        case .whole: result.uploadLocation = exchange.uploadLocation.flatMap { resolve($0, against: request.url) }
        case .rest(let location, _): result.uploadLocation = location
        }
        return (result, code == CURLE_OK ? curl.serverCertificatesPEM().first : nil)
    }

    /// Asks the receiver what it holds of the upload at `location` (`HEAD`), and returns
    /// the server's certificate when this made a new connection.
    static func heldUpload(
        at location: String, for request: DeliveryRequest, using curl: CurlEasy, on multi: CurlMulti
    ) async -> (HeldUpload, serverCertificatePEM: String?) {
        let exchange = Exchange(descriptor: -1)
        let context = Unmanaged.passRetained(exchange)
        defer { context.release() }
        do {
            curl.reset()
            try curl.set(CURLOPT_URL, location)
            try curl.set(CURLOPT_NOBODY, 1)
            try curl.set(CURLOPT_WRITEFUNCTION, callback: collectBody)
            try curl.set(CURLOPT_WRITEDATA, pointer: context.toOpaque())
            try curl.set(CURLOPT_HEADERFUNCTION, callback: readHeader)
            try curl.set(CURLOPT_HEADERDATA, pointer: context.toOpaque())
            try curl.set(CURLOPT_CERTINFO, 1)
            try applySecurity(of: request, to: curl)
        } catch {
            return (.unusable("the request could not be set up: \(error)"), nil)
        }
        let code = await multi.perform(curl)
        let certificate = code == CURLE_OK ? curl.serverCertificatesPEM().first : nil
        guard code == CURLE_OK else { return (.unusable(String(cString: wharf_curl_easy_strerror(code))), nil) }
        let status = curl.info(long: CURLINFO_RESPONSE_CODE)
        guard (200..<300).contains(status), exchange.uploadComplete == false, let offset = exchange.uploadOffset, offset <= request.size else {
            return (.unusable("the receiver answered \(status) for the upload it held"), certificate)
        }
        return (.resumable(offset: offset), certificate)
    }

    /// A `Location` as an absolute URL on the same server as `url`; `nil` for one on any
    /// other (the client certificate goes to no one else).
    static func resolve(_ location: String, against url: String) -> String? {
        guard let base = URL(string: url), let resolved = URL(string: location, relativeTo: base)?.absoluteURL,
              resolved.scheme == "https", resolved.host == base.host, resolved.port == base.port
        else { return nil }
        return resolved.absoluteString
    }

    /// What every connection to a partner uses: TLS 1.2 or later, host name and chain
    /// verification against the partner's CA bundle (else the system's), its pins, our
    /// client certificate, a 10 s connect timeout and the low-speed abort.
    static func applySecurity(of request: DeliveryRequest, to curl: CurlEasy, verify: Bool = true) throws(WharfError) {
        try curl.set(CURLOPT_NOSIGNAL, 1)
        try curl.set(CURLOPT_PROTOCOLS_STR, "https")
        try curl.set(CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2))
        try curl.set(CURLOPT_SSL_VERIFYPEER, verify ? 1 : 0)
        try curl.set(CURLOPT_SSL_VERIFYHOST, verify ? 2 : 0)
        try curl.set(CURLOPT_SSLCERTTYPE, "PEM")
        try curl.set(CURLOPT_SSLCERT_BLOB, blob: Array(request.clientCertificatePEM.utf8))
        try curl.set(CURLOPT_SSLKEYTYPE, "PEM")
        try curl.set(CURLOPT_SSLKEY_BLOB, blob: Array(request.clientKeyPEM.utf8))
        if let serverCA = request.serverCAPEM {
            try curl.set(CURLOPT_CAINFO_BLOB, blob: Array(serverCA.utf8))
        }
        if verify && !request.pins.isEmpty {
            try curl.set(CURLOPT_PINNEDPUBLICKEY, request.pins.map(\.rawValue).joined(separator: ";"))
        }
        try curl.set(CURLOPT_CONNECTTIMEOUT, request.connectTimeout)
        try curl.set(CURLOPT_LOW_SPEED_LIMIT, request.lowSpeedLimit)
        try curl.set(CURLOPT_LOW_SPEED_TIME, request.lowSpeedTime)
    }

    /// `Retry-After` as seconds from now: a number, or an HTTP date.
    static func parseRetryAfter(_ value: String, now: Date = Date()) -> Double? {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        if let seconds = Double(trimmed), seconds >= 0 { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: trimmed).map { max(0, $0.timeIntervalSince(now)) }
    }
}

/// `CURLOPT_READFUNCTION`: the next bytes of the file.
private let readFile: wharf_curl_data_callback = { buffer, size, count, userdata in
    let exchange = Unmanaged<CurlDelivery.Exchange>.fromOpaque(userdata!).takeUnretainedValue()
    while true {
        let result = read(exchange.descriptor, buffer, size * count)
        if result < 0 && errno == EINTR { continue }
        guard result >= 0 else { return wharf_curl_readfunc_abort() }
        exchange.bytesSent += Int64(result)
        return result
    }
}

/// `CURLOPT_WRITEFUNCTION`: the response body, kept up to `bodyLimit` bytes.
let collectBody: wharf_curl_data_callback = { buffer, size, count, userdata in
    let exchange = Unmanaged<CurlDelivery.Exchange>.fromOpaque(userdata!).takeUnretainedValue()
    let length = size * count
    let room = max(0, CurlDelivery.bodyLimit - exchange.body.count)
    if room > 0, let buffer {
        buffer.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
            exchange.body.append(contentsOf: UnsafeBufferPointer(start: bytes, count: min(room, length)))
        }
    }
    return length
}

/// `CURLOPT_HEADERFUNCTION`: remembers `Retry-After` and `Wharf-Receipt-Signature` of the
/// final response.
private let readHeader: wharf_curl_data_callback = { buffer, size, count, userdata in
    let exchange = Unmanaged<CurlDelivery.Exchange>.fromOpaque(userdata!).takeUnretainedValue()
    let length = size * count
    guard let buffer else { return length }
    let line = buffer.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
    let lowered = line.lowercased()
    if line.hasPrefix("HTTP/") {
        exchange.retryAfter = nil
        exchange.receiptSignature = nil
        exchange.body.removeAll()
        exchange.status = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    } else if exchange.status == 104, lowered.hasPrefix("location:") {
        exchange.uploadLocation = line.dropFirst("location:".count).trimmingCharacters(in: .whitespacesAndNewlines)
    } else if lowered.hasPrefix("upload-offset:") {
        exchange.uploadOffset = Int64(line.dropFirst("upload-offset:".count).trimmingCharacters(in: .whitespacesAndNewlines))
    } else if lowered.hasPrefix("upload-complete:") {
        exchange.uploadComplete = line.dropFirst("upload-complete:".count).trimmingCharacters(in: .whitespacesAndNewlines) == "?1"
    } else if lowered.hasPrefix("retry-after:") {
        exchange.retryAfter = CurlDelivery.parseRetryAfter(String(line.dropFirst("retry-after:".count)))
    } else if line.lowercased().hasPrefix("wharf-receipt-signature:") {
        exchange.receiptSignature = line.dropFirst("wharf-receipt-signature:".count).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return length
}
