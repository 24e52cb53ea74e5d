import NIOSSL
import WharfCore
import WharfPKI
import X509

/// The CAs whose client certificates the listener accepts: Wharf's own, and each active
/// partner's `--trust-ca`, which vouches for that partner only.
struct TrustAnchors: Sendable {
    let wharf: Certificate
    let partnerCAs: [(partner: PartnerName, certificates: [Certificate])]

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
