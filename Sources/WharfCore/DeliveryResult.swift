import Foundation

/// What one delivery attempt came to, as libcurl and the receiver reported it.
public struct DeliveryResult: Sendable, Equatable {
    /// libcurl's result code; 0 when the exchange completed (whatever the HTTP status);
    /// `nil` when the attempt never reached libcurl (see `notSent`).
    public var curlCode: Int?
    /// libcurl's own words for a failure, or why the attempt was not sent.
    public var curlError: String?
    public var httpStatus: Int?
    public var bytesSent: Int64
    /// The response body, at most a few KiB.
    public var body: String
    /// `Retry-After` in seconds, when the receiver sent one.
    public var retryAfter: Double?
    /// A Wharf receiver's `Wharf-Receipt-Signature`: a JWS of `body`.
    public var receiptSignature: String?
    /// Why `receiptSignature` does not verify against the certificate the receiver
    /// presented, in words; `nil` when it does or there is none.
    public var signatureProblem: String?
    /// Where the receiver holds this file's resumable upload after the attempt (announced
    /// by its `104`, or the one the attempt resumed); `nil` when there is none to resume.
    public var uploadLocation: String?
    /// The receiver already held this many bytes, which the attempt did not send again.
    public var resumedFrom: Int64 = 0

    public init(
        curlCode: Int?, curlError: String? = nil, httpStatus: Int?, bytesSent: Int64 = 0, body: String = "", retryAfter: Double? = nil,
        receiptSignature: String? = nil, signatureProblem: String? = nil
    ) {
        self.receiptSignature = receiptSignature
        self.signatureProblem = signatureProblem
        self.curlCode = curlCode
        self.curlError = curlError
        self.httpStatus = httpStatus
        self.bytesSent = bytesSent
        self.body = body
        self.retryAfter = retryAfter
    }
}

extension DeliveryResult {
    /// An attempt that never reached libcurl: it is not loaded, the queued file cannot be
    /// read, the request cannot be set up. Worth retrying: the cause is on this side.
    public static func notSent(_ reason: String) -> DeliveryResult {
        DeliveryResult(curlCode: nil, curlError: reason, httpStatus: nil)
    }
}

/// Sorts an attempt into success, a failure worth retrying, and a permanent one.
public enum DeliveryVerdict: Sendable, Equatable {
    case delivered
    case transient(String)
    case permanent(String)

    /// - Parameter expectedSHA256: when the receiver answers with a Wharf receipt, its
    ///   `sha256` must equal this.
    public static func judge(_ result: DeliveryResult, expectedSHA256: String) -> DeliveryVerdict {
        guard let curlCode = result.curlCode else {
            return .transient("not sent: \(result.curlError ?? "the attempt could not start")")
        }
        if curlCode != 0 {
            let words = result.curlError.map { ": \($0)" } ?? ""
            switch curlCode {
            case 90:
                return .permanent("the server's public key matches none of the partner's pins (curl 90)\(words)")
            case 60:
                return .permanent("the server's certificate is not signed by the partner's server CA or does not match the host name (curl 60)\(words)")
            case 51:
                return .permanent("the server's certificate does not match the host name (curl 51)\(words)")
            case 58, 59, 66, 77, 83:
                return .permanent("our client certificate or the TLS settings are unusable (curl \(curlCode))\(words)")
            case 35 where Self.looksLikeCertificateRefusal(result.curlError),
                 56 where Self.looksLikeCertificateRefusal(result.curlError):
                return .permanent("the partner refused our client certificate (curl \(curlCode))\(words)")
            default:
                return .transient("curl \(curlCode)\(words)")
            }
        }
        guard let status = result.httpStatus else { return .transient("no HTTP status") }
        switch status {
        case 200..<300:
            if let receiptSHA = Self.receiptSHA256(result.body), receiptSHA != expectedSHA256 {
                return .transient("the receiver's receipt has SHA-256 \(receiptSHA), not \(expectedSHA256)")
            }
            if let problem = result.signatureProblem {
                // The file arrived, but its receipt proves nothing: someone must look.
                return .permanent("the receiver's receipt signature does not verify: \(problem)")
            }
            return .delivered
        case 408, 429, 500..<600:
            return .transient("HTTP \(status)\(Self.excerpt(result.body))")
        default:
            return .permanent("HTTP \(status)\(Self.excerpt(result.body))")
        }
    }

    /// Whether libcurl's words for a failed handshake say the server refused our certificate.
    public static func looksLikeCertificateRefusal(_ error: String?) -> Bool {
        guard let error = error?.lowercased() else { return false }
        return ["certificate required", "bad certificate", "unknown ca", "certificate unknown", "alert handshake failure", "access denied"]
            .contains { error.contains($0) }
    }

    /// The `sha256` of a Wharf receipt in `body`, if the body is one.
    static func receiptSHA256(_ body: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              object["received_at"] != nil, let sha256 = object["sha256"] as? String
        else { return nil }
        return sha256.lowercased()
    }

    static func excerpt(_ body: String) -> String {
        let trimmed = body.trimmingWhitespace()
        guard !trimmed.isEmpty else { return "" }
        return ": " + String(trimmed.prefix(200))
    }
}
