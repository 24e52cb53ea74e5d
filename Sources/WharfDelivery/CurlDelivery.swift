import CCurl
import Foundation
import WharfCore

/// One HTTP PUT through libcurl: the file streamed from disk with `Content-Length`,
/// `Content-Digest` and `Idempotency-Key`, TLS 1.2 or later, the partner's CA, pins and
/// our client certificate. The transfer runs on `CurlMulti`'s thread.
enum CurlDelivery {
    /// State the C callbacks reach through their user-data pointer.
    final class Exchange {
        let descriptor: Int32
        var bytesSent: Int64 = 0
        var body: [UInt8] = []
        var retryAfter: Double?
        var receiptSignature: String?

        init(descriptor: Int32) {
            self.descriptor = descriptor
        }
    }

    static let bodyLimit = 16 * 1024
    static let uploadBufferSize = 1024 * 1024

    /// The result, and the server's certificate (PEM) when this attempt made a new
    /// connection (a reused one has none: libcurl keeps certificates per handshake).
    static func put(_ request: DeliveryRequest, using curl: CurlEasy, on multi: CurlMulti) async -> (DeliveryResult, serverCertificatePEM: String?) {
        let descriptor = open(request.filePath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            return (.notSent("cannot read the queued file \(request.filePath): \(String(cString: strerror(errno)))"), nil)
        }
        defer { close(descriptor) }
        let exchange = Exchange(descriptor: descriptor)
        let context = Unmanaged.passRetained(exchange)
        defer { context.release() }
        // libcurl writes into these while the transfer runs on the multi thread.
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var headers: UnsafeMutablePointer<curl_slist>?
        for header in [
            "Content-Type: application/octet-stream",
            "Content-Digest: \(ContentDigest.header(sha256: Hex.decode(request.sha256)))",
            "Idempotency-Key: \(request.idempotencyKey)",
        ] {
            headers = wharf_curl_slist_append(headers, header)
        }
        defer { wharf_curl_slist_free_all(headers) }

        do {
            curl.reset()
            try curl.set(CURLOPT_URL, request.url)
            try curl.set(CURLOPT_UPLOAD, 1)
            try curl.set(CURLOPT_INFILESIZE_LARGE, request.size)
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
        let result = DeliveryResult(
            curlCode: Int(code.rawValue),
            curlError: code == CURLE_OK ? nil : (errorText.isEmpty ? String(cString: wharf_curl_easy_strerror(code)) : errorText),
            httpStatus: status > 0 ? status : nil,
            bytesSent: exchange.bytesSent,
            body: String(decoding: exchange.body, as: UTF8.self),
            retryAfter: exchange.retryAfter,
            receiptSignature: exchange.receiptSignature
        )
        return (result, code == CURLE_OK ? curl.serverCertificatesPEM().first : nil)
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
    if line.hasPrefix("HTTP/") {
        exchange.retryAfter = nil
        exchange.receiptSignature = nil
        exchange.body.removeAll()
    } else if line.lowercased().hasPrefix("retry-after:") {
        exchange.retryAfter = CurlDelivery.parseRetryAfter(String(line.dropFirst("retry-after:".count)))
    } else if line.lowercased().hasPrefix("wharf-receipt-signature:") {
        exchange.receiptSignature = line.dropFirst("wharf-receipt-signature:".count).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return length
}
