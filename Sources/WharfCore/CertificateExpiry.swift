import Foundation

/// A certificate Wharf uses or accepts, and when it expires: Wharf's CAs, its server and
/// client certificates, and each partner identity with an end (`partner issue` gives the
/// fingerprint of each certificate it issues the certificate's validity as its window).
public struct CertificateExpiry: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// `ca` is the partner CA (or a home's one CA); `identity_ca` signs Wharf's own certificates.
        case ca, identityCA = "identity_ca", server, client, partner
    }

    public let kind: Kind
    /// The partner, for `partner`.
    public let partner: String?
    /// The certificate's SHA-256 fingerprint in hex, when known.
    public let fingerprint: String?
    public let notAfter: Date

    public init(kind: Kind, partner: String? = nil, fingerprint: String? = nil, notAfter: Date) {
        self.kind = kind
        self.partner = partner
        self.fingerprint = fingerprint
        self.notAfter = notAfter
    }

    /// Whole days from `now` until it expires; negative once it has.
    public func daysLeft(at now: Date) -> Int {
        Int((notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
    }

    /// Within this many days of expiry a certificate is reported and warned about.
    public static let warningDays = 30
    /// Within this many days (or expired) it needs an operator now: `wharf status` exits 1.
    public static let urgentDays = 7

    /// Those of `certificates` that expire within `warningDays` of `now` (or have), soonest first.
    public static func expiringSoon(_ certificates: [CertificateExpiry], at now: Date) -> [CertificateExpiry] {
        certificates.filter { $0.daysLeft(at: now) < warningDays }.sorted { $0.notAfter < $1.notAfter }
    }

    /// Whether one of `certificates` is expired or within `urgentDays`.
    public static func needsOperator(_ certificates: [CertificateExpiry], at now: Date) -> Bool {
        certificates.contains { $0.daysLeft(at: now) < urgentDays }
    }

    /// The expiries of a partner's identities that have an end.
    public static func identities(of partner: Partner) -> [CertificateExpiry] {
        partner.identities.compactMap { identity in
            guard let notAfter = identity.notAfter else { return nil }
            let fingerprint: String? = if case .fingerprint(let value) = identity.kind { value.hex } else { nil }
            return CertificateExpiry(kind: .partner, partner: partner.name.rawValue, fingerprint: fingerprint, notAfter: notAfter)
        }
    }

    /// The soonest end of a partner's identities still valid at `now`, or, when all have
    /// ended, the last of them; `nil` when none has an end.
    public static func earliestUpcoming(of partner: Partner, at now: Date) -> Date? {
        let ends = identities(of: partner).map(\.notAfter)
        return ends.filter { $0 >= now }.min() ?? ends.max()
    }
}
