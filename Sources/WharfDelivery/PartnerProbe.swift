import CCurl
import Foundation
import WharfCore
import WharfPKI
import X509

/// `wharf partner test`: one connection made exactly as a delivery would make it, and a
/// second one without verification to describe the server's certificate whatever went
/// wrong; the findings in words.
public enum PartnerProbe {
    /// One finding: `ok` is `nil` for plain information.
    public struct Finding: Sendable, Equatable {
        public let ok: Bool?
        public let text: String
    }

    public struct Report: Sendable {
        public var findings: [Finding] = []
        /// Whether a delivery made now would succeed.
        public var wouldDeliver = false
    }

    /// Probes `partner`'s URL with `GET {url}/`, presenting `credential`. Blocks.
    public static func run(_ partner: Partner, credential: ClientCredential) -> Report {
        var report = Report()
        func note(_ ok: Bool?, _ text: String) { report.findings.append(Finding(ok: ok, text: text)) }
        guard let url = partner.outbound.url else {
            note(false, "no delivery URL; set one with `wharf partner update \(partner.name) --url URL`")
            return report
        }
        do {
            try CurlEasy.initializeLibrary()
        } catch {
            note(false, "\(error)")
            return report
        }
        let request = DeliveryRequest(
            url: url.rawValue + "/", filePath: "", size: 0, sha256: "", idempotencyKey: "",
            clientCertificatePEM: credential.certificatePEM, clientKeyPEM: credential.privateKeyPEM,
            serverCAPEM: partner.outbound.serverCAPEM, pins: partner.outbound.pins
        )
        let strict = probe(request, verify: true)
        let loose = probe(request, verify: false)
        let host = URLComponents(string: url.rawValue)?.host ?? ""

        // Connect.
        if [6, 7, 28].contains(strict.code) && loose.code == strict.code {
            note(false, "connect to \(url.rawValue): \(strict.error)")
            return report
        }
        note(true, "connected to \(host)\(strict.tlsVersion.map { " with \($0)" } ?? loose.tlsVersion.map { " with \($0)" } ?? "")")

        // The server's certificate, described whatever the verdict.
        if let pem = loose.certificates.first, let leaf = try? Certificate.parseAll(pem: pem, source: "the server").first {
            let days = Int(leaf.notValidAfter.timeIntervalSinceNow / 86_400)
            note(days > 0, "server certificate: \(leaf.subject), issued by \(leaf.issuer), expires \(leaf.notValidAfter.formatted(.iso8601))\(days > 0 ? " (in \(days) days)" : " (expired)")")
            let names = leaf.alternativeNames ?? []
            let matches = names.contains { name in
                name.caseInsensitiveCompare(host) == .orderedSame
                    || (name.hasPrefix("*.") && host.lowercased().hasSuffix(name.dropFirst(1).lowercased()) && host.split(separator: ".").count == name.split(separator: ".").count)
            }
            note(matches, matches ? "host name \(host) matches the certificate" : "host name \(host) is not among the certificate's names: \(names.joined(separator: ", "))")
            let serverPin = leaf.publicKeyPin
            if partner.outbound.pins.isEmpty {
                note(nil, "no pins set; the server's key is \(serverPin) (add it with `wharf partner update \(partner.name) --pin \(serverPin)`)")
            } else if partner.outbound.pins.contains(serverPin) {
                note(true, "pin \(serverPin) matches the server's key")
            } else {
                note(false, "no pin matches; the server's key is \(serverPin) (to accept it: `wharf partner update \(partner.name) --pin \(serverPin)`)")
            }
        }
        switch strict.code {
        case 60, 77:
            let source = partner.outbound.serverCAPEM == nil ? "the system's CA store" : "the partner's --server-ca bundle"
            note(false, "the server's certificate is not trusted by \(source): \(strict.error)")
        case 51:
            note(false, "the server's certificate does not match the host name: \(strict.error)")
        case 90:
            break  // said above, with the pin to paste
        default:
            if strict.code != 0 && DeliveryVerdict.looksLikeCertificateRefusal(strict.error) {
                note(false, "our client certificate was refused: \(strict.error)")
            } else if strict.code != 0 {
                note(false, "the connection failed: curl \(strict.code): \(strict.error)")
            }
        }
        guard strict.code == 0, let status = strict.status else { return report }

        // Our certificate, and the probe. nginx answers a refused client certificate with 400
        // (or 495, 496), a Wharf with 403 naming the certificate; any other answer means the
        // TLS layer let us in (403 alone is often a server that lists no directories).
        let body = strict.body.lowercased()
        let refusedByStatus = [400, 495, 496].contains(status) || (status == 403 && body.contains("certificate"))
        note(!refusedByStatus, refusedByStatus
            ? "our client certificate was probably refused: GET \(request.url) answered HTTP \(status)"
            : "our client certificate was accepted")
        note(status < 500 && !refusedByStatus, "probe GET \(request.url): HTTP \(status)\(status == 403 && !refusedByStatus ? " (the server lists nothing here, which deliveries do not need)" : "")")
        report.wouldDeliver = status < 500 && !refusedByStatus
        return report
    }

