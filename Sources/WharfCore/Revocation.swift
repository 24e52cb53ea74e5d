import Foundation

/// A certificate an operator revoked: by its fingerprint (`wharf partner revoke`), or by
/// its serial number among the certificates Wharf's CA issued (`wharf ca revoke`). A
/// revoked certificate is refused at the handshake and, for a resumed TLS session (which
/// skips the handshake's checks), at every request.
public struct Revocation: Sendable, Equatable {
    public let fingerprint: CertificateFingerprint?
    /// Lower-case hex, without leading zero bytes, of a certificate Wharf's CA issued.
    public let serial: String?
    /// The partner whose certificate it was, when known.
    public let partner: String?
    public let revokedAt: Date
    public let reason: String

    public init(fingerprint: CertificateFingerprint?, serial: String?, partner: String?, revokedAt: Date, reason: String) {
        self.fingerprint = fingerprint
        self.serial = serial.map(Self.normalizedSerial)
        self.partner = partner
        self.revokedAt = revokedAt
        self.reason = reason
    }

    /// Whether this revocation names `certificate` (a serial only among Wharf's own).
    public func applies(to certificate: PresentedCertificate) -> Bool {
        if let fingerprint, fingerprint == certificate.fingerprint { return true }
        if let serial, certificate.issuer == .wharf, certificate.serial == serial { return true }
        return false
    }

    /// What a refusal says.
    public var description: String {
        "the certificate was revoked at \(revokedAt.utcTimestamp())" + (reason.isEmpty ? "" : " (\(reason))")
    }

    /// A serial number as hex digits, lower case, without leading zeros (`00:1A:ff` → `1aff`).
    public static func normalizedSerial(_ text: String) -> String {
        let digits = text.filter { $0 != ":" && $0 != " " }.lowercased()
        let trimmed = digits.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }

    /// Parses a serial an operator typed: hex digits, optionally with colons or `0x`.
    public static func parseSerial(_ text: String) throws(WharfError) -> String {
        var body = Substring(text)
        if body.lowercased().hasPrefix("0x") { body = body.dropFirst(2) }
        let digits = body.filter { $0 != ":" }
        guard !digits.isEmpty, digits.count <= 40, digits.allSatisfy(\.isHexDigit) else {
            throw .invalid(
                "'\(EscapedText.terminal(text))' is not a certificate serial number",
                fix: "give it in hex, as `openssl x509 -noout -serial -in CERT` prints it (after serial=)"
            )
        }
        return normalizedSerial(String(digits))
    }
}
