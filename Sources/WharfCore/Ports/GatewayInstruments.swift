/// What the listener and the delivery worker report as it happens, for the metrics an
/// operator scrapes. Every label value is one of a fixed set (a partner's name, an outcome
/// code), never a file name or an address, so the number of series stays bounded.
///
/// Called on the request path: an implementation must not block.
public protocol GatewayInstruments: Sendable {
    /// An upload was answered. `outcome` is `accepted`, `replayed` (an idempotent repeat),
    /// `abandoned` (the client went away) or the refusal's error code (`too_large`,
    /// `unknown_partner`, ...). `partner` is `nil` when the certificate maps to none.
    func uploadFinished(partner: String?, outcome: String, bytes: Int64, duration: Duration)

    /// A connection ended before its first request: the TLS handshake failed or timed out.
    func handshakeFailed(reason: HandshakeFailure)

    /// A connection was closed as it was accepted, over a connection cap: `per_address`
    /// or `overall`.
    func connectionRefused(reason: String)

    /// A delivery attempt ended: `delivered`, `retrying` or `dead`.
    func deliveryAttempted(partner: String, outcome: String, duration: Duration)

    /// A hook event was dispatched (`event`: received, delivered, dead): `done`,
    /// `retrying` (it failed and will be tried again) or `failed` (for the last time).
    func hookDispatched(event: String, outcome: String)
}

/// Why a TLS handshake failed, in a few fixed words (OpenSSL's reasons are many).
public enum HandshakeFailure: String, Sendable, CaseIterable {
    /// The client sent no certificate.
    case noCertificate = "no_certificate"
    /// The client's certificate was not trusted (unknown issuer, expired, bad signature).
    case certificateRejected = "certificate_rejected"
    /// No protocol version or cipher suite in common.
    case noCommonProtocol = "no_common_protocol"
    /// The client sent something that is not TLS.
    case notTLS = "not_tls"
    /// The client closed the connection, or the handshake timed out.
    case closed
    case other

    /// The failure an OpenSSL reason (`PEER_DID_NOT_RETURN_A_CERTIFICATE`, ...) names.
    public init(openSSLReason reason: String) {
        switch reason {
        case "PEER_DID_NOT_RETURN_A_CERTIFICATE": self = .noCertificate
        case "CERTIFICATE_VERIFY_FAILED", "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE",
             "SSLV3_ALERT_CERTIFICATE_EXPIRED", "TLSV1_ALERT_DECRYPT_ERROR":
            self = .certificateRejected
        case "UNSUPPORTED_PROTOCOL", "NO_SHARED_CIPHER", "NO_SHARED_GROUP", "TLSV1_ALERT_PROTOCOL_VERSION",
             "NO_COMMON_SIGNATURE_ALGORITHMS", "WRONG_VERSION_NUMBER":
            self = .noCommonProtocol
        case "HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "WRONG_VERSION_NUMBER_OR_NOT_TLS":
            self = .notTLS
        default:
            self = .other
        }
    }
}

/// Instruments that record nothing: for tools and tests that run no admin listener.
public struct NoInstruments: GatewayInstruments {
    public init() {}
    public func uploadFinished(partner: String?, outcome: String, bytes: Int64, duration: Duration) {}
    public func handshakeFailed(reason: HandshakeFailure) {}
    public func connectionRefused(reason: String) {}
    public func deliveryAttempted(partner: String, outcome: String, duration: Duration) {}
    public func hookDispatched(event: String, outcome: String) {}
}
