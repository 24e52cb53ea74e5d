import Foundation

/// What the listener knows of a connection's client certificate after the handshake.
public struct PresentedCertificate: Sendable {
    /// Which trust anchor signed the certificate.
    public enum Issuer: Sendable, Equatable {
        /// Wharf's own CA: the certificate may map to any partner.
        case wharf
        /// A partner's own CA (`--trust-ca`): the certificate maps to that partner only.
        case partnerCA(PartnerName)
        /// No anchor issued it, but it is exactly a certificate an active partner registered
        /// by its fingerprint (a self-signed one): it maps by that fingerprint only.
        case pinned
        /// No anchor Wharf trusts now (for example a partner's CA removed since the session began).
        case unknown
    }

    public let fingerprint: CertificateFingerprint
    public let subject: SubjectName?
    /// The subject as the certificate spells it, for the audit trail.
    public let subjectText: String
    public let issuer: Issuer
    /// The serial number, as `Revocation.normalizedSerial` writes it.
    public let serial: String?

    public init(fingerprint: CertificateFingerprint, subject: SubjectName?, subjectText: String, issuer: Issuer, serial: String? = nil) {
        self.fingerprint = fingerprint
        self.subject = subject
        self.subjectText = subjectText
        self.issuer = issuer
        self.serial = serial.map(Revocation.normalizedSerial)
    }
}

/// Maps a presented certificate to a partner, or says why not.
///
/// The rule: a fingerprint identity valid now wins; else a subject identity valid now,
/// for a certificate a trusted CA issued. The partner must be active, and a certificate
/// issued by a partner's own CA maps only to that partner. The decision is made per request, from the registry as it is then,
/// so changes apply without a restart and also on an open keep-alive connection.
public enum InboundAuthorization {
    public enum Decision: Sendable, Equatable {
        case accepted(Partner)
        case refused(String)
    }

    /// - Parameter owners: the partners owning an identity that matches the certificate's
    ///   fingerprint or subject, whatever its window.
    ///   - revocations: revocations that may name the certificate (by its fingerprint or
    ///     serial); one that does refuses it first.
    public static func decide(
        _ certificate: PresentedCertificate, owners: [Partner], revocations: [Revocation] = [], at now: Date
    ) -> Decision {
        if let revocation = revocations.first(where: { $0.applies(to: certificate) }) {
            return .refused(revocation.description)
        }
        if certificate.issuer == .unknown {
            return .refused("the certificate's issuer is no longer trusted")
        }
        func owner(of kind: InboundIdentity.Kind) -> Partner? {
            owners.first { partner in
                partner.identities.contains { $0.kind == kind && $0.isValid(at: now) }
            }
        }
        let byFingerprint = owner(of: .fingerprint(certificate.fingerprint))
        // Anyone can make a certificate with any subject; only a trusted CA vouches for one.
        let bySubject = certificate.issuer == .pinned ? nil : certificate.subject.flatMap { subject in
            owners.first { partner in
                partner.identities.contains {
                    if case .subject(let name) = $0.kind { return name.matchKey == subject.matchKey && $0.isValid(at: now) }
                    return false
                }
            }
        }
        guard let partner = byFingerprint ?? bySubject else {
            return .refused("the certificate maps to no partner")
        }
        if case .partnerCA(let issuingPartner) = certificate.issuer, issuingPartner != partner.name {
            return .refused("the certificate was issued by the CA of '\(issuingPartner)', not of '\(partner.name)'")
        }
        guard partner.status == .active else {
            return .refused("partner '\(partner.name)' is disabled")
        }
        return .accepted(partner)
    }
}
