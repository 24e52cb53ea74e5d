import NIOConcurrencyHelpers
import NIOSSL
import WharfCore
import WharfPKI
import X509

/// The CAs whose client certificates the listener accepts: Wharf's own, and each active
/// partner's `--trust-ca`, which vouches for that partner only.
struct TrustAnchors: Sendable {
    let wharf: Certificate
    let partnerCAs: [(partner: PartnerName, certificates: [Certificate])]
    /// Client certificates seen with these anchors, by their DER bytes: a partner that
    /// connects again is not parsed and checked against the anchors again.
    let presented = PresentedCertificates()

    /// All anchors, for the TLS handshake.
    var all: [Certificate] { [wharf] + partnerCAs.flatMap(\.certificates) }

    /// Which anchor signed `leaf`. Client certificates must be issued directly by an anchor.
    func issuer(of leaf: Certificate) -> PresentedCertificate.Issuer {
        if signs(wharf, leaf) { return .wharf }
        for (partner, certificates) in partnerCAs where certificates.contains(where: { signs($0, leaf) }) {
            return .partnerCA(partner)
        }
        return .unknown
    }

    private func signs(_ authority: Certificate, _ leaf: Certificate) -> Bool {
        leaf.issuer == authority.subject && authority.publicKey.isValidSignature(leaf.signature, for: leaf)
    }
}

/// What `InboxConnection` made of each recently seen client certificate, by its DER bytes.
final class PresentedCertificates: Sendable {
    /// More certificates than this in use and the memory starts over.
    static let capacity = 1024

    private let known = NIOLockedValueBox<[[UInt8]: PresentedCertificate]>([:])

    /// The certificate as made before, or made by `make` now and kept.
    func presented(_ der: [UInt8], make: () throws -> PresentedCertificate) rethrows -> PresentedCertificate {
        if let known = known.withLockedValue({ $0[der] }) { return known }
        let made = try make()
        known.withLockedValue { known in
            if known.count >= Self.capacity { known.removeAll(keepingCapacity: true) }
            known[der] = made
        }
        return made
    }
}