    private struct Outcome {
        var code: Int
        var error: String
        var status: Int?
        var tlsVersion: String?
        var certificates: [String]
        var body = ""
    }

    private static func probe(_ request: DeliveryRequest, verify: Bool) -> Outcome {
        let curl: CurlEasy
        do {
            curl = try CurlEasy()
        } catch {
            return Outcome(code: 2, error: "\(error)", certificates: [])
        }
        let transcript = Transcript()
        let context = Unmanaged.passRetained(transcript)
        defer { context.release() }
        let exchange = CurlDelivery.Exchange(descriptor: -1)
        let bodyContext = Unmanaged.passRetained(exchange)
        defer { bodyContext.release() }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBytes { errorBytes in
            do {
                try curl.set(CURLOPT_URL, request.url)
                try curl.set(CURLOPT_WRITEFUNCTION, callback: collectBody)
                try curl.set(CURLOPT_WRITEDATA, pointer: bodyContext.toOpaque())
                try curl.set(CURLOPT_CERTINFO, 1)
                try curl.set(CURLOPT_VERBOSE, 1)
                try curl.set(debug: collectText)
                try curl.set(CURLOPT_DEBUGDATA, pointer: context.toOpaque())
                try curl.set(CURLOPT_ERRORBUFFER, pointer: errorBytes.baseAddress)
                try CurlDelivery.applySecurity(of: request, to: curl, verify: verify)
            } catch {
                return CURLE_BAD_FUNCTION_ARGUMENT
            }
            return curl.perform()
        }
        let status = curl.info(long: CURLINFO_RESPONSE_CODE)
        let error = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let version = transcript.text.range(of: #"TLSv1\.[0-3]"#, options: .regularExpression).map { String(transcript.text[$0]) }
        return Outcome(
            code: Int(code.rawValue), error: error.isEmpty ? String(cString: wharf_curl_easy_strerror(code)) : error,
            status: status > 0 ? status : nil, tlsVersion: version, certificates: curl.serverCertificatesPEM(),
            body: String(decoding: exchange.body, as: UTF8.self)
        )
    }
}

/// `CURLOPT_DEBUGFUNCTION`: keeps libcurl's informational lines (never the data sent).
private let collectText: wharf_curl_debug_callback = { _, type, data, size, userdata in
    guard type == CURLINFO_TEXT, let data, let userdata else { return 0 }
    let transcript = Unmanaged<Transcript>.fromOpaque(userdata).takeUnretainedValue()
    transcript.text += data.withMemoryRebound(to: UInt8.self, capacity: size) {
        String(decoding: UnsafeBufferPointer(start: $0, count: size), as: UTF8.self)
    }
    return 0
}

/// libcurl's informational text of one probe, where the negotiated TLS version appears.
private final class Transcript {
    var text = ""
}
