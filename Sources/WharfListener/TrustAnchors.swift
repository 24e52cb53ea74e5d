import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import WharfCore
import WharfPKI
import X509

/// What the listener accepts client certificates from: Wharf's own CA, each active
/// partner's `--trust-ca` (which vouches for that partner only), and the certificates
/// active partners registered by fingerprint, accepted exactly whoever issued them.
struct TrustAnchors: Sendable {
    let wharf: Certificate
    let partnerCAs: [(partner: PartnerName, certificates: [Certificate])]
    /// Fingerprint identities of active partners.
    let pinned: Set<CertificateFingerprint>
    /// Client certificates seen with these anchors, by their DER bytes: a partner that
    /// connects again is not parsed and checked against the anchors again.
    let presented = CertificateMemo<PresentedCertificate>()
    /// Client certificates whose chain to an anchor was verified, with when that chain is valid.
    let verified = CertificateMemo<ClosedRange<Date>>()

    init(wharf: Certificate, partnerCAs: [(partner: PartnerName, certificates: [Certificate])], pinned: Set<CertificateFingerprint> = []) {
        self.wharf = wharf
        self.partnerCAs = partnerCAs
        self.pinned = pinned
    }

    /// The same anchors with other fingerprint identities.
    func pinning(_ pinned: Set<CertificateFingerprint>) -> TrustAnchors {
        TrustAnchors(wharf: wharf, partnerCAs: partnerCAs, pinned: pinned)
    }

    /// All anchors, for the TLS handshake.
    var all: [Certificate] { [wharf] + partnerCAs.flatMap(\.certificates) }

    /// Which anchor signed `leaf`, or that only its fingerprint is known. Client
    /// certificates must be issued directly by an anchor.
    func issuer(of leaf: Certificate) -> PresentedCertificate.Issuer {
        if signs(wharf, leaf) { return .wharf }
        for (partner, certificates) in partnerCAs where certificates.contains(where: { signs($0, leaf) }) {
            return .partnerCA(partner)
        }
        return pinned.contains(leaf.fingerprint) ? .pinned : .unknown
    }

    private func signs(_ authority: Certificate, _ leaf: Certificate) -> Bool {
        leaf.issuer == authority.subject && authority.publicKey.isValidSignature(leaf.signature, for: leaf)
    }
}

/// What the listener made of each recently seen client certificate, by its DER bytes.
final class CertificateMemo<Value: Sendable>: Sendable {
    /// More certificates than this in use and the memory starts over.
    static var capacity: Int { 1024 }

    private let known = NIOLockedValueBox<[[UInt8]: Value]>([:])

    /// The value kept for `der`, if there is one.
    func value(for der: [UInt8]) -> Value? {
        known.withLockedValue { $0[der] }
    }

    func remember(_ value: Value, for der: [UInt8]) {
        known.withLockedValue { known in
            if known.count >= Self.capacity { known.removeAll(keepingCapacity: true) }
            known[der] = value
        }
    }

    /// The value as made before, or made by `make` now and kept.
    func value(for der: [UInt8], make: () throws -> Value) rethrows -> Value {
        if let known = value(for: der) { return known }
        let made = try make()
        remember(made, for: der)
        return made
    }
}
